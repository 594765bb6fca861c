/**
 * Benchmark of the seeded Gaussian directions: ns per element for fillDirection, perturbInto and
 * accumulateDirection (Float64Array accumulator) over n = 1e6 elements, after a warm-up, median of several
 * repetitions. benchRng measures the default backend (WebAssembly where available, see directions.ts) unless
 * told otherwise. Run: node --import tsx bench/rng.ts — prints both backends and the speed-up on on-CPU time.
 */
import { pathToFileURL } from 'node:url';
import {
  accumulateDirection,
  type DirectionBackend,
  directionBackend,
  fillDirection,
  perturbInto,
  setDirectionBackend,
} from '../src/core/rng/directions.ts';
import { processCpuNs } from './clock.ts';

export interface RngBenchResult {
  /** The implementation measured. */
  backend: DirectionBackend;
  nsPerElementFill: number;
  nsPerElementPerturb: number;
  nsPerElementAccumulate: number;
  /** The same on process on-CPU time (single-threaded here): robust to other jobs on the machine. */
  cpuNsPerElementFill: number;
  cpuNsPerElementPerturb: number;
  cpuNsPerElementAccumulate: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : 0.5 * (s[m - 1]! + s[m]!);
}

/** Median wall and on-CPU ns per element. */
function timeNs(fn: (rep: number) => void, n: number, warmup: number, reps: number): { wall: number; cpu: number } {
  for (let r = 0; r < warmup; r++) fn(r);
  const t: number[] = [];
  const c: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = processCpuNs();
    const t0 = process.hrtime.bigint();
    fn(warmup + r);
    t.push(Number(process.hrtime.bigint() - t0) / n);
    c.push((processCpuNs() - c0) / n);
  }
  return { wall: median(t), cpu: median(c) };
}

export async function benchRng(
  n = 1_000_000,
  reps = 15,
  backend: DirectionBackend | 'auto' = 'auto',
): Promise<RngBenchResult> {
  setDirectionBackend(backend);
  try {
    return measure(n, reps);
  } finally {
    setDirectionBackend('auto');
  }
}

function measure(n: number, reps: number): RngBenchResult {
  const out = new Float32Array(n);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = ((i * 37) % 101) / 101 - 0.5;
  const g = new Float64Array(n);
  const seed = 0x12345678;
  const warm = 5;
  const fill = timeNs((rep) => fillDirection(seed, rep, out), n, warm, reps);
  const perturb = timeNs((rep) => perturbInto(out, w, 1e-4, seed, rep), n, warm, reps);
  const acc = timeNs((rep) => accumulateDirection(g, 0.01, seed, rep), n, warm, reps);
  // keep results observable
  if (!Number.isFinite(out[n - 1]! + g[n - 1]!)) throw new Error('non-finite benchmark output');
  return {
    backend: directionBackend(),
    nsPerElementFill: fill.wall,
    nsPerElementPerturb: perturb.wall,
    nsPerElementAccumulate: acc.wall,
    cpuNsPerElementFill: fill.cpu,
    cpuNsPerElementPerturb: perturb.cpu,
    cpuNsPerElementAccumulate: acc.cpu,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results: RngBenchResult[] = [];
  for (const backend of ['wasm', 'js'] as const) {
    let r: RngBenchResult;
    try {
      r = await benchRng(1_000_000, 15, backend);
    } catch (e) {
      console.log(`${backend}: unavailable (${(e as Error).message})`);
      continue;
    }
    results.push(r);
    console.log(`[${r.backend}]`);
    console.log(`  fillDirection:       ${r.nsPerElementFill.toFixed(2)} ns/element`);
    console.log(`  perturbInto:         ${r.nsPerElementPerturb.toFixed(2)} ns/element`);
    console.log(`  accumulateDirection: ${r.nsPerElementAccumulate.toFixed(2)} ns/element (Float64Array)`);
    console.log(
      `  on-CPU: fill ${r.cpuNsPerElementFill.toFixed(2)}, perturb ${r.cpuNsPerElementPerturb.toFixed(2)}, ` +
        `accumulate ${r.cpuNsPerElementAccumulate.toFixed(2)} ns/element`,
    );
  }
  const [w, j] = results;
  if (w !== undefined && j !== undefined && w.backend === 'wasm') {
    const x = (a: number, b: number): string => (a / b).toFixed(2);
    console.log(
      `speed-up wasm vs js (on-CPU): fill ${x(j.cpuNsPerElementFill, w.cpuNsPerElementFill)}x, perturb ` +
        `${x(j.cpuNsPerElementPerturb, w.cpuNsPerElementPerturb)}x, accumulate ` +
        `${x(j.cpuNsPerElementAccumulate, w.cpuNsPerElementAccumulate)}x`,
    );
  }
  console.log(JSON.stringify(results));
}
