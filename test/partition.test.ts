import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partition, partitionStats, type PartitionSpec } from '../src/core/fl/partition.ts';
import { UniformRng } from '../src/core/rng/uniform.ts';

// The project's seeded RNG (UniformRng: nextInt, gamma) drives the partitions, as in the simulation.
const TestRng = UniformRng;

/** Balanced labels: `perClass` examples of each class, interleaved 0,1,..,C-1,0,1,... */
function balancedLabels(classes: number, perClass: number): Uint8Array {
  const y = new Uint8Array(classes * perClass);
  for (let i = 0; i < y.length; i++) y[i] = i % classes;
  return y;
}

/** Uneven labels: class c has 50 + 13·c examples, in a scrambled order. */
function unevenLabels(classes: number): Uint8Array {
  const ys: number[] = [];
  for (let c = 0; c < classes; c++) for (let j = 0; j < 50 + 13 * c; j++) ys.push(c);
  const rng = new TestRng(999);
  for (let i = ys.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [ys[i], ys[j]] = [ys[j]!, ys[i]!];
  }
  return Uint8Array.from(ys);
}

function assertExactCover(parts: Int32Array[], n: number): void {
  const seen = new Uint8Array(n);
  let total = 0;
  for (const p of parts) {
    for (const i of p) {
      assert.ok(i >= 0 && i < n, `index ${i} out of range`);
      assert.equal(seen[i], 0, `index ${i} appears twice`);
      seen[i] = 1;
      total++;
    }
  }
  assert.equal(total, n, 'every index assigned');
}

function meanEntropy(counts: number[][]): number {
  let sum = 0;
  for (const row of counts) {
    const tot = row.reduce((a, b) => a + b, 0);
    let h = 0;
    for (const c of row) if (c > 0) h -= (c / tot) * Math.log(c / tot);
    sum += h;
  }
  return sum / counts.length;
}

const specs: PartitionSpec[] = [
  { kind: 'iid' },
  { kind: 'dirichlet', alpha: 0.5 },
  { kind: 'shards', shardsPerClient: 2 },
];

test('every index appears exactly once, all schemes, balanced and uneven labels', () => {
  for (const labels of [balancedLabels(10, 100), unevenLabels(10)]) {
    for (const spec of specs) {
      for (const clients of [1, 7, 10]) {
        const parts = partition(labels, 10, clients, spec, new TestRng(1));
        assert.equal(parts.length, clients);
        assertExactCover(parts, labels.length);
        for (const p of parts) assert.ok(p.length > 0, `${spec.kind}: empty client`);
        const stats = partitionStats(parts, labels, 10);
        assert.equal(stats.length, clients);
        stats.forEach((row, k) => assert.equal(row.reduce((a, b) => a + b, 0), parts[k]!.length));
      }
    }
  }
});

test('iid: per-class counts differ by at most 1 across clients, and sizes by at most 1', () => {
  for (const labels of [balancedLabels(10, 100), unevenLabels(10)]) {
    for (const clients of [3, 10, 17]) {
      const parts = partition(labels, 10, clients, { kind: 'iid' }, new TestRng(5));
      const stats = partitionStats(parts, labels, 10);
      for (let c = 0; c < 10; c++) {
        const col = stats.map((r) => r[c]!);
        assert.ok(Math.max(...col) - Math.min(...col) <= 1, `class ${c}: ${col.join(',')}`);
      }
      const sizes = parts.map((p) => p.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes.join(',')}`);
    }
  }
});

test('iid: client lists are shuffled, not sorted', () => {
  const labels = balancedLabels(10, 100);
  const parts = partition(labels, 10, 4, { kind: 'iid' }, new TestRng(2));
  for (const p of parts) {
    let ascending = true;
    for (let j = 1; j < p.length; j++) if (p[j]! < p[j - 1]!) ascending = false;
    assert.equal(ascending, false);
  }
});

test('dirichlet: alpha 0.1 is far more skewed than alpha 100; counts sum right', () => {
  const labels = balancedLabels(10, 200);
  const hOf = (alpha: number): number => {
    const parts = partition(labels, 10, 10, { kind: 'dirichlet', alpha }, new TestRng(42));
    assertExactCover(parts, labels.length);
    const stats = partitionStats(parts, labels, 10);
    // Column sums equal the class counts, row sums the client sizes.
    for (let c = 0; c < 10; c++) assert.equal(stats.reduce((a, r) => a + r[c]!, 0), 200);
    assert.equal(stats.flat().reduce((a, b) => a + b, 0), labels.length);
    return meanEntropy(stats);
  };
  const hLow = hOf(0.1);
  const hHigh = hOf(100);
  const hMax = Math.log(10);
  assert.ok(hHigh > 0.95 * hMax, `alpha=100 entropy ${hHigh} should be near log 10 = ${hMax}`);
  assert.ok(hLow < 0.5 * hMax, `alpha=0.1 entropy ${hLow} should be low`);
  assert.ok(hLow < hHigh - 1, `alpha=0.1 (${hLow}) vs alpha=100 (${hHigh})`);
});

test('dirichlet: redraws until every client has minSize, then gives up with a clear error', () => {
  const labels = balancedLabels(10, 30);
  const parts = partition(labels, 10, 20, { kind: 'dirichlet', alpha: 0.3, minSize: 3 }, new TestRng(3));
  for (const p of parts) assert.ok(p.length >= 3);
  assertExactCover(parts, labels.length);
  // 300 examples, 150 clients, α tiny: practically impossible to give everyone ≥ 2 examples.
  assert.throws(
    () => partition(labels, 10, 150, { kind: 'dirichlet', alpha: 0.01, minSize: 2, maxRetries: 5 }, new TestRng(3)),
    /fewer than 2 example\(s\) after 5 draws/,
  );
  assert.throws(() => partition(labels, 10, 5, { kind: 'dirichlet', alpha: 0 }, new TestRng(3)), /alpha/);
  assert.throws(() => partition(labels, 10, 5, { kind: 'dirichlet', alpha: NaN }, new TestRng(3)), /alpha/);
  assert.throws(
    () => partition(labels, 10, 200, { kind: 'dirichlet', alpha: 1, minSize: 2 }, new TestRng(3)),
    /minSize/,
  );
});

test('shards: each client holds at most 2·shardsPerClient classes; sizes are equal', () => {
  const labels = unevenLabels(10).slice(0, 1000);
  const fixed = balancedLabels(10, 60);
  for (const [y, clients, s] of [
    [fixed, 10, 2],
    [fixed, 20, 1],
    [fixed, 6, 3],
    [labels, 10, 2],
  ] as const) {
    const parts = partition(y, 10, clients, { kind: 'shards', shardsPerClient: s }, new TestRng(11));
    assertExactCover(parts, y.length);
    const stats = partitionStats(parts, y, 10);
    for (const row of stats) {
      const k = row.filter((c) => c > 0).length;
      assert.ok(k <= 2 * s, `client has ${k} classes > ${2 * s}`);
    }
    const sizes = parts.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= s, `sizes ${sizes.join(',')}`);
  }
  // With balanced data and 2 shards/client, most clients see only 1–2 classes (pathological non-IID).
  const parts = partition(fixed, 10, 10, { kind: 'shards', shardsPerClient: 2 }, new TestRng(12));
  const stats = partitionStats(parts, fixed, 10);
  assert.ok(meanEntropy(stats) < 0.8);
});

test('determinism: equal seeds give identical partitions, different seeds differ', () => {
  const labels = unevenLabels(10);
  for (const spec of specs) {
    const a = partition(labels, 10, 7, spec, new TestRng(123));
    const b = partition(labels, 10, 7, spec, new TestRng(123));
    const c = partition(labels, 10, 7, spec, new TestRng(124));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  }
});

test('input validation', () => {
  const labels = balancedLabels(3, 4); // 12 examples
  const rng = new TestRng(0);
  assert.throws(() => partition(labels, 3, 13, { kind: 'iid' }, rng), /more clients \(13\) than examples \(12\)/);
  assert.throws(() => partition(labels, 3, 0, { kind: 'iid' }, rng), /clients must be a positive integer/);
  assert.throws(() => partition(labels, 3, 2.5, { kind: 'iid' }, rng), /clients must be a positive integer/);
  assert.throws(() => partition(labels, 2, 2, { kind: 'iid' }, rng), /label 2 at index 2 is out of range/);
  assert.throws(() => partition(labels, 0, 2, { kind: 'iid' }, rng), /classes must be/);
  assert.throws(() => partition(new Uint8Array(0), 3, 1, { kind: 'iid' }, rng), /no examples/);
  assert.throws(
    () => partition(labels, 3, 4, { kind: 'shards', shardsPerClient: 4 }, rng),
    /clients·shardsPerClient = 4·4 = 16 ≤ examples \(12\)/,
  );
  assert.throws(() => partition(labels, 3, 4, { kind: 'shards', shardsPerClient: 0 }, rng), /shardsPerClient/);
  assert.throws(
    () => partition(labels, 3, 2, { kind: 'bogus' } as unknown as PartitionSpec, rng),
    /unknown partition kind "bogus"/,
  );
  assert.throws(() => partitionStats([Int32Array.of(12)], labels, 3), /outside/);
  // Edge: as many clients as examples works for iid and shards; dirichlet (random sizes) gives up clearly.
  for (const spec of [specs[0]!, { kind: 'shards', shardsPerClient: 1 } as const]) {
    const parts = partition(labels, 3, 12, spec, new TestRng(9));
    assert.ok(parts.every((p) => p.length === 1));
  }
  assert.throws(() => partition(labels, 3, 12, specs[1]!, new TestRng(9)), /after 100 draws/);
});
