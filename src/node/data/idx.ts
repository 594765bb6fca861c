// Reader for IDX files (the MNIST / Fashion-MNIST container format), plain or gzipped.
//
// Layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte), a dimension count, one uint32 per
// dimension, then the data. Images: magic 0x00000803 (count, rows, cols). Labels: magic 0x00000801 (count).
// Gzip is detected from the content (magic 1f 8b), not from the file name.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { DataError } from './errors.ts';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count × rows × cols bytes, row-major. */
  pixels: Uint8Array;
}

const hex = (n: number) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

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
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw);
    } catch (e) {
      throw new DataError(`${file}: gzip data is corrupt or truncated (${(e as Error).message})`, file);
    }
  }
  return raw;
}

function readMagic(buf: Buffer, file: string, expected: number, what: string): void {
  if (buf.length < 4) {
    throw new DataError(`${file}: expected IDX ${what} file magic ${hex(expected)}, but the file has only ${buf.length} bytes`, file);
  }
  const magic = buf.readUInt32BE(0);
  if (magic !== expected) {
    throw new DataError(`${file}: expected IDX ${what} file magic ${hex(expected)}, got ${hex(magic)}`, file);
  }
}

function checkSize(buf: Buffer, file: string, expected: number, description: string): void {
  if (buf.length < expected) {
    throw new DataError(`${file}: file is truncated: header says ${description} = ${expected} bytes, file has ${buf.length}`, file);
  }
  if (buf.length > expected) {
    throw new DataError(`${file}: file is too long: header says ${description} = ${expected} bytes, file has ${buf.length}`, file);
  }
}

/** Parses an in-memory (already gunzipped) IDX image file; `file` is only used in error messages. */
export function parseIdxImages(buf: Buffer, file: string): IdxImages {
  readMagic(buf, file, IDX_IMAGES_MAGIC, 'image');
  if (buf.length < 16) {
    throw new DataError(`${file}: file is truncated: an IDX image header needs 16 bytes, file has ${buf.length}`, file);
  }
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  if (rows === 0 || cols === 0) {
    throw new DataError(`${file}: expected positive image dimensions, header says ${rows}×${cols}`, file);
  }
  checkSize(buf, file, 16 + count * rows * cols, `${count} images of ${rows}×${cols}`);
  // Copy out of the (possibly pooled) Buffer into a standalone array.
  const pixels = new Uint8Array(count * rows * cols);
  pixels.set(buf.subarray(16));
  return { count, rows, cols, pixels };
}

/** Parses an in-memory (already gunzipped) IDX label file; `file` is only used in error messages. */
export function parseIdxLabels(buf: Buffer, file: string): Uint8Array {
  readMagic(buf, file, IDX_LABELS_MAGIC, 'label');
  if (buf.length < 8) {
    throw new DataError(`${file}: file is truncated: an IDX label header needs 8 bytes, file has ${buf.length}`, file);
  }
  const count = buf.readUInt32BE(4);
  checkSize(buf, file, 8 + count, `${count} labels of 1 byte`);
  const labels = new Uint8Array(count);
  labels.set(buf.subarray(8));
  return labels;
}

/** Reads an IDX image file (magic 0x00000803), gzipped or not. */
export function readIdxImages(file: string): IdxImages {
  return parseIdxImages(readMaybeGzip(file), file);
}

/** Reads an IDX label file (magic 0x00000801), gzipped or not. */
export function readIdxLabels(file: string): Uint8Array {
  return parseIdxLabels(readMaybeGzip(file), file);
}
