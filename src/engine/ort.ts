// onnxruntime-node behind ForwardSession: one single-threaded InferenceSession, weights fed as graph inputs.
// Feeds are views on the caller's weight buffer, built once per buffer and reused, so a run costs no copy.
import * as ort from 'onnxruntime-node';
import type { BuiltModel, ParamLayout } from '../model/types.ts';
import type { Batch, ForwardSession } from './types.ts';

export interface OrtOptions {
  /** Intra-op threads (1: parallelism comes from worker_threads, one session per core). */
  threads?: number;
}

export class OrtSession implements ForwardSession {
  private feeds: Record<string, ort.Tensor> = {};
  private feedsFor: Float32Array | null = null;
  private batchTensors: { x: ort.Tensor; y: ort.Tensor } | null = null;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly layout: ParamLayout,
    private readonly inputShape: readonly number[],
  ) {}

  static async create(model: BuiltModel, options: OrtOptions = {}): Promise<OrtSession> {
    const threads = options.threads ?? 1;
    const session = await ort.InferenceSession.create(model.onnx, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new OrtSession(session, model.layout, model.config.inputShape);
  }

  setBatch(batch: Batch): void {
    const labels = new BigInt64Array(batch.count);
    for (let i = 0; i < batch.count; i++) labels[i] = BigInt(batch.y[i]);
    const expected = batch.count * this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
    if (batch.x.length < expected) {
      throw new Error(`batch holds ${batch.x.length} values, ${batch.count} images of ${this.inputShape.join('×')} need ${expected}`);
    }
    this.batchTensors = {
      x: new ort.Tensor('float32', batch.x.subarray(0, expected), [batch.count, ...this.inputShape]),
      y: new ort.Tensor('int64', labels, [batch.count]),
    };
    this.feedsFor = null;
  }

  private feedsWith(weights: Float32Array): Record<string, ort.Tensor> {
    if (!this.batchTensors) throw new Error('OrtSession: setBatch() must be called before a forward pass');
    if (weights.length !== this.layout.size) {
      throw new Error(`weights have ${weights.length} values, the model has ${this.layout.size} parameters`);
    }
    if (this.feedsFor !== weights) {
      const feeds: Record<string, ort.Tensor> = { x: this.batchTensors.x, y: this.batchTensors.y };
      for (const p of this.layout.params) {
        feeds[p.name] = new ort.Tensor('float32', weights.subarray(p.offset, p.offset + p.size), p.shape);
      }
      this.feeds = feeds;
      this.feedsFor = weights;
    }
    return this.feeds;
  }

  async loss(weights: Float32Array): Promise<number> {
    const out = await this.session.run(this.feedsWith(weights), ['loss']);
    return (out.loss.data as Float32Array)[0];
  }

  async logits(weights: Float32Array): Promise<Float32Array> {
    const out = await this.session.run(this.feedsWith(weights), ['logits']);
    return out.logits.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
