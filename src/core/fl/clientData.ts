// Each client's own stream of minibatches over its shard: shuffled, reshuffled at every pass, never
// crossing into another client's data.
import type { UniformRng as Rng } from '../rng/uniform.ts';

export class ClientStream {
  private order: Int32Array;
  private position = 0;

  constructor(
    private readonly shard: Int32Array,
    private readonly rng: Rng,
  ) {
    if (shard.length === 0) throw new Error('a client with no examples cannot produce minibatches');
    this.order = shard.slice();
    this.rng.shuffle(this.order);
  }

  get size(): number {
    return this.shard.length;
  }

  /** The next `batchSize` example indices (the whole shard when it is smaller). */
  next(batchSize: number): Int32Array {
    const b = Math.min(batchSize, this.shard.length);
    const out = new Int32Array(b);
    for (let i = 0; i < b; i++) {
      if (this.position === this.order.length) {
        this.rng.shuffle(this.order);
        this.position = 0;
      }
      out[i] = this.order[this.position++];
    }
    return out;
  }
}

export /** Minibatch j of a client's stream, for any j: replays the stream when asked for an earlier position. */
class CursorStream {
  private stream: ClientStream;
  private drawn = 0;
  constructor(private readonly make: () => ClientStream) {
    this.stream = make();
  }
  batch(cursor: number, batchSize: number): Int32Array {
    if (cursor < this.drawn) {
      this.stream = this.make();
      this.drawn = 0;
    }
    while (this.drawn < cursor) {
      this.stream.next(batchSize);
      this.drawn++;
    }
    this.drawn++;
    return this.stream.next(batchSize);
  }
}

/** `m` distinct clients out of `clients`, in ascending order. */
export function sampleClients(clients: number, m: number, rng: Rng): number[] {
  if (m >= clients) return Array.from({ length: clients }, (_, i) => i);
  const ids = Array.from({ length: clients }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + rng.nextInt(clients - i);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids.slice(0, m).sort((a, b) => a - b);
}
