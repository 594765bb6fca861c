// MNIST-like datasets stored as the four official IDX files (MNIST, Fashion-MNIST):
//   train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
// each optionally gzipped (".gz"); the variant with a dot before "idx" (train-images.idx3-ubyte, as some
// mirrors name them) is accepted too. Images are resized (to 32×32 unless asked otherwise) exactly like PIL's bilinear resize,
// then divided by 255 (no normalization). Order is the files' order.

import fs from 'node:fs';
import path from 'node:path';
import { DataError } from '../../core/data/errors.ts';
import { readIdxImages, readIdxLabels } from './idx.ts';
import { resizeBatchToUnit } from '../../core/data/resize.ts';
import type { Dataset, Split } from '../../core/data/types.ts';

export { FASHION_MNIST_DEFAULT_DIR } from '../../core/data/names.ts';
const DST = 32;
const CLASSES = 10;

/** Finds `<stem>-<kind>` (or `<stem>.<kind>`), plain or ".gz", in dir. */
function findIdxFile(dir: string, stem: string, kind: string, name: string): string {
  const candidates = [`${stem}-${kind}`, `${stem}-${kind}.gz`, `${stem}.${kind}`, `${stem}.${kind}.gz`];
  for (const c of candidates) {
    const p = path.join(dir, c);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  throw new DataError(
    `${name}: no ${stem}-${kind}(.gz) in ${dir} (expected the four IDX files train-images-idx3-ubyte, ` +
      `train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not)`,
    path.join(dir, `${stem}-${kind}`),
  );
}

function loadSplit(dir: string, prefix: 'train' | 't10k', name: string, side: number): Split {
  const imgFile = findIdxFile(dir, `${prefix}-images`, 'idx3-ubyte', name);
  const lblFile = findIdxFile(dir, `${prefix}-labels`, 'idx1-ubyte', name);
  const images = readIdxImages(imgFile);
  const labels = readIdxLabels(lblFile);
  if (labels.length !== images.count) {
    throw new DataError(
      `${lblFile}: label count ${labels.length} does not match image count ${images.count} in ${imgFile}`,
      lblFile,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= CLASSES) {
      throw new DataError(`${lblFile}: label ${labels[i]} at index ${i} is out of range (expected 0..${CLASSES - 1})`, lblFile);
    }
  }
  const x = resizeBatchToUnit(images.pixels, images.count, images.cols, images.rows, side, side);
  return { x, y: labels, count: images.count };
}

/** Finds the four IDX files of an MNIST-like dataset in `dir` without reading them (a DataError naming what is missing). */
export function locateMnistLike(dir: string, name: string): void {
  const isFile = fs.existsSync(dir) && !fs.statSync(dir).isDirectory();
  if (!fs.existsSync(dir) || isFile) {
    throw new DataError(
      `${name}: data directory ${dir} ${isFile ? 'is a file, not a directory' : 'does not exist'} (expected a directory holding ` +
        'train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz))',
      dir,
    );
  }
  for (const prefix of ['train', 't10k']) {
    findIdxFile(dir, `${prefix}-images`, 'idx3-ubyte', name);
    findIdxFile(dir, `${prefix}-labels`, 'idx1-ubyte', name);
  }
}

/** Loads an MNIST-like IDX dataset from `dir` as [1,side,side] float32 in [0,1] (side 32 by default), 10 classes. */
export function loadMnistLike(dir: string, name: string, side = DST): Dataset {
  locateMnistLike(dir, name);
  const train = loadSplit(dir, 'train', name, side);
  const test = loadSplit(dir, 't10k', name, side);
  return { name, inputShape: [1, side, side], classes: CLASSES, train, test };
}
