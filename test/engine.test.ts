// The onnxruntime engine against the pure-TS reference forward: both graphs (the optimised one with
// engine-layout weight inputs, and the plain one), the fallback, and determinism.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { examplesPerRun, OrtSession } from '../src/node/engine/ort.ts';
import { gatherInto, optimizeWithWeightInputs, OptimizeError } from '../src/node/engine/optimized.ts';
import { ReferenceSession } from '../src/core/engine/reference.ts';
import { crossEntropy } from '../src/core/engine/metrics.ts';
import { buildModel } from '../src/core/model/index.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import type { BuiltModel } from '../src/core/model/types.ts';
import type { ModelConfig } from '../src/core/model/types.ts';
import { perturbInto } from '../src/core/rng/directions.ts';

const base = { activation: 'hardswish' as const, hidden: [128], depth: 10, width: 2, classes: 10 };
const MODELS: Record<string, ModelConfig> = {
  mlp: { ...base, model: 'mlp', norm: 'none', inputShape: [1, 32, 32] },
  lenet: { ...base, model: 'lenet', norm: 'none', inputShape: [1, 32, 32] },
  'lenet-gn': { ...base, model: 'lenet', norm: 'groupnorm', inputShape: [1, 32, 32] },
  'wrn-10-2-gn': { ...base, model: 'wrn', norm: 'groupnorm', inputShape: [3, 32, 32] },
};

function batchOf(config: ModelConfig, count: number, salt = 1) {
  const [c, h, w] = config.inputShape;
  const x = new Float32Array(count * c * h * w);
  let s = (0x1234567 ^ salt) >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s >>> 8) / 16777216;
  }
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) y[i] = (i * 3) % config.classes;
  return { x, y, count };
}

/** The training-graph artifact of a zoo model (the engine's input), every parameter trainable. */
const artifacts = new WeakMap<BuiltModel, ReturnType<typeof zooArtifact>>();
function artifactOf(model: BuiltModel) {
  let a = artifacts.get(model);
  if (!a) artifacts.set(model, (a = zooArtifact(model, { weights: model.initWeights(0), trainable: ['all'] })));
  return a;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('OrtSession matches the reference forward', () => {
  for (const [name, config] of Object.entries(MODELS)) {
    it(`${name}: optimised and plain graphs agree with the reference (logits and loss)`, async () => {
      const model = buildModel(config);
      const fast = await OrtSession.create(artifactOf(model), { graph: 'optimized' });
      const plain = await OrtSession.create(artifactOf(model), { graph: 'plain' });
      const ref = new ReferenceSession(model);
      assert.equal(fast.graph, 'optimized');
      assert.equal(plain.graph, 'plain');
      if (config.model !== 'mlp') assert.ok(Object.keys(fast.contribOps).some((k) => k.includes('nchwc')), JSON.stringify(fast.contribOps));
      const batch = batchOf(config, config.model === 'wrn' ? 2 : 4);
      const directions = config.model === 'wrn' ? [0] : [0, 1];
      for (const s of [fast, plain, ref]) s.setBatch(batch);
      const w = model.initWeights(7);
      const scratch = new Float32Array(w.length);
      try {
        for (const k of directions) {
          perturbInto(scratch, w, 0.05, 0xfeed, k); // a visible perturbation: a wrong gather would show
          const expect = await ref.logits(scratch);
          const scale = Math.max(1, ...Array.from(expect, Math.abs));
          for (const s of [fast, plain]) {
            const got = await s.logits(scratch);
            assert.ok(maxAbsDiff(got, expect) < 2e-5 * scale, `${name} ${s.graph}: logits differ by ${maxAbsDiff(got, expect)}`);
            const l = await s.loss(scratch);
            const lr = crossEntropy(expect, batch.y, batch.count, config.classes).lossSum / batch.count;
            assert.ok(Math.abs(l - lr) < 1e-5 * Math.max(1, lr), `${name} ${s.graph}: loss ${l} vs reference ${lr}`);
          }
        }
      } finally {
        await fast.dispose();
        await plain.dispose();
      }
    });
  }
});

describe('OrtSession behaviour', () => {
  it('the optimised graph is deterministic, follows buffer changes and batch changes', async () => {
    const config = MODELS.lenet!;
    const model = buildModel(config);
    const a = await OrtSession.create(artifactOf(model));
    const b = await OrtSession.create(artifactOf(model));
    assert.equal(a.graph, 'optimized', `fell back: ${a.fallbackReason}`);
    const w = model.initWeights(3);
    const scratch = new Float32Array(w.length);
    try {
      a.setBatch(batchOf(config, 32));
      b.setBatch(batchOf(config, 32));
      const losses: number[] = [];
      for (let k = 0; k < 3; k++) {
        perturbInto(scratch, w, 1e-4, 9, k); // same buffer, new contents: the gathered tensors must follow
        const la = await a.loss(scratch);
        assert.equal(la, await b.loss(scratch), 'two sessions give the same bits');
        assert.equal(la, await a.loss(scratch), 'the same session gives the same bits again');
        losses.push(la);
      }
      assert.notEqual(losses[0], losses[1]);
      const l0 = await a.loss(w);
      perturbInto(scratch, w, 1e-4, 9, 0);
      assert.equal(await a.loss(scratch), losses[0], 'alternating buffers');
      assert.equal(await a.loss(w), l0);
      // another batch size (evaluation batches differ from training ones)
      a.setBatch(batchOf(config, 5, 2));
      const logits = await a.logits(w);
      assert.equal(logits.length, 5 * config.classes);
      const ref = new ReferenceSession(model);
      ref.setBatch(batchOf(config, 5, 2));
      assert.ok(maxAbsDiff(logits, await ref.logits(w)) < 2e-5);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it("graph 'plain' and BAFFLE_ORT_GRAPH select the plain graph; bad values are refused", async () => {
    const model = buildModel(MODELS.mlp!);
    const s = await OrtSession.create(artifactOf(model), { graph: 'plain' });
    assert.equal(s.graph, 'plain');
    assert.equal(s.fallbackReason, null);
    await s.dispose();
    const saved = process.env.BAFFLE_ORT_GRAPH;
    process.env.BAFFLE_ORT_GRAPH = 'plain';
    try {
      const e = await OrtSession.create(artifactOf(model));
      assert.equal(e.graph, 'plain');
      await e.dispose();
      process.env.BAFFLE_ORT_GRAPH = 'fastest';
      await assert.rejects(OrtSession.create(artifactOf(model)), /graph must be one of/);
    } finally {
      if (saved === undefined) delete process.env.BAFFLE_ORT_GRAPH;
      else process.env.BAFFLE_ORT_GRAPH = saved;
    }
  });
});

describe('OrtSession fallback', () => {
  const model = buildModel(MODELS.lenet!);

  it("'auto' falls back to the plain graph when the optimised one cannot be built; 'optimized' refuses", async () => {
    const failing = async () => {
      throw new OptimizeError('onnxruntime folded arithmetic into a weight tensor');
    };
    const s = await OrtSession.create(artifactOf(model), { optimizer: failing });
    assert.equal(s.graph, 'plain');
    assert.match(s.fallbackReason ?? '', /folded arithmetic/);
    s.setBatch(batchOf(MODELS.lenet!, 2));
    assert.ok(Number.isFinite(await s.loss(model.initWeights(1))));
    await s.dispose();
    await assert.rejects(OrtSession.create(artifactOf(model), { graph: 'optimized', optimizer: failing }), /unavailable: onnxruntime folded/);
  });

  it('the probe catches a wrong weight layout and falls back', async () => {
    // Swap two source indices of the first gathered tensor: a silent layout bug.
    const corrupt: typeof optimizeWithWeightInputs = async (m, o) => {
      const g = await optimizeWithWeightInputs(m, o);
      const f = g.feeds.find((x) => x.kind === 'gather');
      assert.ok(f && f.kind === 'gather');
      const t = f.src[0]!;
      f.src[0] = f.src[1]!;
      f.src[1] = t;
      f.runs = null; // copy through the (corrupted) index map
      return g;
    };
    const s = await OrtSession.create(artifactOf(model), { optimizer: corrupt });
    assert.equal(s.graph, 'plain');
    assert.match(s.fallbackReason ?? '', /probe/);
    await s.dispose();
  });
});

describe('optimised graph weight maps', () => {
  it('strided runs copy exactly what the index map says; every weight is used', async () => {
    const model = buildModel(MODELS['wrn-10-2-gn']!);
    const g = await optimizeWithWeightInputs(artifactOf(model), { intraOpNumThreads: 1 });
    assert.ok(g.block === 8 || g.block === 16, `block ${g.block}`);
    assert.ok(g.foldedReorders > 0);
    const w = model.initWeights(5);
    const used = new Uint8Array(w.length);
    for (const f of g.feeds) {
      if (f.kind === 'view') {
        used.fill(1, f.offset, f.offset + f.size);
        continue;
      }
      const a = new Float32Array(f.length);
      const b = new Float32Array(f.length);
      gatherInto(a, w, f.src, f.dst);
      gatherInto(b, w, f.src, f.dst, f.runs);
      assert.deepEqual(b, a, f.name);
      for (const j of f.src) used[j] = 1;
    }
    assert.ok(used.every((u) => u === 1));
  });
});

describe('large batches run in slices', () => {
  it('WRN-10-2 at batch 32 runs as 4 slices of 8 with the loss and logits of one run; LeNet stays whole', async () => {
    const config = MODELS['wrn-10-2-gn']!;
    const model = buildModel(config);
    assert.equal(model.largestActivation, 32 * 32 * 32); // stage 1: 32 channels at 32×32
    assert.equal(examplesPerRun(model, 32), 8);
    assert.equal(examplesPerRun(buildModel(MODELS['lenet']!), 32), 32);
    const sliced = await OrtSession.create(artifactOf(model));
    const whole = await OrtSession.create(artifactOf(model), { examplesPerRun: 32 });
    const batch = batchOf(config, 32, 9);
    sliced.setBatch(batch);
    whole.setBatch(batch);
    assert.equal(sliced.runsPerBatch, 4);
    assert.equal(whole.runsPerBatch, 1);
    const w = model.initWeights(4);
    const [la, lb] = [await sliced.loss(w), await whole.loss(w)];
    assert.ok(Math.abs(la - lb) <= 1e-6 * Math.abs(lb), `${la} vs ${lb}`);
    const [ga, gb] = [await sliced.logits(w), await whole.logits(w)];
    assert.equal(ga.length, 32 * config.classes);
    assert.ok(maxAbsDiff(ga, gb) < 1e-5 * Math.max(1, ...Array.from(gb, Math.abs)), `${maxAbsDiff(ga, gb)}`);
    // An uneven last slice: 30 examples = 8 + 8 + 8 + 6.
    const odd = batchOf(config, 30, 10);
    sliced.setBatch(odd);
    whole.setBatch(odd);
    assert.equal(sliced.runsPerBatch, 4);
    assert.ok(Math.abs((await sliced.loss(w)) - (await whole.loss(w))) <= 1e-6 * Math.abs(await whole.loss(w)));
    await sliced.dispose();
    await whole.dispose();
    await assert.rejects(OrtSession.create(artifactOf(model), { examplesPerRun: 0 }), /examplesPerRun must be a positive integer/);
  });
});

describe('explicit padding of wide-kernel convolutions', () => {
  it('LeNet: both 5×5 convolutions run unpadded on a padded input, with the logits of the padded convolutions', async () => {
    const config = MODELS['lenet']!;
    const model = buildModel(config);
    const base = { intraOpNumThreads: 1 };
    const padded = await optimizeWithWeightInputs(artifactOf(model), base);
    const unpadded = await optimizeWithWeightInputs(artifactOf(model), base, { padExplicitly: false });
    if (padded.block === 0) return; // no blocked convolutions on this CPU: nothing to pad
    assert.equal(padded.paddedExplicitly, 2);
    assert.equal(unpadded.paddedExplicitly, 0);
    const a = await OrtSession.create(artifactOf(model), { graph: 'optimized', optimizer: (m, o) => optimizeWithWeightInputs(m, o) });
    const b = await OrtSession.create(artifactOf(model), { graph: 'optimized', optimizer: (m, o) => optimizeWithWeightInputs(m, o, { padExplicitly: false }) });
    const batch = batchOf(config, 4, 5);
    a.setBatch(batch);
    b.setBatch(batch);
    const w = model.initWeights(3);
    const got = await a.logits(w);
    const expect = await b.logits(w);
    await a.dispose();
    await b.dispose();
    assert.ok(maxAbsDiff(got, expect) < 1e-5 * Math.max(1, ...Array.from(expect, Math.abs)), `${maxAbsDiff(got, expect)}`);
  });

  it('WRN-10-2 (3×3 kernels, pads 1) is left as it is', async () => {
    const g = await optimizeWithWeightInputs(artifactOf(buildModel(MODELS['wrn-10-2-gn']!)), { intraOpNumThreads: 1 });
    assert.equal(g.paddedExplicitly, 0);
  });
});

describe('optimised graph experiments (off by default) stay correct', () => {
  for (const [name, opts] of [
    ['fuseHardSwish', { fuseHardSwish: true }],
    ['layerNorm', { layerNorm: true }],
    ['no fold', { foldReorders: false }],
  ] as const) {
    it(`${name}: WRN-10-2+GN agrees with the reference`, async () => {
      const config = MODELS['wrn-10-2-gn']!;
      const model = buildModel(config);
      const s = await OrtSession.create(artifactOf(model), { graph: 'optimized', optimizer: (m, o) => optimizeWithWeightInputs(m, o, opts) });
      const batch = batchOf(config, 1, 3);
      s.setBatch(batch);
      const w = model.initWeights(2);
      const ref = new ReferenceSession(model);
      ref.setBatch(batch);
      const expect = await ref.logits(w);
      const got = await s.logits(w);
      await s.dispose();
      assert.ok(maxAbsDiff(got, expect) < 2e-5 * Math.max(1, ...Array.from(expect, Math.abs)), `${name}: ${maxAbsDiff(got, expect)}`);
    });
  }
});
