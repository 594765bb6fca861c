// IDX files (the MNIST / Fashion-MNIST container format), parsed from bytes: the same code in Node (files on
// disk, src/node/data/idx.ts) and in a browser (files a person picks).
//
// Layout (big-endian): 2 zero bytes, a type byte (0x08 = unsigned byte), a dimension count, one uint32 per
// dimension, then the data. Images: magic 0x00000803 (count, rows, cols). Labels: magic 0x00000801 (count).

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
const u32 = (buf: Uint8Array, at: number) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(at, false);

/** True when the bytes start with the gzip magic (1f 8b). */
export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

function readMagic(buf: Uint8Array, file: string, expected: number, what: string): void {
  if (buf.length < 4) {
    throw new DataError(`${file}: expected IDX ${what} file magic ${hex(expected)}, but the file has only ${buf.length} bytes`, file);
  }
  const magic = u32(buf, 0);
  if (magic !== expected) {
    throw new DataError(`${file}: expected IDX ${what} file magic ${hex(expected)}, got ${hex(magic)}`, file);
  }
}

function checkSize(buf: Uint8Array, file: string, expected: number, description: string): void {
  if (buf.length < expected) {
    throw new DataError(`${file}: file is truncated: header says ${description} = ${expected} bytes, file has ${buf.length}`, file);
  }
  if (buf.length > expected) {
    throw new DataError(`${file}: file is too long: header says ${description} = ${expected} bytes, file has ${buf.length}`, file);
  }
}

/** Parses an in-memory (already gunzipped) IDX image file; `file` is only used in error messages. */
export function parseIdxImages(buf: Uint8Array, file: string): IdxImages {
  readMagic(buf, file, IDX_IMAGES_MAGIC, 'image');
  if (buf.length < 16) {
    throw new DataError(`${file}: file is truncated: an IDX image header needs 16 bytes, file has ${buf.length}`, file);
  }
  const count = u32(buf, 4);
  const rows = u32(buf, 8);
  const cols = u32(buf, 12);
  if (rows === 0 || cols === 0) {
    throw new DataError(`${file}: expected positive image dimensions, header says ${rows}×${cols}`, file);
  }
  checkSize(buf, file, 16 + count * rows * cols, `${count} images of ${rows}×${cols}`);
  // Copy out of the (possibly pooled) buffer into a standalone array.
  const pixels = new Uint8Array(count * rows * cols);
  pixels.set(buf.subarray(16));
  return { count, rows, cols, pixels };
}

/** Parses an in-memory (already gunzipped) IDX label file; `file` is only used in error messages. */
export function parseIdxLabels(buf: Uint8Array, file: string): Uint8Array {
  readMagic(buf, file, IDX_LABELS_MAGIC, 'label');
  if (buf.length < 8) {
    throw new DataError(`${file}: file is truncated: an IDX label header needs 8 bytes, file has ${buf.length}`, file);
  }
  const count = u32(buf, 4);
  checkSize(buf, file, 8 + count, `${count} labels of 1 byte`);
  const labels = new Uint8Array(count);
  labels.set(buf.subarray(8));
  return labels;
}
