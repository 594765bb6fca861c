// Reader for the CIFAR-10 binary version (cifar-10-binary.tar.gz): data_batch_1.bin … data_batch_5.bin
// (train, in that order) and test_batch.bin. Each record is 1 label byte (0..9) followed by 3072 pixel bytes:
// the 1024 red, then 1024 green, then 1024 blue values of a 32×32 image, each plane row-major — i.e. already
// CHW. The official files hold 10,000 records each; any whole number of records is accepted.
// Output: [3,32,32] float32, value / 255, no normalization.

import fs from 'node:fs';
import path from 'node:path';
import { DataError } from '../../core/data/errors.ts';
import { BYTE_TO_UNIT } from '../../core/data/resize.ts';
import type { Dataset, Split } from '../../core/data/types.ts';

export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILES = ['test_batch.bin'];
const PIXELS = 3 * 32 * 32;
const RECORD = 1 + PIXELS;
const CLASSES = 10;

const EXPECTED =
  'expected the CIFAR-10 binary version (cifar-10-binary.tar.gz, extracted): data_batch_1.bin … data_batch_5.bin ' +
  'and test_batch.bin, directly in the directory or in a cifar-10-batches-bin subfolder';

/** The directory that actually holds the batches: `dir` itself or `dir/cifar-10-batches-bin`. */
export function resolveCifar10Dir(dir: string): string {
  for (const d of [dir, path.join(dir, 'cifar-10-batches-bin')]) {
    if (fs.existsSync(path.join(d, 'data_batch_1.bin'))) return d;
  }
  let hint = '';
  if (fs.existsSync(path.join(dir, 'data_batch_1')) || fs.existsSync(path.join(dir, 'cifar-10-batches-py'))) {
    hint = '; found the Python (pickle) version, which is not supported';
  }
  throw new DataError(`cifar10: no data_batch_1.bin in ${dir} (${EXPECTED})${hint}`, dir);
}

function readBatch(file: string): Buffer {
  if (!fs.existsSync(file)) throw new DataError(`cifar10: missing ${file} (${EXPECTED})`, file);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read (${(e as Error).message})`, file);
  }
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new DataError(
      `${file}: expected a whole number of ${RECORD}-byte CIFAR-10 records (1 label + 3072 pixels; ` +
        `${10000 * RECORD} bytes for an official batch), file has ${buf.length} bytes — truncated or not a CIFAR-10 binary batch`,
      file,
    );
  }
  return buf;
}

function loadSplit(dir: string, files: string[]): Split {
  const bufs = files.map((f) => {
    const p = path.join(dir, f);
    return { path: p, buf: readBatch(p) };
  });
  const count = bufs.reduce((s, b) => s + b.buf.length / RECORD, 0);
  const x = new Float32Array(count * PIXELS);
  const y = new Uint8Array(count);
  let i = 0;
  for (const { path: p, buf } of bufs) {
    const n = buf.length / RECORD;
    for (let r = 0; r < n; r++, i++) {
      const off = r * RECORD;
      const label = buf[off]!;
      if (label >= CLASSES) {
        throw new DataError(`${p}: label ${label} in record ${r} is out of range (expected 0..${CLASSES - 1})`, p);
      }
      y[i] = label;
      const o = i * PIXELS;
      for (let j = 0; j < PIXELS; j++) x[o + j] = BYTE_TO_UNIT[buf[off + 1 + j]!]!;
    }
  }
  return { x, y, count };
}

/** Finds the CIFAR-10 batches in `dir` (or `dir/cifar-10-batches-bin`) without reading them; returns their directory. */
export function locateCifar10(dir: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new DataError(`cifar10: data directory ${dir} ${fs.existsSync(dir) ? 'is a file, not a directory' : 'does not exist'} (${EXPECTED})`, dir);
  }
  const d = resolveCifar10Dir(dir);
  for (const f of [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES]) {
    if (!fs.existsSync(path.join(d, f))) throw new DataError(`cifar10: missing ${path.join(d, f)} (${EXPECTED})`, path.join(d, f));
  }
  return d;
}

/** Loads CIFAR-10 from the binary batches in `dir` (or `dir/cifar-10-batches-bin`). */
export function loadCifar10(dir: string): Dataset {
  const d = locateCifar10(dir);
  return {
    name: 'cifar10',
    inputShape: [3, 32, 32],
    classes: CLASSES,
    train: loadSplit(d, CIFAR10_TRAIN_FILES),
    test: loadSplit(d, CIFAR10_TEST_FILES),
  };
}
