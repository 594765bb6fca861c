// A join client's own training data, from a directory of IDX files (MNIST-like: the client's examples only,
// train-images-idx3-ubyte and train-labels-idx1-ubyte, gzipped or not), prepared as the server's model takes
// it: resized to its input with PIL-style bilinear interpolation, values byte / 255, then normalised.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../../core/data/errors.ts';
import { readIdxImages, readIdxLabels } from '../data/idx.ts';
import { resizeBatchToUnit } from '../../core/data/resize.ts';
import { normalizeSplit } from '../../core/data/preprocess.ts';
import type { Split } from '../../core/data/types.ts';
import type { Preprocess } from '../../core/model/artifact.ts';

function find(dir: string, stem: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  throw new DataError(`${dir}: no ${stem}(.gz) (a client data directory holds train-images-idx3-ubyte and train-labels-idx1-ubyte)`, join(dir, stem));
}

/** Checks that `dir` is a client data directory (both IDX files there) without reading them: before any work. */
export function checkLocalIdx(dir: string): void {
  if (!existsSync(dir)) throw new DataError(`--data ${dir}: no such directory (a client data directory holds train-images-idx3-ubyte and train-labels-idx1-ubyte)`, dir);
  if (!statSync(dir).isDirectory()) throw new DataError(`--data ${dir}: is a file, not a directory (a client data directory holds train-images-idx3-ubyte and train-labels-idx1-ubyte)`, dir);
  find(dir, 'train-images-idx3-ubyte');
  find(dir, 'train-labels-idx1-ubyte');
}

/** The client's examples in `dir`, as the model described by `preprocess` takes them (grayscale models only). */
export function loadLocalIdx(dir: string, preprocess: Preprocess, classes: number): Split {
  const [channels, h, w] = preprocess.image;
  if (channels !== 1) throw new DataError(`${dir}: IDX images are grayscale, the server's model takes ${channels} channels`, dir);
  const images = readIdxImages(find(dir, 'train-images-idx3-ubyte'));
  const labels = readIdxLabels(find(dir, 'train-labels-idx1-ubyte'));
  if (labels.length !== images.count) {
    throw new DataError(`${dir}: ${labels.length} labels for ${images.count} images`, dir);
  }
  if (images.count === 0) throw new DataError(`${dir}: no training examples`, dir);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) throw new DataError(`${dir}: label ${labels[i]} at index ${i} is out of range 0..${classes - 1}`, dir);
  }
  const split = { x: resizeBatchToUnit(images.pixels, images.count, images.cols, images.rows, w, h), y: labels, count: images.count };
  normalizeSplit(split, preprocess);
  return split;
}
