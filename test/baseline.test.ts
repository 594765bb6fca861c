// The backprop baseline (algorithm = 'bp'): the tfjs model built from the same zoo definition agrees with the
// ONNX engine on the same weights, its autograd gradient agrees with coordinate-wise finite differences, the
// wasm backend (with our kernel fixes) agrees with the cpu backend, and the federated baseline learns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfjsModel } from '../src/node/baseline/model.ts';
import { resolveConfig } from '../src/core/config/index.ts';
import { loadDataset } from '../src/node/data/index.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { simulate, type MetricsRecord } from '../src/app/simulation.ts';
import { deltaBytes } from '../src/core/fl/wire.ts';
import { referenceCrossEntropy } from '../src/core/model/index.ts';
import type { ModelConfig } from '../src/core/model/types.ts';

const base = { hidden: [] as number[], depth: 10, width: 1 };
const CONFIGS: Record<string, ModelConfig> = {
  'lenet gn hardswish': { ...base, model: 'lenet', norm: 'groupnorm', activation: 'hardswish', inputShape: [1, 12, 12], classes: 10 },
  'lenet relu': { ...base, model: 'lenet', norm: 'none', activation: 'relu', inputShape: [2, 9, 9], classes: 3 },
  'mlp gelu': { ...base, model: 'mlp', norm: 'none', activation: 'gelu', hidden: [9, 7], inputShape: [1, 5, 5], classes: 4 },
  'wrn-10-1 gn selu': { ...base, model: 'wrn', norm: 'groupnorm', activation: 'selu', inputShape: [3, 8, 8], classes: 5 },
};

/** A deterministic batch: smooth pseudo-images in [0, 1] and cycling labels. */
function batchFor(config: ModelConfig, count: number) {
  const [c, h, w] = config.inputShape;
  const x = Float32Array.from({ length: count * c * h * w }, (_, i) => (Math.sin(i * 0.37 + 0.2) + 1) / 2);
  const y = Uint8Array.from({ length: count }, (_, i) => (i * 7) % config.classes);
  return { x, y, count };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('forward: the tfjs model agrees with the ONNX engine (and the reference) on the same weights', async () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    const m = await TfjsModel.create(config, 'wasm');
    const weights = m.model.initWeights(11);
    const batch = batchFor(config, 4);
    m.setWeights(weights);
    m.setBatch(batch.x, batch.y, batch.count);
    const ort = await OrtSession.create(zooArtifact(m.model, { weights, trainable: ['all'] }));
    ort.setBatch(batch);
    const engine = await ort.logits(weights);
    const engineLoss = await ort.loss(weights);
    await ort.dispose();
    const logits = m.logits();
    const scale = Math.max(1, ...Array.from(engine, Math.abs));
    assert.equal(logits.length, batch.count * config.classes, name);
    assert.ok(maxAbsDiff(logits, engine) < 2e-5 * scale, `${name}: logits differ from ONNX by ${maxAbsDiff(logits, engine)}`);
    assert.ok(maxAbsDiff(logits, m.model.referenceLogits(weights, batch.x, batch.count)) < 2e-5 * scale, `${name}: reference`);
    assert.ok(Math.abs(m.loss() - engineLoss) < 1e-5, `${name}: loss ${m.loss()} vs ONNX ${engineLoss}`);
    m.dispose();
  }
});

/** Central differences of the reference loss along coordinate i (step taken in float32, as stored). */
function finiteDifference(model: TfjsModel, w: Float32Array, i: number, batch: ReturnType<typeof batchFor>, h: number): number {
  const { classes } = model.model.config;
  const plus = w.slice();
  const minus = w.slice();
  plus[i] = w[i]! + h;
  minus[i] = w[i]! - h;
  const lp = referenceCrossEntropy(model.model.referenceLogits(plus, batch.x, batch.count), batch.y, batch.count, classes);
  const lm = referenceCrossEntropy(model.model.referenceLogits(minus, batch.x, batch.count), batch.y, batch.count, classes);
  return (lp - lm) / (plus[i]! - minus[i]!);
}

test('gradient: autograd agrees with the coordinate-wise finite-difference gradient (tiny MLP, every coordinate)', async () => {
  const config: ModelConfig = { ...base, model: 'mlp', norm: 'none', activation: 'hardswish', hidden: [6], inputShape: [1, 4, 4], classes: 3 };
  const m = await TfjsModel.create(config, 'wasm');
  const w = m.model.initWeights(5);
  const batch = batchFor(config, 5);
  m.setWeights(w);
  m.setBatch(batch.x, batch.y, batch.count);
  const { grad } = m.lossAndGradient();
  assert.equal(grad.length, 4 * 4 * 6 + 6 + 6 * 3 + 3);
  const fd = Float64Array.from(grad, (_, i) => finiteDifference(m, w, i, batch, 1e-3));
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < grad.length; i++) {
    dot += grad[i]! * fd[i]!;
    na += grad[i]! ** 2;
    nb += fd[i]! ** 2;
  }
  assert.ok(maxAbsDiff(grad, fd) < 1e-4, `max |autograd − FD| = ${maxAbsDiff(grad, fd)}`);
  assert.ok(dot / Math.sqrt(na * nb) > 0.99999, `cosine ${dot / Math.sqrt(na * nb)}`);
  m.dispose();
});

test('gradient: LeNet (GroupNorm, Hardswish, max-pool) and WRN (strided convs) agree with finite differences', async () => {
  for (const name of ['lenet gn hardswish', 'wrn-10-1 gn selu']) {
    const config = CONFIGS[name]!;
    const m = await TfjsModel.create(config, 'wasm');
    const w = m.model.initWeights(3);
    const batch = batchFor(config, 3);
    m.setWeights(w);
    m.setBatch(batch.x, batch.y, batch.count);
    const { grad } = m.lossAndGradient();
    // A spread of coordinates touching every parameter tensor: its first, middle and last entries.
    const coords = m.layout.params.flatMap((p) => [p.offset, p.offset + Math.floor(p.size / 2), p.offset + p.size - 1]);
    const gmax = Math.max(...Array.from(grad, Math.abs));
    for (const i of coords) {
      const fd = finiteDifference(m, w, i, batch, 2e-3);
      assert.ok(Math.abs(fd - grad[i]!) < 1e-4 + 5e-3 * gmax, `${name}: coordinate ${i}: autograd ${grad[i]} vs FD ${fd}`);
    }
    m.dispose();
  }
});

test('wasm backend (with the kernel fixes) gives the cpu backend\'s gradients', async () => {
  for (const name of ['lenet gn hardswish', 'lenet relu', 'wrn-10-1 gn selu']) {
    const config = CONFIGS[name]!;
    const batch = batchFor(config, 3);
    const grads: Float32Array[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      const m = await TfjsModel.create(config, backend);
      assert.equal(m.tf.getBackend(), backend);
      m.setWeights(m.model.initWeights(7));
      m.setBatch(batch.x, batch.y, batch.count);
      grads.push(m.lossAndGradient().grad);
      m.dispose();
    }
    const scale = Math.max(...Array.from(grads[0]!, Math.abs));
    assert.ok(maxAbsDiff(grads[0]!, grads[1]!) < 1e-5 * Math.max(1, scale), `${name}: ${maxAbsDiff(grads[0]!, grads[1]!)}`);
  }
});

const dataset = loadDataset('mnist-10k');
const withoutTime = (m: MetricsRecord[]) => m.map(({ wallMs: _w, ...rest }) => rest);

test('algorithm = bp, FedSGD: learns mnist-10k, same metrics whatever the worker count, n floats up per client', async () => {
  const config = resolveConfig([
    { algorithm: 'bp', hidden: [16], clients: 10, participation: 0.5, maxSteps: 20, evalEvery: 10, seed: 3 },
  ]);
  const a = await simulate(config, dataset, 2);
  const last = a.metrics[a.metrics.length - 1]!;
  assert.ok(last.testAccuracy > 0.7, `bp accuracy after 20 steps ${last.testAccuracy}`);
  const n = a.artifact.params;
  assert.equal(last.forwardPasses, 20 * 5, 'one forward (+ one backward) pass per participant per step');
  assert.equal(last.uplinkBytes, 20 * 5 * deltaBytes(n), 'each participant uploads its gradient');
  assert.equal(last.directions, 0);
  const b = await simulate(config, dataset, 1);
  assert.deepEqual(withoutTime(b.metrics), withoutTime(a.metrics));
  assert.deepEqual(b.evalWeights, a.evalWeights);
});

test('algorithm = bp, FedAvg: local gradient steps and a model-delta upload', async () => {
  const config = resolveConfig([
    {
      algorithm: 'bp',
      hidden: [16],
      clients: 5,
      fedopt: 'fedavg',
      localSteps: 3,
      localOptimizer: 'sgd',
      localLr: 0.1,
      maxSteps: 10,
      evalEvery: 10,
      ema: false,
      seed: 3,
    },
  ]);
  const { metrics, artifact } = await simulate(config, dataset, 2);
  const last = metrics[metrics.length - 1]!;
  assert.ok(last.testAccuracy > 0.35, `bp fedavg accuracy ${last.testAccuracy}`);
  assert.equal(last.forwardPasses, 10 * 5 * 3);
  assert.equal(last.uplinkBytes, 10 * 5 * deltaBytes(artifact.params));
});
