// End to end: seconds per FedSGD server step of simulate(), for the paper's MNIST recipe (LeNet) and the
// default configuration (MLP). The time between consecutive onStep events is one step (client forward passes,
// ĝ rebuild, clip, Adam); the first step (pool start-up, session creation, JIT) and the final evaluation are
// excluded.
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { resolveConfig, type RunConfig } from '../src/core/config/index.ts';
import type { Dataset } from '../src/core/data/types.ts';
import { simulate } from '../src/app/simulation.ts';
import { median, now, spread } from './lib.ts';

export interface E2eRecipe {
  id: string;
  label: string;
  overrides: Record<string, unknown>;
}

export const RECIPES: readonly E2eRecipe[] = [
  {
    id: 'paper-lenet',
    label: 'paper MNIST: LeNet, K=100, 10 clients, per-client seeds',
    overrides: { model: 'lenet', norm: 'none', activation: 'hardswish', K: 100, clients: 10, seedPolicy: 'per-client', scheme: 'forward' },
  },
  { id: 'default-mlp', label: 'default: MLP 1024-128-10, K=100, 10 clients', overrides: {} },
  {
    id: 'default-mlp-shared',
    label: 'default MLP with shared seeds (server rebuilds K, not C·K, directions)',
    overrides: { seedPolicy: 'shared' },
  },
  { id: 'default-mlp-lowrank', label: 'default MLP with rank-1 directions (perturbation lowrank)', overrides: { perturbation: 'lowrank' } },
  {
    id: 'paper-lenet-lowrank',
    label: 'paper MNIST LeNet with rank-1 directions (perturbation lowrank)',
    overrides: { model: 'lenet', norm: 'none', activation: 'hardswish', K: 100, clients: 10, seedPolicy: 'per-client', scheme: 'forward', perturbation: 'lowrank' },
  },
];

export interface E2eResult {
  recipe: string;
  label: string;
  model: string;
  K: number;
  clients: number;
  params: number;
  workers: number;
  /** Steps timed (after the excluded first one). */
  steps: number;
  /** Median seconds per step. */
  secPerStep: number;
  spread: number;
  /** Forward passes per step and their rate. */
  passesPerStep: number;
  passesPerSec: number;
  /** Directions the server regenerates per step. */
  directionsPerStep: number;
  /** Median process on-CPU seconds per step (all threads), and that ÷ workers: the step time on an idle machine if the work spread evenly. */
  cpuSecPerStep: number;
  idleEstimateSecPerStep: number;
}

export async function benchE2e(recipe: E2eRecipe, dataset: Dataset, workers: number, steps: number): Promise<E2eResult> {
  const config: RunConfig = resolveConfig([
    { ...recipe.overrides, maxSteps: steps + 1, testSubset: 50, evalEvery: 'epoch', workers },
  ]);
  const stamps: number[] = [];
  const cpus: number[] = [];
  let params = 0;
  let usedWorkers = workers;
  await simulate(config, dataset, workers, {
    onStart: (info) => {
      params = info.params;
      usedWorkers = info.workers;
    },
    onStep: () => {
      stamps.push(now());
      const c = process.cpuUsage();
      cpus.push((c.user + c.system) / 1e6);
    },
  });
  const dts: number[] = [];
  const dcpu: number[] = [];
  for (let i = 1; i < stamps.length; i++) {
    dts.push((stamps[i]! - stamps[i - 1]!) / 1000);
    dcpu.push(cpus[i]! - cpus[i - 1]!);
  }
  const sec = median(dts);
  const participants = Math.max(1, Math.round(config.participation * config.clients));
  const passesPerStep = participants * (config.scheme === 'forward' ? config.K + 1 : 2 * config.K);
  const directionsPerStep = (config.seedPolicy === 'shared' ? 1 : participants) * config.K;
  return {
    recipe: recipe.id,
    label: recipe.label,
    model: config.model,
    K: config.K,
    clients: config.clients,
    params,
    workers: usedWorkers,
    steps: dts.length,
    secPerStep: sec,
    spread: spread(dts),
    passesPerStep,
    passesPerSec: passesPerStep / sec,
    directionsPerStep,
    cpuSecPerStep: median(dcpu),
    idleEstimateSecPerStep: median(dcpu) / usedWorkers,
  };
}

/**
 * The paper's MNIST recipe on its own: `node --import tsx bench/e2e.ts [--steps 6] [--workers N] [--recipe id]`.
 * Prints wall seconds per FedSGD step and the idle-machine estimate (process on-CPU seconds ÷ workers).
 */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const value = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const recipe = RECIPES.find((r) => r.id === (value('--recipe') ?? 'paper-lenet'));
  if (!recipe) throw new Error(`unknown recipe (use ${RECIPES.map((r) => r.id).join(', ')})`);
  const workers = Number(value('--workers') ?? os.availableParallelism());
  const steps = Number(value('--steps') ?? 6);
  const { loadDataset } = await import('../src/node/data/index.ts');
  const r = await benchE2e(recipe, loadDataset('mnist-10k'), workers, steps);
  console.log(`${recipe.label}: ${r.workers} workers, ${r.steps} steps timed (first step excluded)`);
  console.log(`  wall clock:            ${r.secPerStep.toFixed(3)} s per FedSGD step (±${(100 * r.spread).toFixed(0)}%, load average ${os.loadavg()[0]!.toFixed(1)})`);
  console.log(`  on-CPU:                ${r.cpuSecPerStep.toFixed(3)} CPU s per step (all threads)`);
  console.log(`  idle-machine estimate: ${r.idleEstimateSecPerStep.toFixed(3)} s per FedSGD step (on-CPU ÷ ${r.workers} workers)`);
  console.log(`  ${r.passesPerStep} forward passes and ${r.directionsPerStep} regenerated directions per step`);
}
