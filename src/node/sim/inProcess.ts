// The in-process transport: clients are simulated by the worker pool; each client's data stream lives here.
import { combineLosses, splitDirections } from '../../core/zo/task.ts';
import type { CursorStream } from '../../core/fl/clientData.ts';
import type { SimPool } from './simPool.ts';
import type { RunConfig } from '../../core/config/index.ts';
import { secAggVector } from '../../core/secagg/quantize.ts';
import { secureSumInProcess } from '../../core/secagg/simulate.ts';
import { secAggSpec } from '../../core/secagg/spec.ts';
import { nodeSecAggCrypto } from '../secagg/crypto.ts';
import type {
  ClientTransport,
  EstimateReply,
  EstimateRequest,
  LocalTrainReply,
  LocalTrainRequest,
  SecureSumReply,
} from '../../core/fl/transport.ts';

export class InProcessTransport implements ClientTransport {
  /** Minibatches each client has drawn so far (checkpointed, so a resumed run draws the same batches). */
  readonly cursors: number[];

  constructor(
    private readonly pool: SimPool,
    private readonly streams: CursorStream[],
    readonly batchSize: number,
    cursors?: number[],
  ) {
    this.cursors = cursors ? cursors.slice() : streams.map(() => 0);
  }

  private nextBatch(clientId: number): Int32Array {
    return this.streams[clientId].batch(this.cursors[clientId]++, this.batchSize);
  }

  async estimate(requests: EstimateRequest[], weights: Float32Array): Promise<EstimateReply[]> {
    if (weights !== this.pool.weights) this.pool.weights.set(weights);
    // Split each client's K directions into shares so that every worker has work even with few clients.
    const shares = Math.ceil((2 * this.pool.workers) / requests.length);
    const replies = requests.map(async (r): Promise<EstimateReply> => {
      const indices = this.nextBatch(r.clientId);
      const task = { seed: r.seed, K: r.K, sigma: r.sigma, scheme: r.scheme, lowrank: this.pool.lowrank };
      const parts = await Promise.all(splitDirections(task, shares).map((range) => this.pool.losses({ indices, task, range })));
      return { clientId: r.clientId, examples: indices.length, ...combineLosses(task, parts) };
    });
    return Promise.all(replies);
  }

  /**
   * Secure aggregation in process: the clients' replies go through the same protocol rounds as over the
   * network (secagg/simulate.ts: keys, encrypted shares, masked inputs, unmasking), and only the sum comes back.
   */
  async secureEstimate(requests: EstimateRequest[], weights: Float32Array): Promise<SecureSumReply> {
    const config = this.secure;
    if (!config) throw new Error('secure aggregation is not enabled on this transport');
    const replies = await this.estimate(requests, weights);
    const step = requests[0]!.step;
    const inputs = replies.map((r) => ({
      clientId: r.clientId,
      ...this.secureInput(config, step, r, requests.length),
    }));
    const out = await secureSumInProcess(step, inputs, nodeSecAggCrypto);
    if (!out.ok) throw new Error(`secure aggregation failed in round ${step + 1} with every client present: ${out.reason}`);
    return { survivors: out.survivors, sum: out.sum };
  }

  /** Client r's spec and vector: under DP (dpClip, distributed noise) with the run's seeded noise streams. */
  private secureInput(config: RunConfig, step: number, r: EstimateReply, participants: number) {
    const dp = config.dpClip !== null ? { noiseMultiplier: this.noiseMultiplier, seeded: true } : null;
    const spec = secAggSpec(config, step, r.clientId, participants, dp);
    return { spec, vector: secAggVector(r.scalars, r.examples, this.batchSize, r.loss, spec) };
  }

  /**
   * Makes secureEstimate available, with the run's secure-aggregation settings and, for a differentially
   * private run, its resolved noise multiplier.
   */
  enableSecureAggregation(config: RunConfig, noiseMultiplier = 0): this {
    this.secure = config;
    this.noiseMultiplier = noiseMultiplier;
    return this;
  }

  private secure: RunConfig | null = null;
  private noiseMultiplier = 0;

  async localTrain(requests: LocalTrainRequest[], weights: Float32Array): Promise<LocalTrainReply[]> {
    if (weights !== this.pool.weights) this.pool.weights.set(weights);
    return Promise.all(
      requests.map(async (r): Promise<LocalTrainReply> => {
        const batches = r.seeds.map(() => this.nextBatch(r.clientId));
        const { step: _step, clientId: _clientId, ...plan } = r;
        const out = await this.pool.localTrain({ ...plan, batches, lowrank: this.pool.lowrank });
        return {
          clientId: r.clientId,
          delta: out.delta,
          examples: batches.reduce((s, b) => s + b.length, 0),
          loss: out.meanLoss,
          forwardPasses: out.forwardPasses,
        };
      }),
    );
  }

  async close(): Promise<void> {}
}
