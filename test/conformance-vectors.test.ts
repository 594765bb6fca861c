// The conformance vectors of test/vectors/ that a client in another language checks itself against
// (docs/protocol.md, src/core/rng/SPEC.md): regenerating them reproduces the committed files byte for byte, and
// the tables file holds exactly the tables the code uses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { conformanceFiles, f64hex, json, taskVectors } from '../scripts/conformance-vectors-gen.ts';
import { ZIG_F, ZIG_K, ZIG_R, ZIG_W } from '../src/core/rng/zigtables.ts';

const dir = new URL('./vectors/', import.meta.url);
const committed = (name: string): string => readFileSync(new URL(name, dir), 'utf8');

test('regenerating the conformance vectors reproduces the committed files byte for byte', () => {
  const files = conformanceFiles();
  assert.deepEqual(Object.keys(files).sort(), ['detmath.json', 'minibatches.json', 'uniform-stream.json', 'zigtables.json']);
  for (const [name, text] of Object.entries(files)) {
    assert.ok(committed(name) === text, `test/vectors/${name} differs from what scripts/conformance-vectors-gen.ts writes`);
  }
});

test('test/vectors/zigtables.json equals the tables the code uses (numbers and bits)', () => {
  const t = JSON.parse(committed('zigtables.json')) as {
    R: number;
    K: number[];
    W: number[];
    F: number[];
    Wbits: string[];
    Fbits: string[];
  };
  assert.equal(t.R, ZIG_R);
  assert.equal(t.K.length, 128);
  assert.equal(t.W.length, 128);
  assert.equal(t.F.length, 129);
  assert.deepEqual(t.K, Array.from(ZIG_K));
  for (let i = 0; i < 128; i++) {
    assert.ok(Object.is(t.W[i], ZIG_W[i]), `W[${i}]`);
    assert.equal(t.Wbits[i], f64hex(ZIG_W[i]!), `W[${i}] bits`);
  }
  for (let i = 0; i < 129; i++) {
    assert.ok(Object.is(t.F[i], ZIG_F[i]), `F[${i}]`);
    assert.equal(t.Fbits[i], f64hex(ZIG_F[i]!), `F[${i}] bits`);
  }
});

test('the minibatch vectors are consistent with the partition rules (every index once, batches inside the shard)', () => {
  const v = JSON.parse(committed('minibatches.json')) as {
    mnist10k: { train: number };
    cases: { sizes: number[]; clients: { shardSize: number; minibatches: { indices: number[] }[] }[] }[];
  };
  for (const c of v.cases) {
    assert.equal(c.sizes.reduce((a, b) => a + b, 0), v.mnist10k.train);
    for (const cl of c.clients) for (const b of cl.minibatches) assert.equal(b.indices.length, Math.min(32, cl.shardSize));
  }
});

/** Float32 spacing at x (protocol.md §5.7's u): 2^(e − 23) for 2^e ≤ |x| < 2^(e+1). */
function ulp32(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

interface TaskVector {
  name: string;
  frame: { kind: string; sigma: number; scheme: 'forward' | 'central'; K: number };
  passLosses: number[][];
  result: { examples: number; loss: number; scalars?: number[]; deltaSha256?: string };
}

test('tasks.json: regenerated on this machine byte for byte, or (another onnxruntime build) within the tolerance of protocol.md §5.7', async () => {
  const text = json(await taskVectors());
  if (text === committed('tasks.json')) return;
  const want = JSON.parse(committed('tasks.json')) as { tasks: TaskVector[] };
  const got = JSON.parse(text) as { tasks: TaskVector[] };
  assert.equal(got.tasks.length, want.tasks.length);
  for (let t = 0; t < want.tasks.length; t++) {
    const w = want.tasks[t]!;
    const g = got.tasks[t]!;
    assert.deepEqual(g.frame, w.frame, w.name);
    assert.equal(g.result.examples, w.result.examples, w.name);
    const flat = (x: number[][]) => x.flat();
    const lw = flat(w.passLosses);
    const lg = flat(g.passLosses);
    assert.equal(lg.length, lw.length);
    for (let i = 0; i < lw.length; i++) assert.ok(Math.abs(lg[i]! - lw[i]!) <= 4 * ulp32(lw[i]!), `${w.name}: pass ${i} loss ${lg[i]} vs ${lw[i]}`);
    assert.ok(Math.abs(g.result.loss - w.result.loss) <= 4 * ulp32(w.result.loss), `${w.name}: loss`);
    if (w.result.scalars) {
      const { sigma, scheme, K } = w.frame;
      const pass = w.passLosses[0]!;
      for (let k = 0; k < K; k++) {
        const u = scheme === 'forward' ? ulp32(Math.max(pass[k]!, pass[K]!)) : ulp32(Math.max(pass[k]!, pass[K + k]!));
        const bound = (scheme === 'forward' ? 8 * u / sigma : 4 * u / sigma) + ulp32(w.result.scalars[k]!);
        assert.ok(Math.abs(g.result.scalars![k]! - w.result.scalars[k]!) <= bound, `${w.name}: a_${k}`);
      }
    }
  }
  console.log('tasks.json: this onnxruntime gives other bits than the committed vectors, within the tolerance');
});
