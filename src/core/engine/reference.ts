// The pure-TS oracle behind the same door as the engine: slow, obviously correct, used by tests.
import type { BuiltModel } from '../model/types.ts';
import type { Batch, ForwardSession } from './types.ts';
import { crossEntropy } from './metrics.ts';

export class ReferenceSession implements ForwardSession {
  private batch: Batch | null = null;
  constructor(private readonly model: BuiltModel) {}

  setBatch(batch: Batch): void {
    this.batch = batch;
  }

  private current(): Batch {
    if (!this.batch) throw new Error('ReferenceSession: setBatch() must be called before a forward pass');
    return this.batch;
  }

  async loss(weights: Float32Array): Promise<number> {
    const b = this.current();
    const logits = this.model.referenceLogits(weights, b.x, b.count);
    return crossEntropy(logits, b.y, b.count, this.model.config.classes).lossSum / b.count;
  }

  async logits(weights: Float32Array): Promise<Float32Array> {
    const b = this.current();
    return this.model.referenceLogits(weights, b.x, b.count);
  }

  async dispose(): Promise<void> {}
}
