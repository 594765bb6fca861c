// End-to-end federated simulation on real mnist-10k digits with small models (fixed seeds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../src/core/config/index.ts';
import { loadDataset } from '../src/node/data/index.ts';
import { simulate, type MetricsRecord } from '../src/app/simulation.ts';
import { epsilonFor } from '../src/core/privacy/index.ts';

const dataset = loadDataset('mnist-10k');
const withoutTime = (m: MetricsRecord[]) => m.map(({ wallMs: _w, ...rest }) => rest);

test('same config and seed give identical metrics, whatever the worker count', async () => {
  const config = resolveConfig([
    { hidden: [8], K: 6, clients: 4, maxSteps: 6, evalEvery: 3, testSubset: 300, seedPolicy: 'per-client' },
  ]);
  const a = await simulate(config, dataset, 1);
  const b = await simulate(config, dataset, 2);
  assert.equal(a.metrics.length, 2);
  assert.deepEqual(withoutTime(a.metrics), withoutTime(b.metrics));
  assert.deepEqual(a.evalWeights, b.evalWeights);
  const c = await simulate({ ...config, seed: 2 }, dataset, 2);
  assert.notDeepEqual(withoutTime(c.metrics), withoutTime(a.metrics));
});

test('counters: K+1 forward passes and K·4 + 20 uplink bytes per participant per FedSGD step', async () => {
  const K = 7;
  const config = resolveConfig([
    { hidden: [8], K, clients: 10, participation: 0.3, maxSteps: 4, evalEvery: 4, testSubset: 100 },
  ]);
  const { metrics, artifact } = await simulate(config, dataset, 2);
  const m = metrics[metrics.length - 1];
  const participantSteps = 4 * 3;
  assert.equal(m.forwardPasses, participantSteps * (K + 1));
  assert.equal(m.uplinkBytes, participantSteps * (K * 4 + 20));
  assert.ok(m.downlinkBytes >= participantSteps * artifact.params * 4, 'FedSGD downloads the model every round');
  assert.equal(m.directions, participantSteps * K);

  const central = await simulate({ ...config, scheme: 'central' }, dataset, 2);
  assert.equal(central.metrics[0].forwardPasses, participantSteps * 2 * K);
  const shared = await simulate({ ...config, seedPolicy: 'shared' }, dataset, 2);
  assert.equal(shared.metrics[0].directions, 4 * K, 'shared seeds: the server regenerates K directions per step');
});

test('FedSGD with forward differences learns mnist-10k digits (forward passes only)', async () => {
  const config = resolveConfig([
    { hidden: [16], K: 20, clients: 10, maxSteps: 60, evalEvery: 60, testSubset: 1000, seed: 3 },
  ]);
  const { metrics } = await simulate(config, dataset, 2);
  const last = metrics[metrics.length - 1];
  assert.ok(last.testAccuracy > 0.5, `accuracy after 60 steps ${last.testAccuracy}`);
  assert.ok(last.testLoss < 1.6, `test loss ${last.testLoss}`);
});

test('FedAvg: local ZO steps and a model-delta upload also learn', async () => {
  const config = resolveConfig([
    {
      hidden: [16],
      K: 20,
      clients: 5,
      fedopt: 'fedavg',
      localSteps: 3,
      localOptimizer: 'adam',
      localLr: 0.01,
      maxSteps: 15,
      evalEvery: 15,
      testSubset: 1000,
      ema: false,
      seed: 3,
    },
  ]);
  const { metrics, artifact } = await simulate(config, dataset, 2);
  const last = metrics[metrics.length - 1];
  assert.ok(last.testAccuracy > 0.4, `fedavg accuracy ${last.testAccuracy}`);
  assert.equal(last.uplinkBytes, 15 * 5 * (artifact.params * 4 + 20));
  assert.equal(last.forwardPasses, 15 * 5 * 3 * 21);
});

test('non-IID partitions run end to end', async () => {
  for (const partition of ['dirichlet', 'shards'] as const) {
    const config = resolveConfig([{ hidden: [8], K: 4, clients: 8, partition, alpha: 0.3, maxSteps: 3, evalEvery: 3, testSubset: 100 }]);
    const { metrics } = await simulate(config, dataset, 2);
    assert.equal(metrics.length, 1);
    assert.ok(metrics[0].testAccuracy >= 0 && metrics[0].testAccuracy <= 1);
  }
});

test('a test subset is taken at an even stride, so a class-sorted split still covers every class', async () => {
  const { evaluationSplit } = await import('../src/app/simulation.ts');
  const subset = evaluationSplit(dataset.test, 200);
  assert.equal(subset.count, 200);
  assert.equal(subset.x.length, 200 * 32 * 32);
  assert.equal(new Set(subset.y).size, 10);
  assert.equal(new Set(dataset.test.y.subarray(0, 200)).size < 10, true, 'the first 200 of mnist-10k miss classes');
  assert.equal(evaluationSplit(dataset.test, null), dataset.test);
});

test('differential privacy: targetEpsilon picks the noise, records carry ε, and the noise is seeded', async () => {
  const config = resolveConfig([
    {
      hidden: [8], K: 6, clients: 20, participation: 0.25, maxSteps: 6, evalEvery: 2, testSubset: 200,
      seedPolicy: 'shared', dpClip: 2, targetEpsilon: 4, dpDelta: 1e-5,
    },
  ]);
  const a = await simulate(config, dataset, 2);
  assert.ok(a.privacy && a.privacy.noiseMultiplier > 0);
  const eps = a.metrics.map((m) => m.epsilon as number);
  for (let i = 1; i < eps.length; i++) assert.ok(eps[i]! > eps[i - 1]!, `ε grows with rounds: ${eps}`);
  const spent = eps[eps.length - 1]!;
  assert.ok(spent <= 4 && spent > 3.98, `ε after the planned steps ${spent}`);
  const accounted = epsilonFor({ noiseMultiplier: a.privacy.noiseMultiplier, sampleRate: 5 / 20, steps: 6, delta: 1e-5 });
  assert.ok(Math.abs(accounted.epsilon - spent) < 1e-9);
  // A looser budget needs less noise; the same seed gives the same noise, another seed other noise.
  const loose = await simulate({ ...config, targetEpsilon: 40 }, dataset, 2);
  assert.ok(loose.privacy!.noiseMultiplier < a.privacy.noiseMultiplier);
  assert.deepEqual(withoutTime((await simulate(config, dataset, 1)).metrics), withoutTime(a.metrics));
  const noiseless = await simulate({ ...config, dpClip: null, targetEpsilon: null }, dataset, 2);
  assert.equal(noiseless.privacy, null);
  assert.notDeepEqual(noiseless.evalWeights, a.evalWeights);
});
