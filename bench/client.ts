// Client step: forward passes per second of each zoo model at batch 32, with fresh perturbed weights every pass,
// on 1 worker and on all workers (worker_threads, one single-threaded session each, directions split across
// workers — what the simulation does).
import { WorkerPool } from '../src/node/engine/pool.ts';
import type { ClientRunResult, ClientRunTask, ClientWorkerData } from './clientWorker.ts';
import { scalarsFromLosses } from '../src/core/zo/scheme.ts';
import { forwardCost } from './flops.ts';
import { median, now, spread, syntheticBatch, type ZooEntry } from './lib.ts';
import { buildModel } from '../src/core/model/index.ts';
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import { lowRankPlan } from '../src/core/rng/lowrank.ts';
import { mlpShape } from '../src/core/zo/lowrankBatch.ts';
import { LowRankBatchSession } from '../src/node/engine/lowrankBatch.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { processCpuNs } from './clock.ts';

export interface ClientResult {
  model: string;
  /** 'gaussian' (default) or 'lowrank' (with rank). */
  perturbation?: string;
  rank?: number;
  /**
   * One worker's on-CPU time of a client step of K+1 = 101 passes at batch B, as a fraction of one batched
   * inference over the same 101·B examples through the same engine (on-CPU, same thread): 1 = the speed of
   * inference. Measured for 1 worker.
   */
  fractionOfBatched?: number;
  /**
   * lowrank, 1 worker, MLP-shaped models only: the member-batched client step (src/node/engine/lowrankBatch.ts,
   * all K+1 members in one engine run) measured on the main thread, on-CPU.
   */
  memberBatched?: MemberBatchedResult;
  label: string;
  workers: number;
  batch: number;
  params: number;
  /** MACs per example (conv + linear), from the FLOP counter. */
  macsPerExample: number;
  /** Median forward passes per second over all workers (wall clock). */
  passesPerSec: number;
  /** Relative half-range of passesPerSec over the repetitions. */
  spread: number;
  /** Per pass, per worker: regenerate + perturb, and the engine run (ms, medians). */
  regenMsPerPass: number;
  forwardMsPerPass: number;
  /** Of forwardMsPerPass: gather of the weights into the engine layout, and onnxruntime's run(). */
  gatherMsPerPass: number;
  runMsPerPass: number;
  /** Reduce: losses of all workers → the K scalars a_k (concat + differences), ms per client step of K passes. */
  reduceMsPerStep: number;
  /** Engine graph used ('optimized' or 'plain'). */
  graph: string;
  /** Share of the worker time spent in regenerate + perturb. */
  regenShare: number;
  /** Achieved GFLOP/s over the whole loop (2·MACs·batch·passes / wall), all workers together. */
  gflops: number;
  /** GFLOP/s of the forward part alone, per worker (2·MACs·batch / forward wall time). */
  forwardGflopsPerWorker: number;
  /**
   * The same on on-CPU time: forward wall time scaled by the worker's on-CPU share of its loop (other jobs
   * slow both parts alike), i.e. what the engine does per busy core.
   */
  forwardGflopsOnCpu: number;
  /** Passes per second if every worker had its own core: Σ passes / on-CPU seconds per worker. */
  passesPerCpuSec: number;
  /** Share of the workers' runnable time spent waiting for a CPU (machine contention). */
  waitShare: number;
}

export interface MemberBatchedResult {
  /** Members (K+1) and batch B of the measured step. */
  members: number;
  batch: number;
  /** Median on-CPU ms of one client step (K+1 members in one run, factors included). */
  stepCpuMs: number;
  /** Of which (wall, median): drawing the factors and filling the member tensors. */
  factorMs: number;
  /** Member passes per on-CPU second: (K+1) / stepCpuMs. */
  passesPerCpuSec: number;
  /** On-CPU ms of one batched inference over the same (K+1)·B examples (OrtSession, same thread). */
  batchedCpuMs: number;
  /** batchedCpuMs ÷ stepCpuMs (> 1: the step costs less than inference over its examples; W x is shared). */
  fractionOfBatched: number;
  /** The per-pass step's on-CPU passes per second of the same row, for the speed-up. */
  speedupOverPerPass: number;
}

/**
 * The member-batched step of a lowrank MLP on the calling thread (the pool's workers idle, so process CPU time
 * is this thread's): `reps` repetitions of ≥ targetMs each, medians.
 */
export async function benchMemberBatched(entry: ZooEntry, opts: { batch?: number; rank?: number; reps?: number; targetMs?: number; K?: number }): Promise<Omit<MemberBatchedResult, 'speedupOverPerPass'> | null> {
  const model = buildModel(entry.config);
  const shape = mlpShape(entry.config, model.layout.params);
  if (!shape) return null;
  const batch = opts.batch ?? 32;
  const K = opts.K ?? 100;
  const weights = model.initWeights(1);
  const plan = lowRankPlan(model.layout.params, opts.rank ?? 1);
  const fast = await LowRankBatchSession.create(shape, plan);
  const ref = await OrtSession.create(zooArtifact(model, { weights, trainable: ['all'] }));
  try {
    fast.setBatch(syntheticBatch(entry.config.inputShape, batch, entry.config.classes));
    ref.setBatch(syntheticBatch(entry.config.inputShape, (K + 1) * batch, entry.config.classes));
    const task = { seed: 0xbe0c, sigma: 1e-4, scheme: 'forward' as const };
    const range = { kStart: 0, kEnd: K, base: true };
    for (let i = 0; i < 3; i++) {
      await fast.runPasses(weights, task, range);
      await ref.loss(weights);
    }
    const timeIt = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = now();
      let n = 0;
      const c0 = processCpuNs();
      while (n < 3 || now() - t0 < (opts.targetMs ?? 300)) {
        await f();
        n++;
      }
      return (processCpuNs() - c0) / 1e6 / n;
    };
    const steps: number[] = [];
    const refs: number[] = [];
    const factor: number[] = [];
    for (let r = 0; r < (opts.reps ?? 5); r++) {
      steps.push(
        await timeIt(async () => {
          await fast.runPasses(weights, task, range);
          factor.push(fast.timing.factorMs);
        }),
      );
      refs.push(await timeIt(() => ref.loss(weights)));
    }
    const stepCpuMs = median(steps);
    const batchedCpuMs = median(refs);
    return { members: K + 1, batch, stepCpuMs, factorMs: median(factor), passesPerCpuSec: ((K + 1) * 1000) / stepCpuMs, batchedCpuMs, fractionOfBatched: batchedCpuMs / stepCpuMs };
  } finally {
    await fast.dispose();
    await ref.dispose();
  }
}

export interface ClientBenchOptions {
  batch?: number;
  workers: number;
  /** Target wall time of one repetition (ms). */
  targetMs?: number;
  reps?: number;
  perturbation?: 'gaussian' | 'lowrank';
  rank?: number;
}

export async function benchClient(entry: ZooEntry, opts: ClientBenchOptions): Promise<ClientResult> {
  const batch = opts.batch ?? 32;
  const W = opts.workers;
  const cost = forwardCost(entry.config);
  const data: ClientWorkerData = { config: entry.config, batch, sigma: 1e-4, perturbation: opts.perturbation ?? 'gaussian', rank: opts.rank ?? 1 };
  const pool = new WorkerPool<ClientRunTask, ClientRunResult>(new URL('./clientWorker.ts', import.meta.url), W, data);
  try {
    let k = 0;
    const round = async (perWorker: number) => {
      const t0 = now();
      const jobs: Promise<ClientRunResult>[] = [];
      for (let w = 0; w < W; w++) {
        jobs.push(pool.run({ seed: 0xbe0c, kStart: k, kEnd: k + perWorker }));
        k += perWorker;
      }
      const parts = await Promise.all(jobs);
      return { wallMs: now() - t0, parts };
    };
    await round(3); // start-up: session creation, first runs, JIT
    const cal = await round(4);
    const perPass = cal.wallMs / 4;
    const perWorker = Math.max(3, Math.round((opts.targetMs ?? 500) / perPass));
    const rate: number[] = [];
    const regen: number[] = [];
    const fwd: number[] = [];
    const gat: number[] = [];
    const run: number[] = [];
    const red: number[] = [];
    let graph = '';
    const cpuRate: number[] = [];
    const fwdCpu: number[] = [];
    const waits: number[] = [];
    for (let r = 0; r < (opts.reps ?? 5); r++) {
      const { wallMs, parts } = await round(perWorker);
      const passes = parts.reduce((s, p) => s + p.passes, 0);
      rate.push((passes / wallMs) * 1000);
      regen.push(parts.reduce((s, p) => s + p.regenMs, 0) / passes);
      fwd.push(parts.reduce((s, p) => s + p.forwardMs, 0) / passes);
      gat.push(parts.reduce((s, p) => s + p.gatherMs, 0) / passes);
      run.push(parts.reduce((s, p) => s + p.runMs, 0) / passes);
      graph = parts[0]!.graph;
      // reduce as the simulation does it: the workers' loss vectors → one vector → a_k = (L_k − L_0)/σ
      const t0 = now();
      for (let i = 0; i < 100; i++) {
        const losses = new Float32Array(passes);
        let o = 0;
        for (const p of parts) {
          losses.set(p.losses, o);
          o += p.losses.length;
        }
        scalarsFromLosses(losses, { base: losses[0]! }, 1e-4);
      }
      red.push(((now() - t0) / 100) * (100 / passes));
      cpuRate.push(parts.reduce((s, p) => s + (p.passes / p.cpuMs) * 1000, 0));
      fwdCpu.push(parts.reduce((s, p) => s + p.forwardMs * Math.min(1, p.cpuMs / (p.regenMs + p.forwardMs)), 0) / passes);
      const cpu = parts.reduce((s, p) => s + p.cpuMs, 0);
      const wait = parts.reduce((s, p) => s + p.waitMs, 0);
      waits.push(wait / (cpu + wait));
      if (!parts.every((p) => Number.isFinite(p.lossSum))) throw new Error(`${entry.id}: non-finite loss`);
    }
    // The batched-inference reference (1 worker): (K+1)·B examples in one engine run, on-CPU ms, against the
    // on-CPU ms of K+1 client passes.
    let fractionOfBatched: number | undefined;
    if (W === 1) {
      const KP1 = 101;
      const ref = await pool.run({ seed: 0, kStart: 0, kEnd: 0, batchedExamples: KP1 * batch, batchedPasses: 3 });
      const batchedMs = ref.cpuMs / ref.passes;
      const stepMs = (KP1 * 1000) / median(cpuRate);
      fractionOfBatched = batchedMs / stepMs;
    }
    // The member-batched fast path (lowrank, MLP-shaped models): measured next to the per-pass row, printed
    // here (bench/run.ts's table shows the per-pass figures; the JSON keeps both).
    let memberBatched: MemberBatchedResult | undefined;
    if (W === 1 && opts.perturbation === 'lowrank') {
      const mb = await benchMemberBatched(entry, { batch, rank: opts.rank ?? 1, reps: opts.reps ?? 5, targetMs: Math.min(300, opts.targetMs ?? 300) });
      if (mb) {
        memberBatched = { ...mb, speedupOverPerPass: mb.passesPerCpuSec / median(cpuRate) };
        console.log(
          `  ${entry.label.padEnd(22)} lowrank r=${opts.rank ?? 1} member-batched (one run of K+1 = ${mb.members} members × ${batch}): ` +
            `${Math.round(mb.passesPerCpuSec)} passes/s on-CPU (${mb.stepCpuMs.toFixed(2)} ms per step, ${memberBatched.speedupOverPerPass.toFixed(1)}× the per-pass step), ` +
            `batched inference ÷ step ${(100 * mb.fractionOfBatched).toFixed(0)}% (per-pass: ${fractionOfBatched === undefined ? '—' : (100 * fractionOfBatched).toFixed(0) + '%'})`,
        );
      }
    }
    const passesPerSec = median(rate);
    const regenMs = median(regen);
    const fwdMs = median(fwd);
    const flopPerPass = 2 * cost.macs * batch;
    return {
      model: entry.id,
      perturbation: opts.perturbation ?? 'gaussian',
      rank: opts.perturbation === 'lowrank' ? (opts.rank ?? 1) : undefined,
      fractionOfBatched,
      memberBatched,
      label: entry.label,
      workers: W,
      batch,
      params: cost.params,
      macsPerExample: cost.macs,
      passesPerSec,
      spread: spread(rate),
      regenMsPerPass: regenMs,
      forwardMsPerPass: fwdMs,
      gatherMsPerPass: median(gat),
      runMsPerPass: median(run),
      reduceMsPerStep: median(red),
      graph,
      regenShare: regenMs / (regenMs + fwdMs),
      gflops: (passesPerSec * flopPerPass) / 1e9,
      forwardGflopsPerWorker: flopPerPass / fwdMs / 1e6,
      forwardGflopsOnCpu: flopPerPass / median(fwdCpu) / 1e6,
      passesPerCpuSec: median(cpuRate),
      waitShare: median(waits),
    };
  } finally {
    await pool.close();
  }
}
