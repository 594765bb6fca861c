// The federation's parts as a run configuration names them — the same in the simulation, the networked
// server and every client (a client recomputes its shard and minibatch stream from the config alone).
import { assumedByzantine, participantsOf, type RunConfig } from '../config/index.ts';
import { DEFAULT_ALPHAS, computeRdp, noiseMultiplierFor, rdpToEpsilon } from '../privacy/index.ts';
import type { Split } from '../data/types.ts';
import { mixSeed } from '../rng/directions.ts';
import { UniformRng as Rng } from '../rng/uniform.ts';
import { Aggregation } from './aggregation.ts';
import { ClientStream } from './clientData.ts';
import { makeOptimizer, type Optimizer } from './optimizer.ts';
import { partition, type PartitionSpec } from './partition.ts';
import { FedAvg, FedSgd, type EstimatorSettings, type Reconstructor, type Strategy } from './strategy.ts';
import type { ClientTransport } from './transport.ts';

function partitionSpec(config: RunConfig): PartitionSpec {
  switch (config.partition) {
    case 'iid':
      return { kind: 'iid' };
    case 'dirichlet':
      return { kind: 'dirichlet', alpha: config.alpha };
    case 'shards':
      return { kind: 'shards', shardsPerClient: config.shardsPerClient };
  }
}

/**
 * The test examples a run evaluates on: the whole test split, or `testSubset` of them taken at an even
 * stride — test splits can be sorted by class (mnist-10k is), so the first N would miss whole classes.
 */
export function evaluationSplit(test: Split, testSubset: number | null): Split {
  if (testSubset === null || testSubset >= test.count) return test;
  const count = Math.max(1, testSubset);
  const size = test.x.length / test.count;
  const x = new Float32Array(count * size);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const j = Math.floor((i * test.count) / count);
    x.set(test.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = test.y[j]!;
  }
  return { x, y, count };
}

/** Every client's shard of the training split, a pure function of (labels, config): any process can recompute it. */
export function clientShards(config: RunConfig, labels: Uint8Array, classes: number): Int32Array[] {
  const rng = new Rng(mixSeed(config.seed, 0x7061_7274 /* "part" */));
  return partition(labels, classes, config.clients, partitionSpec(config), rng);
}

/** Client `c`'s minibatch stream over its shard (same in the simulation and in a `baffle join` client). */
export function clientStream(config: RunConfig, shard: Int32Array, clientId: number): ClientStream {
  return new ClientStream(shard, new Rng(mixSeed(config.seed, 0x6461_7461 /* "data" */, clientId)));
}

export function estimatorSettings(config: RunConfig): EstimatorSettings {
  return {
    runSeed: config.seed,
    K: config.K,
    sigma: config.sigma,
    scheme: config.scheme,
    seedPolicy: config.seedPolicy,
    clip: config.clip,
    secureAggregation: config.secureAggregation,
    ...(config.secureAggregation && config.dpClip !== null ? { secureDp: true } : {}),
  };
}

/** The server optimizer the config names (FedSGD), for `params` parameters. */
export function serverOptimizer(config: RunConfig, params: number): Optimizer {
  return makeOptimizer(
    { optimizer: config.optimizer, beta1: config.beta1, beta2: config.beta2, momentum: config.momentum, weightDecay: config.weightDecay },
    params,
  );
}

/** A differentially private run's mechanism and its accounting (null when the run is not private). */
export interface Privacy {
  noiseMultiplier: number;
  /** Participants / clients: the sampling rate of a round. */
  sampleRate: number;
  delta: number;
  /**
   * ε at δ after `steps` rounds (Infinity without noise), `reduced[key]` of which were charged at the smaller
   * multiplier of `key` (see `reduction`).
   */
  epsilon(steps: number, reduced?: Readonly<Record<string, number>>): number;
  /**
   * A secure round with distributed noise in which only `counted` of the `participants` clients' inputs (and so
   * noise shares) reached the sum: its key "counted/participants", charged at σ·√(counted/participants); null
   * when the round carried the full noise (every input, no noise split, or no release at all).
   */
  reduction(counted: number, participants: number): string | null;
}

/**
 * The privacy of the run `config` describes over `totalSteps` rounds: the noise multiplier given, or the one
 * that spends `targetEpsilon` over the planned steps (the RDP accountant of the sampled Gaussian mechanism,
 * src/core/privacy; sampling here is a fixed number of clients per round, accounted as Poisson at that rate).
 */
export function privacyOf(config: RunConfig, totalSteps: number): Privacy | null {
  if (config.dpClip === null) return null;
  const sampleRate = participantsOf(config) / config.clients;
  const delta = config.dpDelta;
  const noiseMultiplier = config.noiseMultiplier ?? noiseMultiplierFor(config.targetEpsilon as number, delta, sampleRate, totalSteps);
  // RDP composes linearly: one round's curve, scaled, gives ε after any number of identical rounds; a history
  // with rounds of smaller noise (dropouts under distributed noise) adds their curves.
  const curves = new Map<string, number[] | null>();
  const curve = (sigma: number, key: string): number[] | null => {
    if (!curves.has(key)) curves.set(key, sigma > 0 ? computeRdp(sampleRate, sigma, 1) : null);
    return curves.get(key)!;
  };
  const full = curve(noiseMultiplier, '');
  const splitNoise = config.secureAggregation && config.dpNoise === 'distributed';
  return {
    noiseMultiplier,
    sampleRate,
    delta,
    epsilon: (steps, reduced = {}) => {
      if (steps === 0) return 0;
      const keys = Object.keys(reduced).filter((k) => reduced[k]! > 0);
      if (keys.length === 0) return full === null ? Infinity : rdpToEpsilon(DEFAULT_ALPHAS, full.map((r) => r * steps), delta).epsilon;
      let fullSteps = steps;
      const total = new Array<number>(DEFAULT_ALPHAS.length).fill(0);
      for (const key of keys) {
        const [counted, participants] = key.split('/').map(Number) as [number, number];
        const c = curve(noiseMultiplier * Math.sqrt(counted / participants), key);
        if (c === null) return Infinity;
        const n = Math.min(reduced[key]!, fullSteps);
        fullSteps -= n;
        for (let i = 0; i < total.length; i++) total[i]! += n * c[i]!;
      }
      if (fullSteps > 0) {
        if (full === null) return Infinity;
        for (let i = 0; i < total.length; i++) total[i]! += fullSteps * full[i]!;
      }
      return rdpToEpsilon(DEFAULT_ALPHAS, total, delta).epsilon;
    },
    reduction: (counted, participants) => (splitNoise && counted > 0 && counted < participants ? `${counted}/${participants}` : null),
  };
}

/** The round's aggregation (rule, attack, DP) as the config names it; `noiseMultiplier` resolved by the caller. */
export function aggregationOf(config: RunConfig, noiseMultiplier: number): Aggregation {
  return new Aggregation(
    {
      aggregator: config.aggregator,
      trimFraction: config.trimFraction,
      byzantine: assumedByzantine(config),
      krumSelect: config.krumSelect,
      centeredClipTau: config.centeredClipTau,
      centeredClipIterations: config.centeredClipIterations,
      screenFactor: config.screenFactor,
      attack: config.attack,
      attackFraction: config.attackFraction,
      attackScale: config.attackScale,
      attackNoise: config.attackNoise,
      seed: config.seed,
      dpClip: config.dpClip,
      noiseMultiplier,
      dpNoise: config.dpNoise,
    },
    config.clients,
  );
}

/** The forward-only strategy the config names, talking to clients through `transport`. */
export function makeStrategy(
  config: RunConfig,
  transport: ClientTransport,
  reconstruct: Reconstructor,
  optimizer: Optimizer,
  aggregation: Aggregation = aggregationOf(config, config.noiseMultiplier ?? 0),
): Strategy {
  if (config.fedopt === 'fedavg') {
    return new FedAvg(transport, estimatorSettings(config), {
      localSteps: config.localSteps,
      localLr: config.localLr,
      localOptimizer: config.localOptimizer,
    });
  }
  return new FedSgd(transport, reconstruct, estimatorSettings(config), optimizer, aggregation);
}
