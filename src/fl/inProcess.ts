// The in-process transport: clients are simulated by the worker pool; each client's data stream lives here.
import { scalarsFromLosses } from '../zo/scheme.ts';
import type { CursorStream } from './clientData.ts';
import type { SimPool } from './simPool.ts';
import type { LossesResult } from './simTasks.ts';
import type {
  ClientTransport,
  EstimateReply,
  EstimateRequest,
  LocalTrainReply,
  LocalTrainRequest,
} from './transport.ts';

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
    // Split each client's K directions into chunks so that every worker has work even with few clients.
    const chunks = (K: number) => Math.max(1, Math.min(K, Math.ceil((2 * this.pool.workers) / requests.length)));
    const replies = requests.map(async (r): Promise<EstimateReply> => {
      const indices = this.nextBatch(r.clientId);
      const c = chunks(r.K);
      const parts: Promise<LossesResult>[] = [];
      for (let i = 0; i < c; i++) {
        parts.push(
          this.pool.losses({
            indices,
            seed: r.seed,
            sigma: r.sigma,
            kStart: Math.floor((r.K * i) / c),
            kEnd: Math.floor((r.K * (i + 1)) / c),
            minus: r.scheme === 'central',
            base: i === 0 && r.scheme === 'forward',
          }),
        );
      }
      const results = await Promise.all(parts);
      const plus = concat(results.map((x) => x.plus), r.K);
      if (r.scheme === 'forward') {
        const base = results[0].base as number;
        return {
          clientId: r.clientId,
          scalars: scalarsFromLosses(plus, { base }, r.sigma),
          examples: indices.length,
          loss: base,
          forwardPasses: r.K + 1,
        };
      }
      const minus = concat(results.map((x) => x.minus as Float32Array), r.K);
      let loss = 0;
      for (let k = 0; k < r.K; k++) loss += (plus[k] + minus[k]) / 2 / r.K;
      return {
        clientId: r.clientId,
        scalars: scalarsFromLosses(plus, { minus }, r.sigma),
        examples: indices.length,
        loss,
        forwardPasses: 2 * r.K,
      };
    });
    return Promise.all(replies);
  }

  async localTrain(requests: LocalTrainRequest[], weights: Float32Array): Promise<LocalTrainReply[]> {
    if (weights !== this.pool.weights) this.pool.weights.set(weights);
    return Promise.all(
      requests.map(async (r): Promise<LocalTrainReply> => {
        const batches = r.seeds.map(() => this.nextBatch(r.clientId));
        const { step: _step, clientId: _clientId, ...plan } = r;
        const out = await this.pool.localTrain({ ...plan, batches });
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

function concat(parts: Float32Array[], total: number): Float32Array {
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
