// Which tfjs backend the backprop baseline should use: times LeNet (the paper's MNIST model) forward and
// forward+backward at batch 32 on the cpu and wasm backends, each in a fresh process, median of many runs.
//
//   node --import tsx src/node/baseline/backendBench.ts [--reps 30] [--model lenet] [--batch 32] [--json FILE]
//
// The result goes into docs/baseline.md.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { ModelConfig } from '../../core/model/types.ts';
import type { TfjsBackend } from './tfjs.ts';

export interface BackendTiming {
  backend: TfjsBackend;
  model: string;
  batch: number;
  reps: number;
  /** Median milliseconds per call. */
  forwardMs: number;
  forwardBackwardMs: number;
  /** One-off cost of loading tfjs, its gradients and the backend. */
  loadMs: number;
}

export function benchModelConfig(model: string): ModelConfig {
  const base: Omit<ModelConfig, 'model'> = { activation: 'hardswish', norm: 'none', hidden: [], depth: 10, width: 2, inputShape: [1, 32, 32], classes: 10 };
  if (model === 'lenet') return { ...base, model: 'lenet' };
  if (model === 'mlp') return { ...base, model: 'mlp', hidden: [128] };
  if (model === 'wrn-10-2') return { ...base, model: 'wrn', norm: 'groupnorm' };
  throw new Error(`unknown bench model ${model} (lenet, mlp, wrn-10-2)`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs inside the child process: one backend, one model. */
async function child(backend: TfjsBackend, model: string, batch: number, reps: number): Promise<BackendTiming> {
  const t0 = performance.now();
  const { TfjsModel } = await import('./model.ts');
  const m = await TfjsModel.create(benchModelConfig(model), backend);
  const loadMs = performance.now() - t0;
  const [c, h, w] = m.model.config.inputShape;
  const x = Float32Array.from({ length: batch * c * h * w }, (_, i) => (Math.sin(i * 0.618) + 1) / 2);
  const y = Uint8Array.from({ length: batch }, (_, i) => i % 10);
  m.setWeights(m.model.initWeights(1));
  m.setBatch(x, y, batch);
  const grad = new Float32Array(m.layout.size);
  for (let i = 0; i < (backend === 'cpu' ? 1 : 3); i++) {
    m.loss();
    m.lossAndGradient(grad);
  }
  const fwd: number[] = [];
  const both: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    m.loss();
    fwd.push(performance.now() - t);
    t = performance.now();
    m.lossAndGradient(grad);
    both.push(performance.now() - t);
  }
  return { backend, model, batch, reps, forwardMs: median(fwd), forwardBackwardMs: median(both), loadMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '30' },
      model: { type: 'string', default: 'lenet' },
      batch: { type: 'string', default: '32' },
      json: { type: 'string' },
      child: { type: 'string' },
    },
  });
  const reps = Number(values.reps);
  const batch = Number(values.batch);
  if (values.child) {
    const r = await child(values.child as TfjsBackend, values.model!, batch, reps);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const results: BackendTiming[] = [];
  for (const backend of ['wasm', 'cpu'] as const) {
    const p = spawnSync(
      process.execPath,
      ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', backend, '--model', values.model!, '--batch', String(batch), '--reps', String(backend === 'cpu' ? Math.max(3, Math.round(reps / 6)) : reps)],
      { encoding: 'utf8' },
    );
    if (p.status !== 0) throw new Error(`${backend} benchmark failed:\n${p.stderr}`);
    results.push(JSON.parse(p.stdout.trim().split('\n').pop()!) as BackendTiming);
  }
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' / ');
  const lines = [
    `| backend | ${values.model} batch ${batch}: forward, ms | forward + backward, ms | load tfjs + backend, ms |`,
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.backend} | ${r.forwardMs.toFixed(2)} | ${r.forwardBackwardMs.toFixed(2)} | ${r.loadMs.toFixed(0)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average (1 / 5 / 15 min) ${load}\n`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ results, cpus: os.cpus().length, loadavg: os.loadavg() }, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
