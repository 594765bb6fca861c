import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, SGD, makeOptimizer, type Optimizer } from '../src/core/fl/optimizer.ts';
import { Ema, emaDecayAt } from '../src/core/fl/ema.ts';
import { clipMaxAbs } from '../src/core/fl/clip.ts';
import { lrAt } from '../src/core/fl/schedule.ts';

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-5, abs = 1e-7, what = ''): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= abs + rel * Math.abs(e), `${what}[${i}]: got ${a}, expected ${e}`);
  }
}

// Deterministic gradient for step t and element i (a mix of signs and magnitudes).
const gradAt = (t: number, i: number, p: number): number => 2 * (p - 0.3 * i) + 0.1 * Math.sin(7 * t + 3 * i) - 0.05 * i;

/**
 * Reference torch.optim.Adam, written as a float64 scalar loop, element by element, straight from the
 * PyTorch docs / _single_tensor_adam (independent of src/core/fl/optimizer.ts).
 */
function refAdam(p0: number[], steps: number, lr: number, b1: number, b2: number, wd: number, eps = 1e-8): number[] {
  const out: number[] = [];
  for (let i = 0; i < p0.length; i++) {
    let p = p0[i]!;
    let m = 0;
    let v = 0;
    for (let t = 1; t <= steps; t++) {
      let g = Math.fround(gradAt(t, i, p)); // the optimizer sees float32 gradients
      g = g + wd * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const denom = Math.sqrt(v) / Math.sqrt(bc2) + eps;
      p = p - (lr / bc1) * (m / denom);
    }
    out.push(p);
  }
  return out;
}

/** Reference torch.optim.SGD (dampening 0, no Nesterov), float64 scalar loop. */
function refSgd(p0: number[], steps: number, lr: number, mu: number, wd: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < p0.length; i++) {
    let p = p0[i]!;
    let buf = 0;
    for (let t = 1; t <= steps; t++) {
      let d = Math.fround(gradAt(t, i, p)) + wd * p;
      if (mu !== 0) {
        buf = t === 1 ? d : mu * buf + d;
        d = buf;
      }
      p = p - lr * d;
    }
    out.push(p);
  }
  return out;
}

function run(opt: Optimizer, p: Float32Array, steps: number, lr: number, from = 1): void {
  const g = new Float32Array(p.length);
  for (let t = from; t < from + steps; t++) {
    for (let i = 0; i < p.length; i++) g[i] = gradAt(t, i, p[i]!);
    opt.step(p, g, lr);
  }
}

const P0 = [0.5, -1.25, 2, 0.001, -0.3, 3.5, 0];

test('Adam matches the PyTorch update formula (betas, L2 weight decay, bias correction)', () => {
  for (const [b1, b2, wd, lr] of [
    [0.9, 0.99, 5e-4, 1e-2], // BAFFLE recipe
    [0.9, 0.999, 0, 1e-3], // PyTorch defaults
    [0.5, 0.9, 0.1, 0.05],
  ] as const) {
    for (const steps of [1, 2, 5, 20]) {
      const p = Float32Array.from(P0);
      run(new Adam(P0.length, { beta1: b1, beta2: b2, weightDecay: wd }), p, steps, lr);
      assertClose(p, refAdam(P0, steps, lr, b1, b2, wd), 2e-6, 2e-7, `adam b=${b1},${b2} wd=${wd} steps=${steps}`);
    }
  }
});

test('Adam hand-computed values', () => {
  // Step 1: m̂ = g, v̂ = g², so p ← p − lr·g/(|g| + eps).
  const p = Float32Array.of(1, -2);
  const opt = new Adam(2, { beta1: 0.9, beta2: 0.99 });
  opt.step(p, Float32Array.of(0.5, -4), 0.1);
  assertClose(p, [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 4 / (4 + 1e-8)], 1e-7);
  // Step 2 with g = 0.25 on element 0: m = 0.9·0.05 + 0.1·0.25 = 0.07, v = 0.99·0.0025 + 0.01·0.0625 = 0.0031
  opt.step(p, Float32Array.of(0.25, 0), 0.1);
  const bc1 = 1 - 0.81;
  const bc2 = 1 - 0.9801;
  const expected0 = 0.9 - (0.1 / bc1) * 0.07 / (Math.sqrt(0.0031) / Math.sqrt(bc2) + 1e-8);
  assertClose([p[0]!], [expected0], 1e-6);
  // L2 (not decoupled AdamW): zero gradient, wd = 0.1 → effective grad 0.1·p, first step moves by lr.
  const q = Float32Array.of(1);
  new Adam(1, { weightDecay: 0.1 }).step(q, Float32Array.of(0), 0.01);
  assertClose(q, [0.99], 1e-6); // AdamW would give 1 − 0.01·0.1 = 0.999
});

test('Adam minimises an ill-conditioned quadratic', () => {
  const n = 50;
  const a = Array.from({ length: n }, (_, i) => 0.1 + (i % 7) * 3);
  const c = Array.from({ length: n }, (_, i) => Math.cos(i));
  const p = new Float32Array(n);
  const g = new Float32Array(n);
  const loss = (): number => p.reduce((s, pi, i) => s + 0.5 * a[i]! * (pi - c[i]!) ** 2, 0);
  const l0 = loss();
  const opt = new Adam(n, { beta1: 0.9, beta2: 0.99 });
  for (let t = 0; t < 2000; t++) {
    for (let i = 0; i < n; i++) g[i] = a[i]! * (p[i]! - c[i]!);
    opt.step(p, g, t < 1500 ? 0.02 : 0.002);
  }
  assert.ok(loss() < 1e-4 * l0, `loss ${loss()} vs initial ${l0}`);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(p[i]! - c[i]!) < 0.01, `p[${i}]=${p[i]} vs ${c[i]}`);
});

test('SGD matches the PyTorch update formula (momentum buffer init, L2 weight decay)', () => {
  for (const [mu, wd, lr] of [
    [0, 0, 0.1],
    [0, 1e-3, 0.05],
    [0.9, 0, 0.01],
    [0.9, 5e-4, 0.02],
  ] as const) {
    for (const steps of [1, 2, 6]) {
      const p = Float32Array.from(P0);
      run(new SGD(P0.length, { momentum: mu, weightDecay: wd }), p, steps, lr);
      assertClose(p, refSgd(P0, steps, lr, mu, wd), 2e-6, 2e-7, `sgd mu=${mu} wd=${wd} steps=${steps}`);
    }
  }
  // By hand: p=1, g=0.5, lr=0.1, momentum 0.9: buf₁ = 0.5 → p = 0.95; buf₂ = 0.9·0.5 + 0.5 = 0.95 → p = 0.855.
  const p = Float32Array.of(1);
  const opt = new SGD(1, { momentum: 0.9 });
  opt.step(p, Float32Array.of(0.5), 0.1);
  assertClose(p, [0.95], 1e-7);
  opt.step(p, Float32Array.of(0.5), 0.1);
  assertClose(p, [0.855], 1e-7);
});

test('optimizer state round-trips and state() is a copy', () => {
  for (const make of [
    () => new Adam(P0.length, { beta1: 0.9, beta2: 0.99, weightDecay: 5e-4 }),
    () => new SGD(P0.length, { momentum: 0.9, weightDecay: 5e-4 }),
  ]) {
    const a = make();
    const pa = Float32Array.from(P0);
    run(a, pa, 3, 0.01);
    const saved = a.state();
    const b = make();
    b.loadState(saved);
    const pb = pa.slice();
    for (const v of Object.values(saved)) if (v instanceof Float32Array) v.fill(123); // must not affect a or b
    run(a, pa, 4, 0.01, 4);
    run(b, pb, 4, 0.01, 4);
    assert.deepEqual(pb, pa);
    assert.equal(a.state()['step'], 7);
    assert.throws(() => make().loadState({ step: 1 }), /missing Float32Array/);
  }
  assert.throws(() => new Adam(3).loadState({ step: 1, m: new Float32Array(2), v: new Float32Array(3) }), /length 2/);
});

test('makeOptimizer and argument checks', () => {
  const a = makeOptimizer({ optimizer: 'adam', beta1: 0.8, beta2: 0.99, momentum: 0.9, weightDecay: 5e-4 }, 4);
  assert.ok(a instanceof Adam);
  assert.equal(a.beta1, 0.8);
  assert.equal(a.beta2, 0.99);
  assert.equal(a.weightDecay, 5e-4);
  assert.equal(a.eps, 1e-8);
  const s = makeOptimizer({ optimizer: 'sgd', beta1: 0.9, beta2: 0.99, momentum: 0.9, weightDecay: 1e-4 }, 4);
  assert.ok(s instanceof SGD);
  assert.equal(s.momentum, 0.9);
  assert.equal(s.size, 4);
  assert.throws(() => makeOptimizer({ optimizer: 'rmsprop' as 'sgd' }, 4), /unknown optimizer "rmsprop"/);
  assert.throws(() => a.step(new Float32Array(3), new Float32Array(4), 0.1), /length 4/);
  assert.throws(() => a.step(new Float32Array(4), new Float32Array(4), NaN), /lr/);
  assert.throws(() => new Adam(2, { beta2: 1 }), /beta2/);
});

test('EMA warm-up decay: min(decay, (1+t)/(10+t)), first update uses t = 1 (torch_ema)', () => {
  assert.equal(emaDecayAt(0, 0.995), 1 / 10);
  assert.equal(emaDecayAt(1, 0.995), 2 / 11);
  assert.equal(emaDecayAt(2, 0.995), 3 / 12);
  assert.equal(emaDecayAt(3, 0.995), 4 / 13);
  assert.equal(emaDecayAt(1789, 0.995), 1790 / 1799);
  assert.equal(emaDecayAt(1790, 0.995), 0.995);
  assert.equal(emaDecayAt(1e6, 0.995), 0.995);
  assert.equal(emaDecayAt(1, 0.1), 0.1);

  const init = Float32Array.of(1, -1, 0.5);
  const ema = new Ema(init, 0.995);
  init[0] = 99; // constructor copies
  const shadow = [1, -1, 0.5];
  const used: number[] = [];
  for (let t = 1; t <= 30; t++) {
    const w = Float32Array.of(Math.sin(t), t * 0.1, -t);
    assert.equal(ema.nextDecay(), (1 + t) / (10 + t));
    const d = ema.update(w);
    used.push(d);
    for (let i = 0; i < 3; i++) shadow[i] = d * shadow[i]! + (1 - d) * w[i]!;
    assertClose(ema.weights(), shadow, 1e-5, 1e-6, `ema t=${t}`);
  }
  assert.deepEqual(used.slice(0, 3), [2 / 11, 3 / 12, 4 / 13]);
  assert.equal(ema.updates, 30);

  const st = ema.state();
  const other = new Ema(new Float32Array(3), 0.995);
  other.loadState(st);
  assert.equal(other.updates, 30);
  const w = Float32Array.of(1, 2, 3);
  ema.update(w);
  other.update(w);
  assert.deepEqual(other.weights(), ema.weights());
  const out = new Float32Array(3);
  ema.copyTo(out);
  assert.deepEqual(out, ema.weights());
  assert.throws(() => ema.update(new Float32Array(2)), /expected 3/);
  assert.throws(() => new Ema(out, 1.5), /decay/);
});

test('clipMaxAbs rescales the whole vector only when max |g| exceeds the bound', () => {
  // Values exactly representable in float32, so the expected numbers are exact.
  const g = Float32Array.of(0.125, -0.75, 0.25);
  assert.equal(clipMaxAbs(g, 0.375), 0.5);
  assert.deepEqual(g, Float32Array.of(0.0625, -0.375, 0.125));
  const g2 = Float32Array.of(0.1, -0.6, 0.3);
  const s2 = clipMaxAbs(g2, 0.3);
  assertClose([s2], [0.5], 1e-6);
  assertClose(g2, [0.05, -0.3, 0.15], 1e-6);
  const h = Float32Array.of(0.125, -0.25, 0.0625);
  assert.equal(clipMaxAbs(h, 0.25), 1); // max |h| equal to the bound: untouched
  assert.deepEqual(h, Float32Array.of(0.125, -0.25, 0.0625));
  const big = Float32Array.of(100, -5);
  assert.equal(clipMaxAbs(big, 0), 1);
  assert.equal(clipMaxAbs(big, Infinity), 1);
  assert.deepEqual(big, Float32Array.of(100, -5));
  assert.equal(clipMaxAbs(new Float32Array(0), 0.3), 1);
  assert.throws(() => clipMaxAbs(big, -1), /maxAbs/);
  assert.throws(() => clipMaxAbs(Float32Array.of(1, NaN), 0.3), /NaN/);
  assert.throws(() => clipMaxAbs(Float32Array.of(1, -Infinity), 0.3), /infinite/);
});

test('lrAt: constant warm-up rate for warmupSteps steps, then the base rate', () => {
  const s = { lr: 0.01, warmupSteps: 3, warmupLr: 0.02 };
  assert.deepEqual([0, 1, 2, 3, 4, 100].map((t) => lrAt(t, s)), [0.02, 0.02, 0.02, 0.01, 0.01, 0.01]);
  assert.equal(lrAt(0, { lr: 0.01 }), 0.01);
  assert.equal(lrAt(0, { lr: 0.01, warmupSteps: 5 }), 0.01); // warmupLr defaults to lr
  assert.throws(() => lrAt(-1, s), /step/);
  assert.throws(() => lrAt(0, { lr: 0.01, warmupSteps: 1.5 }), /warmupSteps/);
});
