// The aggregation rules on hand-made vectors with known answers, the simulated attacks, and the configuration
// checks that keep a rule from meaningless or impossible settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, ConfigError } from '../src/core/config/index.ts';
import { CenteredClipAggregator } from '../src/core/fl/aggregators/centeredClip.ts';
import { CosineScreenAggregator } from '../src/core/fl/aggregators/cosineScreen.ts';
import { KrumAggregator } from '../src/core/fl/aggregators/krum.ts';
import { MeanAggregator } from '../src/core/fl/aggregators/mean.ts';
import { MedianAggregator } from '../src/core/fl/aggregators/median.ts';
import { NormScreenAggregator } from '../src/core/fl/aggregators/normScreen.ts';
import { TrimmedMeanAggregator } from '../src/core/fl/aggregators/trimmedMean.ts';
import type { ClientVector } from '../src/core/fl/aggregators/types.ts';
import { Adversary, byzantineClients } from '../src/core/fl/attacks.ts';
import { Aggregation, clipL2 } from '../src/core/fl/aggregation.ts';

const vec = (clientId: number, values: number[], examples = 1): ClientVector => ({ clientId, values: Float32Array.from(values), examples });
const near = (a: ArrayLike<number>, b: number[], eps = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= eps, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('mean: example-weighted, divided by the divisor', () => {
  const r = new MeanAggregator().aggregate([vec(0, [1, 2], 1), vec(1, [4, 8], 3)], 2);
  near(r.values, [(1 * 1 + 4 * 3) / 4 / 2, (2 * 1 + 8 * 3) / 4 / 2]);
  assert.deepEqual(r.used, [0, 1]);
});

test('median: per coordinate, odd and even counts, unweighted', () => {
  const odd = new MedianAggregator().aggregate([vec(0, [1, 9], 100), vec(1, [5, -3]), vec(2, [100, 4])]);
  near(odd.values, [5, 4]);
  const even = new MedianAggregator().aggregate([vec(0, [1]), vec(1, [2]), vec(2, [10]), vec(3, [1000])], 2);
  near(even.values, [(2 + 10) / 2 / 2]);
});

test('trimmed mean: drops ⌊βm⌋ from each end per coordinate', () => {
  // m = 5, β = 0.2: one trimmed from each end; coordinate 0: {−100, 1, 2, 3, 500} → mean(1, 2, 3) = 2;
  // coordinate 1: {0, 0, 0, 3, 6} → mean(0, 0, 3) = 1.
  const r = new TrimmedMeanAggregator(0.2).aggregate([vec(0, [-100, 0]), vec(1, [1, 0]), vec(2, [2, 0]), vec(3, [3, 6]), vec(4, [500, 3])]);
  near(r.values, [2, 1]);
  assert.equal(TrimmedMeanAggregator.trimmed(0.2, 5), 1);
  assert.throws(() => new TrimmedMeanAggregator(0.5), /β must be in \[0, 0.5\)/);
  // β < 1/2 keeps 2⌊βm⌋ < m: something is always left to average.
  near(new TrimmedMeanAggregator(0.49).aggregate([vec(0, [1]), vec(1, [2]), vec(2, [9])]).values, [2]);
});

test('krum and multi-krum: the vectors closest to their neighbours; the outlier is never chosen', () => {
  // Four clustered vectors and one far away; f = 1: m − f − 2 = 2 nearest neighbours per score.
  const vs = [vec(0, [0, 0]), vec(1, [1, 0]), vec(2, [0, 1]), vec(3, [1, 1]), vec(4, [100, 100])];
  // Scores (sum of the 2 smallest squared distances): each corner of the unit square has two neighbours at 1 → 2.
  const krum = new KrumAggregator(1, 1).aggregate(vs);
  assert.equal(new KrumAggregator(1, 1).name, 'krum');
  assert.equal(new KrumAggregator(1, null).name, 'multi-krum');
  near(krum.values, [0, 0], 0); // ties broken by the lowest index
  assert.deepEqual(krum.used, [0]);
  assert.equal(krum.excluded.length, 4);
  const multi = new KrumAggregator(1, null).aggregate(vs, 2);
  assert.deepEqual([...multi.used].sort(), [0, 1, 2, 3]);
  near(multi.values, [0.5 / 2, 0.5 / 2]);
  assert.ok(multi.excluded.some((e) => e.clientId === 4));
  assert.throws(() => new KrumAggregator(2, 1).aggregate(vs), /fewer than 2f \+ 3 = 7/);
});

test('centered clipping: a far client moves the center by at most τ/m per iteration', () => {
  const vs = [vec(0, [0]), vec(1, [0]), vec(2, [0]), vec(3, [1000])];
  // Start: the median 0; one iteration with τ = 1: the far client contributes clip(1000, 1) = 1, over m = 4.
  near(new CenteredClipAggregator(1, 1).aggregate(vs).values, [0.25]);
  // Then the three at 0 pull back (unclipped) while the far one adds 1/4: 0.25 → 0.3125 → 0.328125.
  near(new CenteredClipAggregator(1, 3).aggregate(vs).values, [0.328125], 1e-9);
  // Without clipping (τ large) it is the mean after enough iterations from the median.
  near(new CenteredClipAggregator(1e9, 1).aggregate(vs).values, [250]);
  // τ null: the median distance to the start (0, 0, 0, 1000 → 0) would clip everything; it is kept positive.
  assert.ok(Number.isFinite(new CenteredClipAggregator(null, 2).aggregate(vs).values[0]!));
});

test('cosine screening: clients pointing away from the coordinate-wise median, or too large, are left out', () => {
  // The median per coordinate of the five is (1, 1, 1). Client 3 (a flipped honest vector) has cosine −0.82 with
  // it; client 4 points along it but its norm 52 is beyond 3 × the median norm √2. The rest: example-weighted mean.
  const vs = [vec(0, [1, 1, 0], 1), vec(1, [1, 0, 1], 1), vec(2, [2, 1, 1], 2), vec(3, [-1, -1, 0], 1), vec(4, [30, 30, 30], 1)];
  const r = new CosineScreenAggregator(3).aggregate(vs, 2);
  assert.deepEqual(r.used, [0, 1, 2]);
  assert.deepEqual(r.excluded.map((e) => e.clientId), [3, 4]);
  assert.match(r.excluded[0]!.reason, /cos\(a, median\) = -0\.816 ≤ 0/);
  assert.match(r.excluded[1]!.reason, /‖a‖ = 52\.0 > 3 × median 1\.41/);
  near(r.values, [1.5 / 2, 0.75 / 2, 0.75 / 2]);
  // Nothing agrees with a zero reference: the rule falls back to the median itself.
  const zero = new CosineScreenAggregator(3).aggregate([vec(0, [0, 0]), vec(1, [0, 0]), vec(2, [1, -1])]);
  near(zero.values, [0, 0]);
  assert.throws(() => new CosineScreenAggregator(0.5), /factor must be ≥ 1/);
});

test('norm screening: whole clients beyond factor × the median norm are left out', () => {
  const vs = [vec(0, [3, 4], 1), vec(1, [0, 5], 1), vec(2, [6, 8], 2), vec(3, [300, 400], 1)];
  const r = new NormScreenAggregator(3).aggregate(vs);
  assert.deepEqual(r.used, [0, 1, 2]);
  assert.equal(r.excluded[0]!.clientId, 3);
  assert.match(r.excluded[0]!.reason, /norm-screen: ‖a‖ = 500 > 3 × median/);
  near(r.values, [(3 + 0 + 12) / 4, (4 + 5 + 16) / 4]);
});

test('attacks: a fixed Byzantine set from the seed, and each attack as defined', () => {
  const s = { attack: 'sign-flip' as const, attackFraction: 0.3, attackScale: -10, attackNoise: 200, seed: 5 };
  const byz = byzantineClients(s, 10);
  assert.equal(byz.size, 3);
  assert.deepEqual(byzantineClients(s, 10), byz, 'the same seed, the same clients');
  assert.notDeepEqual([...byzantineClients({ ...s, seed: 6 }, 10)], [...byz]);
  const honest = Array.from({ length: 10 }, (_, c) => vec(c, [1 + c, -2]));
  const flipped = new Adversary(s, 10).tamper(honest, 0);
  for (const v of flipped) near(v.values, byz.has(v.clientId) ? [-(1 + v.clientId), 2] : [1 + v.clientId, -2]);
  const scaled = new Adversary({ ...s, attack: 'scale' }, 10).tamper(honest, 0);
  for (const v of scaled) if (byz.has(v.clientId)) near(v.values, [-10 * (1 + v.clientId), 20]);
  const noisy = new Adversary({ ...s, attack: 'gaussian' }, 10).tamper(honest, 0).filter((v) => byz.has(v.clientId));
  const sd = Math.sqrt(noisy.flatMap((v) => [...v.values]).reduce((a, x) => a + x * x, 0) / (noisy.length * 2));
  assert.ok(sd > 50 && sd < 600, `gaussian attack spread ${sd}`);
  // Adaptive: each coordinate pushed against the honest mean, just past the honest extreme.
  const adaptive = new Adversary({ ...s, attack: 'adaptive' }, 10).tamper(honest, 3);
  const honestOnes = honest.filter((v) => !byz.has(v.clientId));
  const lo0 = Math.min(...honestOnes.map((v) => v.values[0]!));
  const hi1 = Math.max(...honestOnes.map((v) => v.values[1]!));
  for (const v of adaptive.filter((x) => byz.has(x.clientId))) {
    assert.ok(v.values[0]! <= lo0 && v.values[0]! >= lo0 / 2 - 1e-6, `coordinate 0 (mean > 0) in [lo/2, lo]: ${v.values[0]}`);
    assert.ok(v.values[1]! >= hi1 && v.values[1]! <= hi1 / 2 + 1e-6, `coordinate 1 (mean < 0) in [hi, hi/2]: ${v.values[1]}`);
  }
  assert.equal(new Adversary({ ...s, attack: 'none' }, 10).active, false);
});

test('a robust rule holds where the mean breaks (sign-flip, 3 of 10)', () => {
  const settings = { trimFraction: 0.3, byzantine: 3, krumSelect: null, centeredClipTau: null, centeredClipIterations: 3, screenFactor: 3, attack: 'sign-flip' as const, attackFraction: 0.3, attackScale: -10, attackNoise: 200, seed: 5, dpClip: null, noiseMultiplier: 0, dpNoise: 'central' as const };
  const honest = Array.from({ length: 10 }, (_, c) => vec(c, [1 + 0.1 * c, 2 - 0.1 * c]));
  const truth = [1.45, 1.55];
  const err = (name: 'mean' | 'median' | 'trimmed-mean' | 'krum' | 'centered-clip') => {
    const r = new Aggregation({ ...settings, aggregator: name }, 10).combine(honest, 0, 1);
    return Math.hypot(r.values[0]! - truth[0]!, r.values[1]! - truth[1]!);
  };
  assert.ok(err('mean') > 0.8, `mean pulled by the flipped vectors: ${err('mean')}`);
  for (const name of ['median', 'trimmed-mean', 'krum', 'centered-clip'] as const) assert.ok(err(name) < 0.5, `${name}: ${err(name)}`);
});

test('differential privacy: each vector clipped to L2 ≤ C, the sum noised with std σC, divided by m', () => {
  const v = Float32Array.from([3, 4]);
  assert.equal(clipL2(v, 1), 0.2);
  near(v, [0.6, 0.8]);
  const base = { aggregator: 'mean' as const, trimFraction: 0.1, byzantine: 0, krumSelect: null, centeredClipTau: null, centeredClipIterations: 3, screenFactor: 3, attack: 'none' as const, attackFraction: 0, attackScale: -10, attackNoise: 200, seed: 1, dpClip: 1, dpNoise: 'central' as const };
  const vs = [vec(0, [3, 4], 10), vec(1, [0.3, 0.4], 1)];
  const noiseless = new Aggregation({ ...base, noiseMultiplier: 0 }, 2).combine(vs, 0, 1);
  near(noiseless.values, [(0.6 + 0.3) / 2, (0.8 + 0.4) / 2], 1e-6); // unweighted: a client's weight is bounded too
  assert.equal(noiseless.clipped, 1);
  // The noise: over many rounds, std of (aggregate − noiseless) ≈ σC/m.
  const diffs: number[] = [];
  for (let step = 0; step < 400; step++) {
    const r = new Aggregation({ ...base, noiseMultiplier: 2 }, 2).combine(vs, step, 1);
    diffs.push(r.values[0]! - noiseless.values[0]!);
  }
  const sd = Math.sqrt(diffs.reduce((a, x) => a + x * x, 0) / diffs.length);
  assert.ok(Math.abs(sd - (2 * 1) / 2) < 0.1, `noise std ${sd}, expected σC/m = 1`);
});

test('configuration: meaningless or impossible combinations are refused, naming the keys', () => {
  const refuse = (layer: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(() => resolveConfig([layer]), (e: unknown) => e instanceof ConfigError && pattern.test(e.message), JSON.stringify(layer));
  refuse({ aggregator: 'median' }, /aggregator 'median' with seedPolicy 'per-client'.*'shared'.*'norm-screen'/);
  refuse({ aggregator: 'cosine-screen' }, /aggregator 'cosine-screen' with seedPolicy 'per-client'/);
  refuse({ aggregator: 'krum', seedPolicy: 'shared', clients: 4, byzantine: 1 }, /4 participants per round and byzantine = 1: Krum needs at least 2·byzantine \+ 3 = 5/);
  refuse({ aggregator: 'multi-krum', seedPolicy: 'shared', clients: 8, krumSelect: 9 }, /krumSelect 9 is more than the 8 participants per round/);
  refuse({ attackFraction: 0.2 }, /attackFraction 0.2 with attack 'none'/);
  refuse({ dpClip: 1 }, /dpClip without noiseMultiplier or targetEpsilon/);
  refuse({ noiseMultiplier: 1 }, /noiseMultiplier without dpClip/);
  refuse({ dpClip: 1, noiseMultiplier: 1 }, /dpClip with seedPolicy 'per-client'/);
  refuse({ dpClip: 1, noiseMultiplier: 1, seedPolicy: 'shared', aggregator: 'median' }, /dpClip with aggregator 'median'/);
  refuse({ fedopt: 'fedavg', aggregator: 'norm-screen' }, /fedopt 'fedavg' with aggregator 'norm-screen'/);
  // Fine: shared directions with any rule; norm-screen with per-client ones; DP with shared directions.
  resolveConfig([{ aggregator: 'krum', seedPolicy: 'shared', clients: 10, attack: 'sign-flip', attackFraction: 0.3 }]);
  resolveConfig([{ aggregator: 'norm-screen', attack: 'scale', attackFraction: 0.2 }]);
  resolveConfig([{ aggregator: 'cosine-screen', seedPolicy: 'shared', attack: 'sign-flip', attackFraction: 0.3 }]);
  resolveConfig([{ dpClip: 1, noiseMultiplier: 1, seedPolicy: 'shared' }]);
});
