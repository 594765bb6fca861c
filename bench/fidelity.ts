// Prints the fidelity tables of docs/fidelity.md from finished run directories, next to the reference
// curves of the official code and the independent implementation (shared/docs/reference-curves.md).
// Usage: node --import tsx bench/fidelity.ts runs/fidelity-lenet runs/fidelity-mlp
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Reference {
  label: string;
  /** step → test accuracy in %. */
  points: Record<number, number>;
}

const REFERENCES: Record<string, Reference[]> = {
  lenet: [
    { label: 'official code (PyTorch, CPU)', points: { 100: 27.1, 150: 34.2, 200: 42.3, 250: 49.5, 300: 56.2, 400: 66.8, 500: 73.3 } },
    { label: 'independent impl., padded LeNet (CPU)', points: { 50: 20.7, 100: 27.0, 150: 32.7, 200: 42.7, 250: 50.9 } },
  ],
  mlp: [{ label: 'independent impl. (GPU)', points: { 100: 87.8, 250: 88.4, 500: 89.0 } }],
};

for (const dir of process.argv.slice(2)) {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; testAccuracy: number; wallMs: number });
  const refs = REFERENCES[config.model] ?? [];
  const steps = [...new Set([...metrics.map((m) => m.step), ...refs.flatMap((r) => Object.keys(r.points).map(Number))])]
    .filter((s) => metrics.some((m) => m.step === s))
    .sort((a, b) => a - b);
  const hidden = config.model === 'mlp' ? ` ${[1024, ...config.hidden, 10].join('-')}` : '';
  console.log(`### ${config.model}${hidden}, K=${config.K}, ${config.seedPolicy} seeds, ${config.clients} clients (${dir})\n`);
  console.log(`| step | ${steps.join(' | ')} |`);
  console.log(`|---|${steps.map(() => '---').join('|')}|`);
  const ours = steps.map((s) => (100 * (metrics.find((m) => m.step === s)?.testAccuracy ?? NaN)).toFixed(1));
  console.log(`| baffle (this repo) | ${ours.join(' | ')} |`);
  for (const r of refs) console.log(`| ${r.label} | ${steps.map((s) => r.points[s]?.toFixed(1) ?? '—').join(' | ')} |`);
  const last = metrics[metrics.length - 1];
  console.log(`\nWall time: ${(last.wallMs / 1000).toFixed(0)} s for ${last.step} steps (${(last.wallMs / last.step / 1000).toFixed(2)} s per step).\n`);
}
