import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { buildModel, defineModel, initWeights } from '../src/core/model/index.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { UniformRng } from '../src/core/rng/uniform.ts';
import { traceLayout } from '../src/core/model/layout.ts';
import { referenceCrossEntropy, erf } from '../src/core/model/reference.ts';
import type { BuiltModel, ModelConfig, ParamLayout } from '../src/core/model/types.ts';

const base: ModelConfig = {
  model: 'lenet',
  activation: 'hardswish',
  norm: 'groupnorm',
  hidden: [128],
  depth: 10,
  width: 2,
  inputShape: [1, 32, 32],
  classes: 10,
};
const cfg = (over: Partial<ModelConfig>): ModelConfig => ({ ...base, ...over });
const layoutOf = (c: ModelConfig): ParamLayout => traceLayout(defineModel(c), c.inputShape).layout;
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Independent closed-form parameter count of WRN-d-w (no norm parameters). */
function wrnCount(d: number, w: number, inC: number, classes: number): number {
  const n = (d - 4) / 6;
  let total = 9 * inC * 16;
  let c = 16;
  for (const [s, width] of [16 * w, 32 * w, 64 * w].entries()) {
    for (let u = 0; u < n; u++) {
      const stride = u === 0 && s > 0 ? 2 : 1;
      total += 9 * c * width + 9 * width * width + (c !== width || stride !== 1 ? c * width : 0);
      c = width;
    }
  }
  return total + c * classes + classes;
}

describe('parameter counts', () => {
  it('MLP 1024-128-10 has 132,490 parameters', () => {
    assert.equal(layoutOf(cfg({ model: 'mlp', norm: 'none', hidden: [128] })).size, 132_490);
  });
  it('LeNet (1×32×32, 10 classes) has 26,730 parameters, with or without GroupNorm', () => {
    assert.equal(layoutOf(cfg({ model: 'lenet' })).size, 26_730);
    assert.equal(layoutOf(cfg({ model: 'lenet', norm: 'none' })).size, 26_730);
  });
  it('WRN-10-2 has 302,778 parameters on 3×32×32 (302,490 on 1×32×32)', () => {
    assert.equal(layoutOf(cfg({ model: 'wrn', inputShape: [3, 32, 32] })).size, 302_778);
    assert.equal(layoutOf(cfg({ model: 'wrn', inputShape: [1, 32, 32] })).size, 302_490);
  });
  it('WRN counts match the closed form for several depths and widths', () => {
    for (const [d, w] of [[10, 1], [16, 4], [22, 2], [28, 10]] as const) {
      const c = cfg({ model: 'wrn', depth: d, width: w, inputShape: [3, 32, 32] });
      assert.equal(layoutOf(c).size, wrnCount(d, w, 3, 10), `WRN-${d}-${w}`);
    }
  });
});

describe('layout', () => {
  for (const c of [
    cfg({ model: 'mlp', norm: 'none', hidden: [128, 64] }),
    cfg({ model: 'lenet' }),
    cfg({ model: 'wrn', depth: 16, width: 2 }),
  ]) {
    it(`${c.model}: contiguous offsets, unique names, sizes match shapes`, () => {
      const { params, size } = layoutOf(c);
      let offset = 0;
      const names = new Set<string>();
      for (const p of params) {
        assert.equal(p.offset, offset, p.name);
        assert.equal(p.size, prod(p.shape), p.name);
        assert.ok(!names.has(p.name), `duplicate ${p.name}`);
        names.add(p.name);
        offset += p.size;
      }
      assert.equal(size, offset);
      assert.equal(params.at(-1)!.shape.join(), '10');
    });
  }
  it('names and shapes follow the definitions', () => {
    const lenet = layoutOf(cfg({ model: 'lenet' })).params.map((p) => `${p.name}:${p.shape.join('x')}`);
    assert.deepEqual(lenet, [
      'conv1.weight:16x1x5x5', 'conv1.bias:16', 'conv2.weight:64x16x5x5', 'conv2.bias:64', 'fc.weight:10x64', 'fc.bias:10',
    ]);
    const wrn = layoutOf(cfg({ model: 'wrn', width: 1, inputShape: [3, 32, 32] })).params.map((p) => p.name);
    assert.deepEqual(wrn, [
      'stem.weight',
      'stage1.0.conv1.weight', 'stage1.0.conv2.weight', // 16 → 16, stride 1: identity shortcut
      'stage2.0.conv1.weight', 'stage2.0.conv2.weight', 'stage2.0.shortcut.weight',
      'stage3.0.conv1.weight', 'stage3.0.conv2.weight', 'stage3.0.shortcut.weight',
      'fc.weight', 'fc.bias',
    ]);
  });
});

describe('initialisation', () => {
  it('is deterministic in the seed', () => {
    const m = buildModel(cfg({ model: 'lenet' }));
    assert.deepEqual(m.initWeights(7), m.initWeights(7));
    assert.notDeepEqual(m.initWeights(7), m.initWeights(8));
  });
  it('LeNet: PyTorch defaults, U(±1/√fan_in) for weights and biases', () => {
    const { layout } = buildModel(cfg({ model: 'lenet' }));
    const w = initWeights(layout, 1);
    const fanIn: Record<string, number> = { conv1: 25, conv2: 400, fc: 64 };
    for (const p of layout.params) {
      const bound = 1 / Math.sqrt(fanIn[p.name.split('.')[0]!]!);
      assert.equal(p.init.kind, 'uniform');
      assert.ok(Math.abs((p.init as { bound: number }).bound - bound) < 1e-12, p.name);
      const v = w.subarray(p.offset, p.offset + p.size);
      assert.ok(v.every((x) => Math.abs(x) <= Math.fround(bound)), p.name);
      assert.ok(v.some((x) => x !== 0), p.name);
    }
  });
  it('WRN: Kaiming-uniform convs (variance bound²/3), Xavier fc, zero fc bias', () => {
    const { layout } = buildModel(cfg({ model: 'wrn', inputShape: [3, 32, 32] }));
    const w = initWeights(layout, 123);
    const get = (name: string) => {
      const p = layout.params.find((q) => q.name === name)!;
      return { p, v: w.subarray(p.offset, p.offset + p.size) };
    };
    const { p, v } = get('stage3.0.conv2.weight'); // 128·128·9 = 147,456 values
    const bound = Math.sqrt(6 / (128 * 9));
    assert.deepEqual(p.init, { kind: 'uniform', bound });
    let mean = 0;
    let sq = 0;
    for (const x of v) (mean += x), (sq += x * x);
    mean /= v.length;
    const variance = sq / v.length - mean * mean;
    assert.ok(Math.abs(mean) < 0.01 * bound, `mean ${mean}`);
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.02, `variance ${variance}`);
    assert.ok(v.every((x) => Math.abs(x) <= Math.fround(bound)));
    const fc = get('fc.weight');
    assert.deepEqual(fc.p.init, { kind: 'uniform', bound: Math.sqrt(6 / (128 + 10)) });
    assert.ok(get('fc.bias').v.every((x) => x === 0));
    assert.deepEqual(get('stage2.0.shortcut.weight').p.init, { kind: 'uniform', bound: Math.sqrt(6 / 32) });
  });
  it('draws from the given uniform source in layout order', () => {
    const { layout } = buildModel(cfg({ model: 'mlp', norm: 'none', hidden: [3], inputShape: [1, 2, 2], classes: 2 }));
    const w = initWeights(layout, 0, () => ({ nextFloat: () => 0.75 }));
    const first = layout.params[0]!;
    assert.ok(Math.abs(w[0]! - 0.5 / Math.sqrt(4)) < 1e-7, `${first.name} ${w[0]}`);
  });
  it('uses UniformRng(seed) by default: w = (2u − 1)·bound in layout order', () => {
    const { layout } = buildModel(cfg({ model: 'lenet' }));
    const w = initWeights(layout, 99);
    const r = new UniformRng(99);
    for (let i = 0; i < 10; i++) assert.equal(w[i], Math.fround((2 * r.nextFloat() - 1) * 0.2));
  });
});

describe('reference helpers', () => {
  it('erf matches known values', () => {
    const known: [number, number][] = [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3.5, 0.9999992569016276], [-1.5, -0.9661051464753108]];
    for (const [x, e] of known) assert.ok(Math.abs(erf(x) - e) < 1e-14, `erf(${x}) = ${erf(x)}`);
  });
});

// ---- ORT vs reference ----

function rand(seed: number) {
  const r = new UniformRng(seed);
  return (lo: number, hi: number) => lo + (hi - lo) * r.nextFloat();
}

/** The zoo model's training graph (every parameter an input), as the engine runs it. */
function training(m: BuiltModel) {
  return zooArtifact(m, { weights: m.initWeights(0), trainable: ['all'] });
}

async function session(m: BuiltModel): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(training(m).onnx, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
}

function feeds(m: BuiltModel, w: Float32Array, x: Float32Array, y: number[]): Record<string, ort.Tensor> {
  const B = y.length;
  const { io } = training(m);
  const f: Record<string, ort.Tensor> = {
    [io.input]: new ort.Tensor('float32', x, [B, ...m.config.inputShape]),
    [io.labels]: new ort.Tensor('int64', BigInt64Array.from(y.map(BigInt)), [B]),
  };
  for (const p of m.layout.params) f[p.name] = new ort.Tensor('float32', w.subarray(p.offset, p.offset + p.size), p.shape);
  return f;
}

async function compare(c: ModelConfig, batch: number, seed: number): Promise<void> {
  const m = buildModel(c);
  const r = rand(seed);
  // Initialised weights plus noise, so zero-initialised parameters are exercised too.
  const w = m.initWeights(seed).map((v) => v + r(-0.05, 0.05));
  const x = new Float32Array(batch * prod(c.inputShape)).map(() => r(-1, 2));
  const y = Array.from({ length: batch }, () => Math.floor(r(0, c.classes)));
  const s = await session(m);
  try {
    const out = await s.run(feeds(m, w, x, y));
    const logits = out.logits!.data as Float32Array;
    assert.deepEqual(out.logits!.dims, [batch, c.classes]);
    assert.deepEqual(out.loss!.dims, []);
    const ref = m.referenceLogits(w, x, batch);
    assert.equal(ref.length, logits.length);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(ref[i]! - logits[i]!));
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `logits differ by ${diff} (scale ${scale})`);
    const ce = referenceCrossEntropy(ref, y, batch, c.classes);
    const loss = (out.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(loss - ce) <= 1e-4 * Math.max(1, ce), `ORT loss ${loss} vs reference ${ce}`);
  } finally {
    await s.release();
  }
}

describe('ONNX graph agrees with the reference forward', () => {
  const cases: [string, ModelConfig, number][] = [
    ['mlp 1024-128-10 hardswish', cfg({ model: 'mlp', norm: 'none' }), 3],
    ['mlp 192-64-32-5 relu', cfg({ model: 'mlp', norm: 'none', activation: 'relu', hidden: [64, 32], inputShape: [3, 8, 8], classes: 5 }), 3],
    ['mlp selu', cfg({ model: 'mlp', norm: 'none', activation: 'selu', hidden: [40], inputShape: [1, 6, 6] }), 3],
    ['mlp gelu', cfg({ model: 'mlp', norm: 'none', activation: 'gelu', hidden: [40], inputShape: [1, 6, 6] }), 3],
    ['mlp without hidden layers', cfg({ model: 'mlp', norm: 'none', hidden: [], inputShape: [2, 4, 4] }), 3],
    ...(['hardswish', 'relu', 'selu', 'gelu'] as const).map(
      (a): [string, ModelConfig, number] => [`lenet groupnorm ${a}`, cfg({ model: 'lenet', activation: a }), 3],
    ),
    ['lenet none hardswish', cfg({ model: 'lenet', norm: 'none' }), 3],
    ['lenet 3×15×15, 7 classes, gelu', cfg({ model: 'lenet', activation: 'gelu', inputShape: [3, 15, 15], classes: 7 }), 3],
    ['wrn-10-1 3×16×16 groupnorm hardswish', cfg({ model: 'wrn', width: 1, inputShape: [3, 16, 16] }), 3],
    ['wrn-10-1 3×16×16 none relu', cfg({ model: 'wrn', width: 1, norm: 'none', activation: 'relu', inputShape: [3, 16, 16] }), 3],
    ['wrn-10-1 3×16×16 groupnorm gelu', cfg({ model: 'wrn', width: 1, activation: 'gelu', inputShape: [3, 16, 16] }), 3],
    ['wrn-16-1 3×9×9 groupnorm selu', cfg({ model: 'wrn', depth: 16, width: 1, activation: 'selu', inputShape: [3, 9, 9] }), 3],
    ['wrn-10-2 1×32×32 groupnorm hardswish', cfg({ model: 'wrn', width: 2 }), 2],
  ];
  cases.forEach(([name, c, batch], i) => it(name, () => compare(c, batch, 1000 + i)));

  it('graph interface: inputs x, labels, parameters in layout order; outputs loss, logits; dynamic batch', async () => {
    const m = buildModel(cfg({ model: 'lenet' }));
    const s = await session(m);
    try {
      assert.deepEqual(training(m).io, { input: 'x', labels: 'labels', loss: 'loss', logits: 'logits' });
      assert.deepEqual(s.inputNames, ['x', 'labels', ...m.layout.params.map((p) => p.name)]);
      assert.deepEqual([...s.outputNames].sort(), ['logits', 'loss']);
      const w = m.initWeights(3);
      for (const B of [1, 5]) {
        const out = await s.run(feeds(m, w, new Float32Array(B * 1024).fill(0.5), new Array(B).fill(1)));
        assert.deepEqual(out.logits!.dims, [B, 10]);
      }
    } finally {
      await s.release();
    }
  });
});

describe('ONNX model structure', () => {
  it('opset 21; GroupNorm as Reshape → InstanceNormalization → Reshape; no BatchNorm', () => {
    const m = onnxProto.onnx.ModelProto.decode(training(buildModel(cfg({ model: 'wrn', width: 1 }))).onnx);
    assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 21]]);
    const ops = m.graph!.node!.map((n) => n.opType);
    assert.ok(!ops.includes('BatchNormalization'));
    assert.ok(new Set(ops).size <= 10, [...new Set(ops)].join());
    for (const op of ['Conv', 'Reshape', 'InstanceNormalization', 'HardSwish', 'Add', 'GlobalAveragePool', 'Gemm', 'SoftmaxCrossEntropyLoss']) {
      assert.ok(ops.includes(op), op);
    }
    // WRN-10-1: 2 norms per unit × 3 units + the final one = 7.
    assert.equal(ops.filter((o) => o === 'InstanceNormalization').length, 7);
    const x = m.graph!.input![0]!;
    assert.equal(x.name, 'x');
    assert.equal(x.type!.tensorType!.shape!.dim![0]!.dimParam, 'B');
  });
});

describe('configuration errors', () => {
  it('refuses BatchNorm and says why', () => {
    assert.throws(
      () => buildModel(cfg({ model: 'lenet', norm: 'batchnorm' })),
      (e: Error) =>
        /batchnorm/i.test(e.message) &&
        /running statistics/.test(e.message) &&
        /non-IID/.test(e.message) &&
        /'groupnorm'/.test(e.message) &&
        /'none'/.test(e.message),
    );
    assert.throws(() => buildModel(cfg({ model: 'wrn', norm: 'batchnorm' })), /running statistics/);
  });
  it('names the offending key', () => {
    assert.throws(() => buildModel(cfg({ model: 'wrn', depth: 12 })), /'depth'/);
    assert.throws(() => buildModel(cfg({ model: 'wrn', depth: 4 })), /'depth'/);
    assert.throws(() => buildModel(cfg({ model: 'wrn', width: 0 })), /'width'/);
    assert.throws(() => buildModel(cfg({ model: 'mlp', norm: 'groupnorm' })), /'norm'.*mlp/);
    assert.throws(() => buildModel(cfg({ model: 'mlp', norm: 'none', hidden: [0] })), /'hidden'/);
    assert.throws(() => buildModel(cfg({ activation: 'tanh' as never })), /'activation'/);
    assert.throws(() => buildModel(cfg({ norm: 'layernorm' as never })), /'norm'/);
    assert.throws(() => buildModel(cfg({ model: 'vgg' as never })), /'model'/);
    assert.throws(() => buildModel(cfg({ classes: 1 })), /'classes'/);
    assert.throws(() => buildModel(cfg({ inputShape: [1, 0, 32] })), /'inputShape'/);
  });
  it('reference forward checks its arguments', () => {
    const m = buildModel(cfg({ model: 'lenet' }));
    assert.throws(() => m.referenceLogits(new Float32Array(5), new Float32Array(1024), 1), /parameters/);
    assert.throws(() => m.referenceLogits(m.initWeights(1), new Float32Array(1000), 1), /x has/);
  });
});
