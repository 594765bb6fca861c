// The server's training loop, the same for the simulation and the networked server: sample participants,
// run one strategy round through the transport, update the EMA, evaluate, report metrics.
import { participantsOf, type RunConfig } from '../config/index.ts';
import type { Evaluation } from '../engine/types.ts';
import { UniformRng as Rng } from '../rng/uniform.ts';
import { mixSeed } from '../rng/directions.ts';
import { sampleClients } from './clientData.ts';
import type { Ema } from './ema.ts';
import { lrAt, type LrSchedule } from './schedule.ts';
import type { Strategy } from './strategy.ts';

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  epoch: number;
  step: number;
  testAccuracy: number;
  testLoss: number;
  /** Mean participant minibatch loss L(W) over the steps since the previous evaluation. */
  trainLoss: number;
  /** Cumulative counters. */
  forwardPasses: number;
  uplinkBytes: number;
  downlinkBytes: number;
  directions: number;
  lr: number;
  wallMs: number;
  /** Differentially private runs: ε spent so far at the run's δ (null: infinite, no noise). */
  epsilon?: number | null;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  trainLoss: number;
  counted: number;
}

export interface FederationEvents {
  onStep?(info: StepInfo): void;
  onEvaluation?(record: MetricsRecord): void | Promise<void>;
}

export interface Counters {
  forwardPasses: number;
  uplinkBytes: number;
  downlinkBytes: number;
  directions: number;
}

/** Everything the loop needs to continue from a step (checkpointable). */
export interface FederationProgress {
  /** Steps completed. */
  step: number;
  counters: Counters;
  metrics: MetricsRecord[];
  /** Participant-sampling RNG. */
  sampleRng: Rng;
  lossSinceEval: number;
  stepsSinceEval: number;
  /** Wall time of earlier sessions (resume), added to this session's. */
  wallOffsetMs: number;
  /**
   * Differentially private secure rounds whose sum carried fewer noise shares than planned (dropouts), by
   * "survivors/participants": the accountant charges them at σ·√(survivors/participants) (setup.ts privacyOf).
   * Absent: none (and in checkpoints made before it existed).
   */
  dpReduced?: Record<string, number>;
}

export interface FederationPlan {
  totalSteps: number;
  stepsPerEpoch: number;
  participants: number;
  schedule: LrSchedule;
}

/** Server steps in one epoch: the rounds it takes an average client to go once through its shard. */
export function stepsPerEpoch(config: RunConfig, trainCount: number): number {
  const batchesPerRound = config.fedopt === 'fedavg' ? config.localSteps : 1;
  return Math.max(1, Math.ceil(trainCount / config.clients / (config.batchSize * batchesPerRound)));
}

export function planFederation(config: RunConfig, trainCount: number): FederationPlan {
  const perEpoch = stepsPerEpoch(config, trainCount);
  const planned = Math.max(1, Math.round(config.epochs * perEpoch));
  return {
    totalSteps: config.maxSteps === null ? planned : Math.min(planned, config.maxSteps),
    stepsPerEpoch: perEpoch,
    participants: participantsOf(config),
    schedule: { lr: config.lr, warmupSteps: Math.round(config.warmupEpochs * perEpoch), warmupLr: config.warmupLr ?? config.lr },
  };
}

export function freshProgress(config: RunConfig): FederationProgress {
  return {
    step: 0,
    counters: { forwardPasses: 0, uplinkBytes: 0, downlinkBytes: 0, directions: 0 },
    metrics: [],
    sampleRng: new Rng(mixSeed(config.seed, 0x7361_6d70 /* "samp" */)),
    lossSinceEval: 0,
    stepsSinceEval: 0,
    wallOffsetMs: 0,
  };
}

export interface FederationParts {
  config: RunConfig;
  plan: FederationPlan;
  strategy: Strategy;
  /** Server weights, updated in place. */
  weights: Float32Array;
  ema: Ema | null;
  /** Evaluates the given weights on the test split. */
  evaluate(weights: Float32Array): Promise<Evaluation>;
  /**
   * A differentially private run's ε after a number of steps, `reduced` of them charged at a smaller noise
   * multiplier (progress.dpReduced); records carry it.
   */
  epsilon?(steps: number, reduced?: Readonly<Record<string, number>>): number;
  /** The key under which a round with `counted` of `participants` inputs is charged at reduced noise, or null. */
  privacyReduction?(counted: number, participants: number): string | null;
  /** Called after every completed step, before the next starts (checkpoints go here). */
  afterStep?(progress: FederationProgress): void | Promise<void>;
}

export async function runFederation(
  parts: FederationParts,
  progress: FederationProgress,
  events: FederationEvents = {},
): Promise<FederationProgress> {
  const { config, plan, strategy, weights, ema } = parts;
  const started = performance.now() - progress.wallOffsetMs;
  for (let step = progress.step; step < plan.totalSteps; step++) {
    const lr = lrAt(step, plan.schedule);
    const clients = sampleClients(config.clients, plan.participants, progress.sampleRng);
    const round = await strategy.round({ step, clients, lr }, weights, step);
    if (round.counted > 0 && !round.lossHidden && !Number.isFinite(round.trainLoss)) {
      throw new Error(`training diverged at step ${step}: minibatch loss is ${round.trainLoss} (try a smaller lr or sigma)`);
    }
    const c = progress.counters;
    c.forwardPasses += round.forwardPasses;
    c.uplinkBytes += round.uplinkBytes;
    c.downlinkBytes += round.downlinkBytes;
    c.directions += round.directions;
    const reduction = parts.privacyReduction?.(round.counted, clients.length) ?? null;
    if (reduction !== null) {
      const reduced = (progress.dpReduced ??= {});
      reduced[reduction] = (reduced[reduction] ?? 0) + 1;
    }
    if (round.counted > 0 && !round.lossHidden) {
      progress.lossSinceEval += round.trainLoss;
      progress.stepsSinceEval++;
    }
    progress.step = step + 1;

    const endOfEpoch = (step + 1) % plan.stepsPerEpoch === 0 || step + 1 === plan.totalSteps;
    // The official recipe updates the EMA once per epoch (with its warm-up); 'step' is there for study.
    if (ema && (config.emaEvery === 'step' || endOfEpoch)) ema.update(weights);
    events.onStep?.({
      step: step + 1,
      totalSteps: plan.totalSteps,
      epoch: Math.floor(step / plan.stepsPerEpoch) + 1,
      trainLoss: round.trainLoss,
      counted: round.counted,
    });

    const evalNow =
      config.evalEvery === 'epoch' ? endOfEpoch : (step + 1) % config.evalEvery === 0 || step + 1 === plan.totalSteps;
    if (evalNow) {
      const ev = await parts.evaluate(ema ? ema.weights() : weights);
      const record: MetricsRecord = {
        epoch: (step + 1) / plan.stepsPerEpoch,
        step: step + 1,
        testAccuracy: ev.correct / ev.count,
        testLoss: ev.lossSum / ev.count,
        trainLoss: progress.stepsSinceEval > 0 ? progress.lossSinceEval / progress.stepsSinceEval : NaN,
        ...c,
        lr,
        wallMs: Math.round(performance.now() - started),
      };
      if (parts.epsilon) {
        const e = parts.epsilon(step + 1, progress.dpReduced);
        record.epsilon = Number.isFinite(e) ? e : null;
      }
      progress.metrics.push(record);
      progress.lossSinceEval = 0;
      progress.stepsSinceEval = 0;
      await events.onEvaluation?.(record);
    }
    await parts.afterStep?.(progress);
  }
  return progress;
}
