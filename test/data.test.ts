import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { DataError } from '../src/core/data/errors.ts';
import { resizeBilinear, resizeBatchToUnit, makeResizer } from '../src/core/data/resize.ts';
import { loadMnist10k, readMnistDigits, mnist10kTrainCount } from '../src/node/data/mnist10k.ts';
import { readIdxImages, readIdxLabels } from '../src/node/data/idx.ts';
import { loadMnistLike, FASHION_MNIST_DEFAULT_DIR } from '../src/node/data/mnistIdx.ts';
import { loadCifar10 } from '../src/node/data/cifar10.ts';
import { loadDataset, DATASET_NAMES } from '../src/node/data/index.ts';
import type { Dataset } from '../src/core/data/types.ts';

const toBytes = (a: Float32Array) => Array.from(a, (v) => Math.round(v * 255));
const mean = (a: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s / a.length;
};

/** Asserts fn throws a DataError whose message contains every fragment. */
function throwsData(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

let tmpRoot: string;
before(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'baffle-data-test-'));
});
after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});
function tmpDir(name: string): string {
  const d = path.join(tmpRoot, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

describe('resize (PIL bilinear)', () => {
  test('upscale 2→4 uses center-aligned taps, edges replicate', () => {
    assert.deepEqual(Array.from(resizeBilinear(new Uint8Array([0, 100]), 2, 1, 4, 1)), [0, 25, 75, 100]);
  });

  test('upscale 2×2→3×3 interpolates both axes', () => {
    const out = resizeBilinear(new Uint8Array([10, 20, 30, 40]), 2, 2, 3, 3);
    assert.deepEqual(Array.from(out), [10, 15, 20, 20, 25, 30, 30, 35, 40]);
  });

  test('downscale antialiases with support = scale (4→2)', () => {
    // Weights (3/7, 3/7, 1/7) and (1/7, 3/7, 3/7) per PIL's tent of width 2·scale.
    assert.deepEqual(Array.from(resizeBilinear(new Uint8Array([0, 100, 200, 50]), 4, 1, 2, 1)), [71, 121]);
    assert.deepEqual(Array.from(resizeBilinear(new Uint8Array([0, 100, 200, 50]), 1, 4, 1, 2)), [71, 121]);
  });

  test('same size is the identity; constant images stay constant', () => {
    const img = new Uint8Array(28 * 28).map((_, i) => (i * 37) % 256);
    assert.deepEqual(resizeBilinear(img, 28, 28, 28, 28), img);
    for (const [w, h] of [[32, 32], [14, 14], [17, 40]] as const) {
      const out = resizeBilinear(new Uint8Array(28 * 28).fill(173), 28, 28, w, h);
      assert.ok(out.every((v) => v === 173), `${w}×${h}`);
    }
  });

  test('a reused resizer gives the same result as a fresh one at any offset', () => {
    const imgs = new Uint8Array(3 * 784).map((_, i) => (i * 7919) % 251);
    const r = makeResizer(28, 28, 32, 32);
    const dst = new Uint8Array(3 * 1024);
    for (let i = 0; i < 3; i++) r(imgs, i * 784, dst, i * 1024);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(dst.subarray(i * 1024, (i + 1) * 1024), resizeBilinear(imgs.subarray(i * 784), 28, 28, 32, 32));
    }
  });
});

describe('mnist-10k', () => {
  let ds: Dataset;
  before(() => {
    ds = loadMnist10k();
  });

  test('shape, counts and check values from the spec', () => {
    assert.equal(ds.name, 'mnist-10k');
    assert.deepEqual(ds.inputShape, [1, 32, 32]);
    assert.equal(ds.classes, 10);
    assert.equal(ds.train.count, 7996);
    assert.equal(ds.test.count, 2004);
    assert.equal(ds.train.x.length, 7996 * 1024);
    assert.equal(ds.test.x.length, 2004 * 1024);
    assert.equal(ds.train.y.length, 7996);
    assert.equal(mean(ds.train.x).toFixed(6), '0.131128');
    assert.equal(mean(ds.test.x).toFixed(6), '0.132309');
    assert.equal(ds.train.y[0], 0);
    assert.equal(
      toBytes(ds.train.x.subarray(16 * 32, 17 * 32)).join(','),
      '0,0,0,0,0,0,0,12,178,241,213,87,2,0,0,0,0,0,0,0,0,0,48,255,253,207,61,0,0,0,0,0',
    );
  });

  test('per-class split: first ⌊0.8·n_c⌋ in file order are train, class-ordered', () => {
    const raw = readMnistDigits();
    let tr = 0;
    let te = 0;
    for (const c of raw) {
      const t = mnist10kTrainCount(c.count);
      assert.equal(t, Math.floor(0.8 * c.count));
      // Labels are a contiguous block of c.label in each split.
      assert.ok(ds.train.y.subarray(tr, tr + t).every((v) => v === c.label));
      assert.ok(ds.test.y.subarray(te, te + c.count - t).every((v) => v === c.label));
      // The boundary images: last train = file image t-1, first test = file image t.
      const img = (k: number) => resizeBilinear(c.pixels.subarray(k * 784, (k + 1) * 784), 28, 28, 32, 32);
      assert.deepEqual(toBytes(ds.train.x.subarray(tr * 1024, (tr + 1) * 1024)), Array.from(img(0)));
      assert.deepEqual(toBytes(ds.train.x.subarray((tr + t - 1) * 1024, (tr + t) * 1024)), Array.from(img(t - 1)));
      assert.deepEqual(toBytes(ds.test.x.subarray(te * 1024, (te + 1) * 1024)), Array.from(img(t)));
      tr += t;
      te += c.count - t;
    }
    assert.equal(tr, 7996);
    assert.equal(te, 2004);
  });

  test('all values in [0,1] and multiples of 1/255', () => {
    for (const x of [ds.train.x, ds.test.x]) {
      for (let i = 0; i < x.length; i += 97) {
        const v = x[i]!;
        assert.ok(v >= 0 && v <= 1);
        assert.equal(v, Math.fround(Math.round(v * 255) / 255));
      }
    }
  });
});

// ---- IDX ----------------------------------------------------------------------------------------------

function idxImages(count: number, rows: number, cols: number, pixels: Uint8Array, magic = 0x803): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(magic, 0);
  h.writeUInt32BE(count, 4);
  h.writeUInt32BE(rows, 8);
  h.writeUInt32BE(cols, 12);
  return Buffer.concat([h, Buffer.from(pixels)]);
}
function idxLabels(labels: number[], magic = 0x801): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(magic, 0);
  h.writeUInt32BE(labels.length, 4);
  return Buffer.concat([h, Buffer.from(labels)]);
}
const pattern = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed * 17) % 256);

/** Writes a tiny MNIST-like set (3 train, 2 test, 28×28); gz chooses gzipped files. */
function writeMnistLike(dir: string, gz: boolean) {
  const trainPx = pattern(3 * 784, 1);
  const testPx = pattern(2 * 784, 2);
  const w = (name: string, data: Buffer) =>
    fs.writeFileSync(path.join(dir, gz ? name + '.gz' : name), gz ? zlib.gzipSync(data) : data);
  w('train-images-idx3-ubyte', idxImages(3, 28, 28, trainPx));
  w('train-labels-idx1-ubyte', idxLabels([7, 0, 9]));
  w('t10k-images-idx3-ubyte', idxImages(2, 28, 28, testPx));
  w('t10k-labels-idx1-ubyte', idxLabels([3, 5]));
  return { trainPx, testPx };
}

describe('IDX reader and MNIST-like loader', () => {
  for (const gz of [false, true]) {
    test(`reads ${gz ? 'gzipped' : 'plain'} IDX files and resizes to 32×32`, () => {
      const dir = tmpDir(gz ? 'idx-gz' : 'idx-plain');
      const { trainPx, testPx } = writeMnistLike(dir, gz);
      const suffix = gz ? '.gz' : '';
      const im = readIdxImages(path.join(dir, 'train-images-idx3-ubyte' + suffix));
      assert.equal(im.count, 3);
      assert.equal(im.rows, 28);
      assert.equal(im.cols, 28);
      assert.deepEqual(im.pixels, trainPx);
      assert.deepEqual(Array.from(readIdxLabels(path.join(dir, 't10k-labels-idx1-ubyte' + suffix))), [3, 5]);

      const ds = loadMnistLike(dir, 'mnist');
      assert.equal(ds.name, 'mnist');
      assert.deepEqual(ds.inputShape, [1, 32, 32]);
      assert.equal(ds.classes, 10);
      assert.equal(ds.train.count, 3);
      assert.equal(ds.test.count, 2);
      assert.deepEqual(Array.from(ds.train.y), [7, 0, 9]);
      assert.deepEqual(Array.from(ds.test.y), [3, 5]);
      assert.deepEqual(ds.train.x, resizeBatchToUnit(trainPx, 3, 28, 28, 32, 32));
      assert.deepEqual(ds.test.x, resizeBatchToUnit(testPx, 2, 28, 28, 32, 32));
    });
  }

  test('loadDataset("mnist") reads a user-given dataDir', () => {
    const dir = tmpDir('idx-for-loadDataset');
    writeMnistLike(dir, true);
    const ds = loadDataset('mnist', { dataDir: dir });
    assert.equal(ds.train.count, 3);
    assert.equal(ds.test.count, 2);
  });

  test('wrong magic names the file and both magics', () => {
    const dir = tmpDir('idx-wrong-magic');
    const f = path.join(dir, 'train-labels-idx1-ubyte.gz');
    fs.writeFileSync(f, zlib.gzipSync(idxImages(1, 28, 28, new Uint8Array(784))));
    throwsData(() => readIdxLabels(f), f, 'expected IDX label file magic 0x00000801, got 0x00000803');
    const g = path.join(dir, 'imgs');
    fs.writeFileSync(g, idxLabels([1, 2]));
    throwsData(() => readIdxImages(g), g, 'expected IDX image file magic 0x00000803, got 0x00000801');
  });

  test('truncated files name the file, the expected and the actual size', () => {
    const dir = tmpDir('idx-truncated');
    const f = path.join(dir, 'train-images-idx3-ubyte');
    fs.writeFileSync(f, idxImages(60000, 28, 28, new Uint8Array(984)));
    throwsData(() => readIdxImages(f), f, 'file is truncated: header says 60000 images of 28×28 = 47040016 bytes, file has 1000');
    const g = path.join(dir, 'train-labels-idx1-ubyte.gz');
    fs.writeFileSync(g, zlib.gzipSync(idxLabels([1, 2, 3]).subarray(0, 9)));
    throwsData(() => readIdxLabels(g), g, 'file is truncated', '3 labels', 'file has 9');
    const h = path.join(dir, 'short');
    fs.writeFileSync(h, Buffer.from([0, 0]));
    throwsData(() => readIdxImages(h), h, '0x00000803');
  });

  test('corrupt gzip and missing files are reported with their path', () => {
    const dir = tmpDir('idx-corrupt');
    const f = path.join(dir, 'x.gz');
    fs.writeFileSync(f, Buffer.concat([zlib.gzipSync(idxLabels([1, 2, 3])).subarray(0, 12)]));
    throwsData(() => readIdxLabels(f), f, 'gzip');
    const missing = path.join(dir, 'nope-idx1-ubyte');
    throwsData(() => readIdxLabels(missing), missing, 'not found');
    // A directory with no IDX files at all.
    throwsData(() => loadMnistLike(dir, 'mnist'), dir, 'train-images-idx3-ubyte');
    throwsData(() => loadMnistLike(path.join(dir, 'absent'), 'mnist'), path.join(dir, 'absent'), 'does not exist');
  });

  test('label count ≠ image count, and labels out of range, are errors', () => {
    const dir = tmpDir('idx-bad-labels');
    writeMnistLike(dir, false);
    const lf = path.join(dir, 'train-labels-idx1-ubyte');
    fs.writeFileSync(lf, idxLabels([1, 2]));
    throwsData(() => loadMnistLike(dir, 'mnist'), lf, 'label count 2 does not match image count 3');
    fs.writeFileSync(lf, idxLabels([1, 12, 2]));
    throwsData(() => loadMnistLike(dir, 'mnist'), lf, 'label 12 at index 1 is out of range');
  });
});

// ---- CIFAR-10 -----------------------------------------------------------------------------------------

const PER_FILE = 5;
/** Pixel byte of record r (global index g) at channel c, row h, col w — distinct per channel. */
const cifarPixel = (g: number, c: number, h: number, w: number) => (c * 80 + g * 3 + h * 2 + w) % 256;
const cifarLabel = (g: number) => (g * 3 + 1) % 10;

function writeCifar(dir: string, opts: { badLabelAt?: number } = {}) {
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  files.forEach((name, fi) => {
    const buf = Buffer.alloc(PER_FILE * 3073);
    for (let r = 0; r < PER_FILE; r++) {
      const g = fi * PER_FILE + r;
      const off = r * 3073;
      buf[off] = opts.badLabelAt === g ? 10 : cifarLabel(g);
      for (let c = 0; c < 3; c++) for (let h = 0; h < 32; h++) for (let w = 0; w < 32; w++) {
        buf[off + 1 + c * 1024 + h * 32 + w] = cifarPixel(g, c, h, w);
      }
    }
    fs.writeFileSync(path.join(dir, name), buf);
  });
}

describe('CIFAR-10 binary reader', () => {
  test('channel-major layout, labels and file order (cifar-10-batches-bin subfolder)', () => {
    const root = tmpDir('cifar-root');
    const dir = tmpDir('cifar-root/cifar-10-batches-bin');
    writeCifar(dir);
    const ds = loadDataset('cifar10', { dataDir: root });
    assert.equal(ds.name, 'cifar10');
    assert.deepEqual(ds.inputShape, [3, 32, 32]);
    assert.equal(ds.classes, 10);
    assert.equal(ds.train.count, 25);
    assert.equal(ds.test.count, 5);
    assert.equal(ds.train.x.length, 25 * 3072);
    assert.deepEqual(Array.from(ds.train.y), Array.from({ length: 25 }, (_, g) => cifarLabel(g)));
    assert.deepEqual(Array.from(ds.test.y), Array.from({ length: 5 }, (_, r) => cifarLabel(25 + r)));
    for (const [split, base] of [[ds.train, 0], [ds.test, 25]] as const) {
      for (let i = 0; i < split.count; i++) {
        for (const [c, h, w] of [[0, 0, 0], [1, 5, 7], [2, 31, 31], [0, 31, 0], [2, 0, 31]] as const) {
          const v = split.x[i * 3072 + c * 1024 + h * 32 + w]!;
          assert.equal(v, Math.fround(cifarPixel(base + i, c, h, w) / 255));
        }
      }
    }
  });

  test('directory holding the batches directly', () => {
    const dir = tmpDir('cifar-direct');
    writeCifar(dir);
    const ds = loadCifar10(dir);
    assert.equal(ds.train.count, 25);
    assert.equal(ds.test.count, 5);
    assert.ok(ds.train.x.every((v) => v >= 0 && v <= 1));
  });

  test('missing, truncated and bad-label files give clear errors', () => {
    const empty = tmpDir('cifar-empty');
    throwsData(() => loadCifar10(empty), `cifar10: no data_batch_1.bin in ${empty}`, 'binary version');

    const dir = tmpDir('cifar-broken');
    writeCifar(dir);
    const f3 = path.join(dir, 'data_batch_3.bin');
    fs.truncateSync(f3, 3073 * 2 + 100);
    throwsData(() => loadCifar10(dir), f3, '3073-byte', 'file has 6246 bytes');
    fs.rmSync(f3);
    throwsData(() => loadCifar10(dir), f3, 'missing');

    const bad = tmpDir('cifar-bad-label');
    writeCifar(bad, { badLabelAt: 7 });
    throwsData(() => loadCifar10(bad), path.join(bad, 'data_batch_2.bin'), 'label 10 in record 2 is out of range');
  });
});

// ---- dispatcher and the installed Fashion-MNIST -------------------------------------------------------

describe('loadDataset', () => {
  test('names and argument errors', () => {
    assert.deepEqual([...DATASET_NAMES], ['mnist-10k', 'fashion-mnist', 'mnist', 'cifar10']);
    throwsData(() => loadDataset('mnist', {}), 'mnist', 'data directory');
    throwsData(() => loadDataset('cifar10'), 'cifar10', 'data directory');
    throwsData(() => loadDataset('imagenet' as never), 'unknown dataset', 'mnist-10k');
  });

  test('fashion-mnist from the Debian package: 60000 / 10000', (t) => {
    if (!fs.existsSync(FASHION_MNIST_DEFAULT_DIR)) {
      t.skip(`${FASHION_MNIST_DEFAULT_DIR} not present (Debian package dataset-fashion-mnist)`);
      return;
    }
    const ds = loadDataset('fashion-mnist');
    assert.equal(ds.name, 'fashion-mnist');
    assert.deepEqual(ds.inputShape, [1, 32, 32]);
    assert.equal(ds.classes, 10);
    assert.equal(ds.train.count, 60000);
    assert.equal(ds.test.count, 10000);
    assert.equal(ds.train.x.length, 60000 * 1024);
    assert.equal(ds.test.x.length, 10000 * 1024);
    // First training labels of the official Fashion-MNIST file.
    assert.deepEqual(Array.from(ds.train.y.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    const counts = new Array(10).fill(0);
    for (const y of ds.train.y) counts[y]++;
    assert.deepEqual(counts, new Array(10).fill(6000));
  });
});
