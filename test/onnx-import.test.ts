import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { ModelError } from '../src/core/errors.ts';
import type { ModelArtifact } from '../src/core/model/artifact.ts';
import { exportModel } from '../src/core/model/onnx/export.ts';
import { describeModel, formatDescription } from '../src/core/model/onnx/inspect.ts';
import { decodeModel, readModel } from '../src/core/model/onnx/read.ts';
import { selectTrainable } from '../src/core/model/onnx/select.ts';
import { buildTrainingGraph } from '../src/core/model/onnx/training.ts';
import { accumulateDirection, perturbInto } from '../src/core/rng/directions.ts';
import { importOnnx } from '../src/node/model/importOnnx.ts';
import { edit, lcg, mobileNetBlock, noWeights, tf2onnxNet, torchCnn, torchMlp, valueInfo } from './onnxFixtures.ts';

const { onnx } = onnxProto;
const FILE = 'model.onnx';
const SESSION: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

const prod = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

function examples(count: number, dims: readonly number[], seed = 7): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: count * prod(dims) }, () => r());
}

async function open(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, SESSION);
}

/** Runs a model on `x` ([count, ...dims]), `perRun` examples per run, concatenating each output. */
async function runModel(bytes: Uint8Array, input: string, x: Float32Array, count: number, dims: readonly number[], wanted: string[], perRun = count) {
  const outputs = [...new Set(wanted)];
  const session = await open(bytes);
  const parts: Record<string, Float32Array[]> = Object.fromEntries(outputs.map((o) => [o, []]));
  const size = prod(dims);
  for (let start = 0; start < count; start += perRun) {
    const n = Math.min(perRun, count - start);
    const res = await session.run({ [input]: new ort.Tensor('float32', x.slice(start * size, (start + n) * size), [n, ...dims]) }, outputs);
    for (const o of outputs) parts[o]!.push(res[o]!.data as Float32Array);
  }
  await session.release();
  return Object.fromEntries(outputs.map((o) => [o, Float32Array.from(parts[o]!.flatMap((p) => [...p]))]));
}

/** The model with an intermediate tensor added as an output. */
function withOutput(bytes: Uint8Array, name: string): Uint8Array {
  return edit(bytes, (m) => {
    if (!m.graph!.output!.some((o) => o.name === name)) m.graph!.output!.push(valueInfo(name, onnx.TensorProto.DataType.FLOAT, null));
  });
}

/** Runs the training graph: loss and logits for x, labels and the flat trainable weights. */
async function runTraining(session: ort.InferenceSession, a: ModelArtifact, x: Float32Array, labels: number[], weights: Float32Array) {
  const feeds: Record<string, ort.Tensor> = {
    [a.io.input]: new ort.Tensor('float32', x, [labels.length, ...a.inputDims]),
    [a.io.labels]: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [labels.length]),
  };
  for (const p of a.layout) feeds[p.name] = new ort.Tensor('float32', weights.subarray(p.offset, p.offset + p.size), p.shape);
  const res = await session.run(feeds, [a.io.loss, a.io.logits]);
  return { loss: (res[a.io.loss]!.data as Float32Array)[0]!, logits: res[a.io.logits]!.data as Float32Array, dims: res[a.io.logits]!.dims };
}

function crossEntropy(logits: Float32Array, labels: number[], classes: number): number {
  let sum = 0;
  labels.forEach((y, i) => {
    const row = [...logits.subarray(i * classes, (i + 1) * classes)];
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    sum += lse - row[y]!;
  });
  return sum / labels.length;
}

function assertClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1, ...[...expected].map(Math.abs));
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
  assert.ok(diff <= tolerance * scale, `${what}: max difference ${diff}`);
}

async function assertModelError(run: () => unknown, ...patterns: RegExp[]) {
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ModelError, `expected a ModelError, got ${caught === undefined ? 'no error' : String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
}

interface Fixture {
  name: string;
  bytes: Uint8Array;
  /** The original declares a fixed batch of 1: run it one example at a time. */
  fixedBatch?: boolean;
  classes: number;
  logits: string;
  inputDims: number[];
  image: [number, number, number];
  largestActivation: number;
}

const FIXTURES: Fixture[] = [
  { name: 'torch MLP (batch 1 declared)', bytes: torchMlp(), fixedBatch: true, classes: 10, logits: 'output', inputDims: [1, 28, 28], image: [1, 28, 28], largestActivation: 784 },
  { name: 'torch CNN (folded BN, dynamic flatten, Softmax)', bytes: torchCnn(), classes: 5, logits: '/fc/Gemm_output_0', inputDims: [3, 12, 12], image: [3, 12, 12], largestActivation: 8 * 12 * 12 },
  { name: 'tf2onnx CNN (BN, depthwise, HardSwish, LogSoftmax), opset 21', bytes: tf2onnxNet(), classes: 4, logits: 'model/dense/BiasAdd_output_0', inputDims: [16, 16, 1], image: [1, 16, 16], largestActivation: 512 },
  { name: 'tf2onnx CNN, opset 13 (HardSigmoid + Mul)', bytes: tf2onnxNet({ opset: 13 }), classes: 4, logits: 'model/dense/BiasAdd_output_0', inputDims: [16, 16, 1], image: [1, 16, 16], largestActivation: 512 },
  { name: 'MobileNet block (Clip, depthwise, residual)', bytes: mobileNetBlock(), classes: 6, logits: 'output', inputDims: [3, 16, 16], image: [3, 16, 16], largestActivation: 768 },
];

describe('ONNX import: training graph and export agree with the original model', () => {
  for (const f of FIXTURES) {
    it(f.name, async () => {
      const notes: string[] = [];
      const a = await importOnnx(f.bytes, FILE, ['all'], undefined, { onNote: (n) => notes.push(n) });
      assert.deepEqual(notes, []);
      assert.equal(a.format, 'baffle-model/1');
      assert.deepEqual(a.io, { input: a.io.input, labels: 'labels', loss: 'loss', logits: f.logits });
      assert.equal(a.classes, f.classes);
      assert.deepEqual(a.inputDims, f.inputDims);
      assert.deepEqual(a.preprocess.image, f.image);
      assert.equal(a.largestActivation, f.largestActivation);
      assert.equal(a.params, a.layout.reduce((n, p) => n + p.size, 0));
      assert.equal(a.initial.length, a.params);
      assert.equal(a.frozen, 0);
      assert.equal(a.source.kind, 'onnx');

      // Contract: inputs [input (batch symbolic), labels, params in layout order]; outputs [loss, logits].
      const g = onnx.ModelProto.decode(a.onnx).graph!;
      assert.deepEqual(g.input!.map((i) => i.name), [a.io.input, a.io.labels, ...a.layout.map((p) => p.name)]);
      assert.deepEqual(g.output!.map((o) => o.name), [a.io.loss, a.io.logits]);
      assert.ok(g.input![0]!.type!.tensorType!.shape!.dim![0]!.dimParam, 'symbolic batch');

      const count = 6;
      const x = examples(count, a.inputDims);
      const labels = Array.from({ length: count }, (_, i) => (i * 3) % a.classes);
      const perRun = f.fixedBatch ? 1 : count;
      const original = await runModel(withOutput(f.bytes, f.logits), a.io.input, x, count, a.inputDims, [a.exportOutputs[0]!.name, f.logits], perRun);

      const session = await open(a.onnx);
      const t = await runTraining(session, a, x, labels, a.initial);
      await session.release();
      assert.deepEqual(t.dims, [count, a.classes]);
      assertClose(t.logits, original[f.logits]!, 1e-5, 'training-graph logits');
      assert.ok(Math.abs(t.loss - crossEntropy(t.logits, labels, a.classes)) < 1e-5, `loss ${t.loss}`);

      // Export with the initial weights reproduces the original outputs exactly (same batching).
      const exported = exportModel(a, a.initial);
      const outName = a.exportOutputs[0]!.name;
      const back = await runModel(exported, a.io.input, x, count, a.inputDims, [outName], perRun);
      assert.deepEqual(back[outName], original[outName]);
      const inputs = onnx.ModelProto.decode(exported).graph!.input!;
      assert.deepEqual(inputs.map((i) => i.name), [a.io.input]);
      // ... and runs at any batch (symbolic) with the same results up to rounding.
      if (f.fixedBatch) assertClose((await runModel(exported, a.io.input, x, count, a.inputDims, [outName]))[outName]!, original[outName]!, 1e-5, 'batched export');
    });
  }

  it('exported weights change the outputs: zeroed head → uniform softmax, −log(classes) log-softmax', async () => {
    for (const [bytes, value] of [[torchCnn(), 1 / 5], [tf2onnxNet(), -Math.log(4)]] as const) {
      const a = await importOnnx(bytes, FILE, ['all']);
      const head = new Set(selectTrainable(readModel(bytes, FILE), ['last:1'], FILE));
      const w = a.initial.slice();
      for (const p of a.layout) if (head.has(p.name)) w.fill(0, p.offset, p.offset + p.size);
      const out = a.exportOutputs[0]!.name;
      const res = await runModel(exportModel(a, w), a.io.input, examples(3, a.inputDims), 3, a.inputDims, [out]);
      for (const v of res[out]!) assert.ok(Math.abs(v - value) < 1e-6, `${v} vs ${value}`);
    }
  });

  it('keeps the names, the frozen weights and the opset; exports a declared fixed batch as symbolic', async () => {
    const a = await importOnnx(torchMlp(), FILE, ['last:1']);
    assert.deepEqual(a.layout.map((p) => p.name), ['fc2.weight', 'fc2.bias']);
    assert.deepEqual(a.layout.map((p) => [p.offset, p.size]), [[0, 320], [320, 10]]);
    assert.equal(a.frozen, 32 * 784 + 32);
    assert.deepEqual(a.exportOutputs, [{ name: 'output', elemType: 1, dims: ['batch', 10] }]);
    const m = onnx.ModelProto.decode(a.onnx);
    assert.equal(Number(m.opsetImport[0]!.version), 17);
    assert.deepEqual(m.graph!.initializer!.map((t) => t.name), ['fc1.weight', 'fc1.bias']);
    const e = onnx.ModelProto.decode(exportModel(a, a.initial)).graph!;
    assert.deepEqual(e.initializer!.map((t) => t.name).sort(), ['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
    assert.equal(e.output![0]!.type!.tensorType!.shape!.dim![0]!.dimParam, 'batch');
    assert.ok(!e.node!.some((n) => n.opType === 'SoftmaxCrossEntropyLoss'));
  });

  it('several outputs: trains on the first float one, says so, and exports them all', async () => {
    const bytes = edit(torchMlp({ input: ['batch', 1, 28, 28] }), (m) => {
      m.graph!.output!.push(valueInfo('/relu/Relu_output_0', onnx.TensorProto.DataType.FLOAT, ['batch', 32]));
    });
    const notes: string[] = [];
    const a = await importOnnx(bytes, FILE, ['all'], undefined, { onNote: (n) => notes.push(n) });
    assert.equal(a.io.logits, 'output');
    assert.equal(a.classes, 10);
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /2 outputs/);
    assert.deepEqual(a.exportOutputs.map((o) => o.name), ['output', '/relu/Relu_output_0']);
    const res = await runModel(exportModel(a, a.initial), 'input', examples(2, a.inputDims), 2, a.inputDims, ['output', '/relu/Relu_output_0']);
    assert.equal(res['/relu/Relu_output_0']!.length, 64);
  });

  it('derives the image of flat inputs, and takes mean/std per channel', () => {
    const source = { kind: 'onnx' as const, file: FILE, sha256: '', producer: '' };
    const image = (features: number) => {
      const proto = readModel(torchMlp({ input: ['batch', features] }), FILE);
      return buildTrainingGraph(proto, ['fc2.weight'], { file: FILE, source, preprocess: { mean: [0.5], std: [0.25] } }).preprocess;
    };
    assert.deepEqual(image(784), { image: [1, 28, 28], mean: [0.5], std: [0.25] });
    assert.deepEqual(image(3072), { image: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    assert.throws(() => image(50), (e: unknown) => e instanceof ModelError && /50 features/.test(e.message));
  });

  it('picks fresh names for labels and loss when the model uses them', () => {
    const bytes = edit(torchMlp(), (m) => {
      const relu = m.graph!.node!.find((n) => n.opType === 'Relu')!;
      relu.output = ['loss'];
      m.graph!.node!.find((n) => n.name === '/fc2/Gemm')!.input![0] = 'loss';
      m.graph!.initializer![0]!.name = 'labels';
      m.graph!.node!.find((n) => n.name === '/fc1/Gemm')!.input![1] = 'labels';
    });
    const proto = readModel(bytes, FILE);
    const g = buildTrainingGraph(proto, selectTrainable(proto, ['all'], FILE), { file: FILE, source: { kind: 'onnx', file: FILE, sha256: '', producer: '' } });
    assert.equal(g.io.labels, 'labels_1');
    assert.equal(g.io.loss, 'loss_1');
  });
});

describe('ONNX import: selecting the weights to train', () => {
  const cnn = readModel(torchCnn(), FILE);
  const tf = readModel(tf2onnxNet(), FILE);
  const mobile = readModel(mobileNetBlock(), FILE);
  const sel = (p: typeof cnn, ...s: string[]) => selectTrainable(p, s, FILE);
  const CONV = ['onnx::Conv_12', 'onnx::Conv_13', 'onnx::Conv_15', 'onnx::Conv_16'];

  it('last:N, first:N, op:, node:, name:, exclusions', () => {
    assert.deepEqual(sel(cnn, 'last:1'), ['fc.weight', 'fc.bias']);
    assert.deepEqual(sel(cnn, 'last:2'), ['onnx::Conv_15', 'onnx::Conv_16', 'fc.weight', 'fc.bias']);
    assert.deepEqual(sel(cnn, 'first:1'), ['onnx::Conv_12', 'onnx::Conv_13']);
    assert.deepEqual(sel(cnn, 'op:Conv'), CONV);
    assert.deepEqual(sel(cnn, 'op:gemm'), ['fc.weight', 'fc.bias']);
    assert.deepEqual(sel(cnn, 'node:/conv2/*'), ['onnx::Conv_15', 'onnx::Conv_16']);
    assert.deepEqual(sel(cnn, 'name:onnx::Conv_1?'), CONV);
    assert.deepEqual(sel(cnn, '!op:Conv'), ['fc.weight', 'fc.bias']);
    assert.deepEqual(sel(cnn, 'all', '!name:*bias', '!name:onnx::Conv_13'), ['onnx::Conv_12', 'onnx::Conv_15', 'onnx::Conv_16', 'fc.weight']);
    assert.deepEqual(sel(cnn, 'last:1,first:1'), ['onnx::Conv_12', 'onnx::Conv_13', 'fc.weight', 'fc.bias']);
    assert.deepEqual(sel(cnn), sel(cnn, 'all'));
    assert.equal(sel(cnn, 'last:99').length, 6);
  });

  it('BatchNormalization statistics are never candidates; Conv + BN and MatMul + Add are one layer each', () => {
    const all = sel(tf, 'all');
    assert.ok(!all.some((n) => n.includes('FusedBatchNormV3/ReadVariableOp')), all.join());
    assert.deepEqual(sel(tf, 'op:BatchNormalization'), ['model/batch_normalization/ReadVariableOp:0', 'model/batch_normalization/ReadVariableOp_1:0']);
    assert.deepEqual(sel(tf, 'first:1'), ['model/conv2d/Conv2D/ReadVariableOp:0', ...sel(tf, 'op:BatchNormalization')]);
    assert.deepEqual(sel(tf, 'last:1'), ['model/dense/MatMul/ReadVariableOp:0', 'model/dense/BiasAdd/ReadVariableOp:0']);
    assert.equal(all.length, 7);
    assert.deepEqual(sel(mobile, 'last:1'), ['classifier.1.weight', 'classifier.1.bias']);
    assert.ok(!sel(mobile, 'all').some((n) => n.startsWith('onnx::Clip')), 'Clip bounds are not weights');
  });

  it('frozen counts the candidates not trained (not statistics or constants)', async () => {
    const a = await importOnnx(torchCnn(), FILE, ['last:1']);
    assert.equal(a.params, 5 * 144 + 5);
    assert.equal(a.frozen, 8 * 27 + 8 + 16 * 72 + 16);
    const t = await importOnnx(tf2onnxNet(), FILE, ['!op:BatchNormalization']);
    assert.equal(t.frozen, 16);
    const m = await importOnnx(mobileNetBlock(), FILE, ['all']);
    assert.equal(m.frozen, 0);
    assert.equal(m.params, 8 * 27 + 8 + 8 * 9 + 8 + 64 + 8 + 6 * 8 + 6);
  });

  it('refuses selectors that match nothing, malformed ones, and an empty selection', async () => {
    await assertModelError(() => sel(cnn, 'name:nope*'), /name:nope\*/, /matches no/);
    await assertModelError(() => sel(cnn, 'layer:3'), /layer:3/);
    await assertModelError(() => sel(cnn, 'last:0'), /last:0/);
    await assertModelError(() => sel(cnn, 'fc.weight'), /fc\.weight/);
    await assertModelError(() => sel(cnn, 'none'), /nothing to train/);
    await assertModelError(() => sel(cnn, 'op:Gemm', '!last:1'), /nothing to train/);
  });
});

describe('ONNX import: refusals name the problem', () => {
  const r = lcg(99);
  const random = Uint8Array.from({ length: 512 }, () => Math.floor(r() * 256));
  const mlp = torchMlp();
  const importIt = (bytes: Uint8Array, selectors = ['all']) => importOnnx(bytes, FILE, selectors);

  it('files that are not ONNX, or truncated', async () => {
    await assertModelError(() => importIt(random), /model\.onnx is not an ONNX model/);
    await assertModelError(() => importIt(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])), /not an ONNX model/);
    await assertModelError(() => importIt(new Uint8Array(0)), /empty/);
    await assertModelError(() => importIt(mlp.subarray(0, mlp.length >> 1)), /truncated/);
    try {
      decodeModel(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), FILE);
      assert.fail('decoded a PNG header');
    } catch (e) {
      assert.match((e as ModelError).hint ?? '', /PNG/);
    }
  });

  it('external data, opset, other domains, no float initializers, several or non-float inputs', async () => {
    await assertModelError(() => importIt(edit(mlp, (m) => {
      const t = m.graph!.initializer![0]!;
      t.rawData = new Uint8Array(0);
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [{ key: 'location', value: 'model.onnx.data' }];
    })), /external data/, /fc1\.weight/, /model\.onnx\.data/);
    await assertModelError(() => importIt(torchMlp({ opset: 11 })), /opset 11/, /13–21/);
    await assertModelError(() => importIt(edit(mlp, (m) => { m.graph!.node![2]!.domain = 'com.microsoft'; })), /com\.microsoft/, /\/relu\/Relu/);
    await assertModelError(() => importIt(noWeights()), /no float32 initializers/);
    await assertModelError(() => importIt(edit(mlp, (m) => { m.graph!.input!.push(valueInfo('mask', 1, [1, 4])); })), /2 data inputs/, /'mask'/);
    await assertModelError(() => importIt(edit(mlp, (m) => { m.graph!.input![0]!.type!.tensorType!.elemType = onnx.TensorProto.DataType.UINT8; })), /'input' is uint8/);
  });

  it('initializers listed as graph inputs (old exporters) are not data inputs', async () => {
    const old = edit(mlp, (m) => {
      for (const t of m.graph!.initializer!) m.graph!.input!.push(valueInfo(t.name!, 1, t.dims!.map(Number)));
    });
    const a = await importIt(old, ['last:1']);
    const g = onnx.ModelProto.decode(a.onnx).graph!;
    assert.deepEqual(g.input!.map((i) => i.name), ['input', 'labels', 'fc2.weight', 'fc2.bias']);
  });

  it('unsupported ops name the op and the node', async () => {
    const lstm = edit(mlp, (m) => {
      const n = m.graph!.node![2]!;
      n.opType = 'LSTM';
      n.name = '/rnn/LSTM';
    });
    await assertModelError(() => importIt(lstm), /LSTM/, /\/rnn\/LSTM/, /#2/);
    const nms = edit(mlp, (m) => { m.graph!.node![2]!.opType = 'NonMaxSuppression'; });
    await assertModelError(() => importIt(nms), /NonMaxSuppression/, /\/relu\/Relu/);
  });

  it('outputs that are not [batch, classes], training-mode BatchNormalization, symbolic or channels-last example dims', async () => {
    await assertModelError(() => importIt(torchMlp({ classes: 20, pairs: true, input: ['batch', 1, 28, 28] })), /\[batch, 10, 2\]/, /not \[batch, classes\]/);
    await assertModelError(() => importIt(tf2onnxNet({ bnTraining: true })), /BatchNormalization/, /training mode/, /FusedBatchNormV3/);
    await assertModelError(() => importIt(torchMlp({ input: ['batch', 1, 'height', 28] })), /dimension 2 of the input 'input'/, /symbolic/);
    await assertModelError(() => importIt(edit(tf2onnxNet(), (m) => {
      m.graph!.input![0]!.type!.tensorType!.shape!.dim![3] = { dimValue: 3 };
    })), /channels last/, /input_1/);
    await assertModelError(() => importIt(edit(tf2onnxNet(), (m) => {
      const sm = m.graph!.node!.find((n) => n.opType === 'LogSoftmax')!;
      sm.attribute![0]!.i = 0;
    })), /axis 0/, /LogSoftmax/);
  });

  it('a graph that fixed its batch size is refused with the dynamic-axes hint', async () => {
    // torch without dynamic_axes folds x.view(x.size(0), -1) into a constant shape [1, -1].
    const fixed = edit(torchCnn(), (m) => {
      const g = m.graph!;
      g.input![0]!.type!.tensorType!.shape!.dim![0] = { dimValue: 1 };
      const reshape = g.node!.find((n) => n.opType === 'Reshape')!;
      g.initializer!.push({ name: 'onnx::Reshape_30', dims: [2], dataType: 7, rawData: new Uint8Array(BigInt64Array.from([1n, -1n]).buffer) });
      reshape.input![1] = 'onnx::Reshape_30';
    });
    let caught: unknown;
    try {
      await importIt(fixed);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof ModelError, String(caught));
    assert.match(caught.message, /batch of 2|\[1, /);
    assert.match(caught.hint ?? '', /dynamic_axes/);
  });
});

describe('ONNX import: inspect', () => {
  it('lists initializers, candidates, layers and problems', () => {
    const d = describeModel(decodeModel(tf2onnxNet(), FILE), ['last:1'], FILE);
    assert.equal(d.logits?.skipped, 'LogSoftmax');
    assert.deepEqual(d.problems, []);
    assert.equal(d.layers.length, 3);
    const mean = d.initializers.find((t) => t.name.endsWith('FusedBatchNormV3/ReadVariableOp:0'))!;
    assert.equal(mean.candidate, false);
    assert.match(mean.why!, /statistics/);
    assert.equal(d.totals.trainable, 8 * 4 + 4);
    assert.equal(d.totals.frozen, d.totals.candidates - d.totals.trainable);
    const text = formatDescription(d);
    for (const line of text.split('\n')) assert.ok(line.length <= 120, `line too long: ${line}`);
    assert.match(text, /LogSoftmax/);
    assert.match(text, /statistics/);

    const bad = describeModel(decodeModel(edit(torchMlp({ opset: 11 }), (m) => { m.graph!.node![2]!.opType = 'LSTM'; }), FILE), undefined, FILE);
    assert.deepEqual(bad.unsupported.map((u) => u.opType), ['LSTM']);
    assert.ok(bad.problems.some((p) => /opset 11/.test(p)));
    assert.match(formatDescription(bad), /unsupported LSTM/);
  });
});

describe('ONNX import: BAFFLE trains an imported model', () => {
  it('30 zeroth-order steps (forward differences, K = 20) lower the loss of an imported MLP head', async () => {
    const bytes = torchMlp({ input: ['batch', 1, 8, 8], hidden: 32, classes: 4, seed: 5 });
    const a = await importOnnx(bytes, FILE, ['last:1']);
    const count = 16;
    const x = examples(count, a.inputDims, 11);
    const labels = Array.from({ length: count }, (_, i) => i % 4);
    const session = await open(a.onnx);
    const loss = async (w: Float32Array) => (await runTraining(session, a, x, labels, w)).loss;

    const K = 20;
    const sigma = 1e-3;
    const lr = 2;
    const w = a.initial.slice();
    const perturbed = new Float32Array(w.length);
    const initial = await loss(w);
    for (let step = 0; step < 30; step++) {
      const seed = 1000 + step;
      const base = await loss(w);
      const g = new Float64Array(w.length);
      for (let k = 0; k < K; k++) {
        perturbInto(perturbed, w, sigma, seed, k);
        accumulateDirection(g, (await loss(perturbed)) - base, seed, k);
      }
      for (let i = 0; i < w.length; i++) w[i] = w[i]! - (lr / (K * sigma)) * g[i]!;
    }
    const final = await loss(w);
    await session.release();
    assert.ok(final < 0.8 * initial, `loss ${initial} → ${final}`);
  });
});
