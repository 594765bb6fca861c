// A join client's own training data, from a directory of IDX files (MNIST-like: the client's examples only,
// train-images-idx3-ubyte and train-labels-idx1-ubyte, gzipped or not), prepared like the server's data set:
// resized to 32×32 with PIL-style bilinear interpolation, values byte / 255.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../data/errors.ts';
import { readIdxImages, readIdxLabels } from '../data/idx.ts';
import { resizeBatchToUnit } from '../data/resize.ts';
import type { Split } from '../data/types.ts';

export interface LocalData {
  train: Split;
  inputShape: [number, number, number];
  classes: number;
}

function find(dir: string, stem: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  throw new DataError(`${dir}: no ${stem}(.gz) (a client data directory holds train-images-idx3-ubyte and train-labels-idx1-ubyte)`, join(dir, stem));
}

export function loadLocalIdx(dir: string, classes = 10): LocalData {
  const images = readIdxImages(find(dir, 'train-images-idx3-ubyte'));
  const labels = readIdxLabels(find(dir, 'train-labels-idx1-ubyte'));
  if (labels.length !== images.count) {
    throw new DataError(`${dir}: ${labels.length} labels for ${images.count} images`, dir);
  }
  if (images.count === 0) throw new DataError(`${dir}: no training examples`, dir);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) throw new DataError(`${dir}: label ${labels[i]} at index ${i} is out of range 0..${classes - 1}`, dir);
  }
  const x = resizeBatchToUnit(images.pixels, images.count, images.cols, images.rows, 32, 32);
  return { train: { x, y: labels, count: images.count }, inputShape: [1, 32, 32], classes };
}
