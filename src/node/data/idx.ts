// IDX files on disk, plain or gzipped (gzip is detected from the content, not from the file name); the parsing
// itself is src/core/data/idx.ts.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { DataError } from '../../core/data/errors.ts';
import { isGzip, parseIdxImages, parseIdxLabels, type IdxImages } from '../../core/data/idx.ts';

export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdxImages, parseIdxLabels, type IdxImages } from '../../core/data/idx.ts';

/** Reads a file and gunzips it if it starts with the gzip magic. */
export function readMaybeGzip(file: string): Buffer {

  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : (e as Error).message;
    throw new DataError(`${file}: cannot read (${why})`, file);
  }
  if (isGzip(raw)) {
    try {
      return zlib.gunzipSync(raw);
    } catch (e) {
      throw new DataError(`${file}: gzip data is corrupt or truncated (${(e as Error).message})`, file);
    }
  }
  return raw;
}


/** Reads an IDX image file (magic 0x00000803), gzipped or not. */
export function readIdxImages(file: string): IdxImages {
  return parseIdxImages(readMaybeGzip(file), file);
}

/** Reads an IDX label file (magic 0x00000801), gzipped or not. */
export function readIdxLabels(file: string): Uint8Array {
  return parseIdxLabels(readMaybeGzip(file), file);
}
