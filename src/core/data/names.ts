// The data sets baffle knows by name, and what their images are before any model asks for another size.

export const DATASET_NAMES = ['mnist-10k', 'fashion-mnist', 'mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/** Where Fashion-MNIST lives when installed from the Debian package `dataset-fashion-mnist`. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export interface DatasetImages {
  channels: number;
  /** Side of the stored images (MNIST-like 28, CIFAR-10 32). */
  stored: number;
  /** Side the zoo models see: the paper resizes MNIST to 32×32. */
  zoo: number;
  /** Sides a loader can produce (any for the resizable grayscale sets, the stored one otherwise). */
  resizable: boolean;
  classes: number;
}

export const DATASET_IMAGES: Readonly<Record<DatasetName, DatasetImages>> = {
  'mnist-10k': { channels: 1, stored: 28, zoo: 32, resizable: true, classes: 10 },
  'fashion-mnist': { channels: 1, stored: 28, zoo: 32, resizable: true, classes: 10 },
  mnist: { channels: 1, stored: 28, zoo: 32, resizable: true, classes: 10 },
  cifar10: { channels: 3, stored: 32, zoo: 32, resizable: false, classes: 10 },
};
