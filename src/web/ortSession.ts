// onnxruntime-web behind the engine's door (ForwardSession): the browser's forward engine, built from the
// model artifact the server sent. One session, weights fed as graph inputs (views on the caller's buffer).
import type * as Ort from 'onnxruntime-web';
import type { Batch, ForwardSession } from '../core/engine/types.ts';
import { exampleSize, type ClientModel } from '../core/model/artifact.ts';

export type OrtWeb = typeof Ort;

export class WebOrtSession implements ForwardSession {
  private x: Ort.Tensor | null = null;
  private y: Ort.Tensor | null = null;
  private count = 0;
  private readonly feedCache = new WeakMap<Float32Array, Record<string, Ort.Tensor>>();

  private constructor(
    private readonly ort: OrtWeb,
    private readonly session: Ort.InferenceSession,
    private readonly model: ClientModel,
    /** The execution provider the session runs on ('wasm' or 'webgpu'). */
    readonly backend: string,
  ) {}

  static async create(ort: OrtWeb, model: ClientModel, backend: 'wasm' | 'webgpu'): Promise<WebOrtSession> {
    const session = await ort.InferenceSession.create(model.onnx, {
      executionProviders: backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
      graphOptimizationLevel: 'all',
    });
    return new WebOrtSession(ort, session, model, backend);
  }

  setBatch(batch: Batch): void {
    const size = exampleSize(this.model);
    if (batch.x.length < batch.count * size) {
      throw new Error(`batch holds ${batch.x.length} values, ${batch.count} examples of ${this.model.inputDims.join('×')} need ${batch.count * size}`);
    }
    const labels = new BigInt64Array(batch.count);
    for (let i = 0; i < batch.count; i++) labels[i] = BigInt(batch.y[i]!);
    this.x = new this.ort.Tensor('float32', batch.x.subarray(0, batch.count * size), [batch.count, ...this.model.inputDims]);
    this.y = new this.ort.Tensor('int64', labels, [batch.count]);
    this.count = batch.count;
  }

  private feeds(weights: Float32Array): Record<string, Ort.Tensor> {
    if (!this.x || !this.y) throw new Error('setBatch() must be called before a forward pass');
    if (weights.length !== this.model.params) throw new Error(`weights have ${weights.length} values, the model has ${this.model.params}`);
    let feeds = this.feedCache.get(weights);
    if (!feeds) {
      feeds = {};
      for (const p of this.model.layout) feeds[p.name] = new this.ort.Tensor('float32', weights.subarray(p.offset, p.offset + p.size), p.shape);
      this.feedCache.set(weights, feeds);
    }
    feeds[this.model.io.input] = this.x;
    feeds[this.model.io.labels] = this.y;
    return feeds;
  }

  async loss(weights: Float32Array): Promise<number> {
    const out = await this.session.run(this.feeds(weights), [this.model.io.loss]);
    return (out[this.model.io.loss]!.data as Float32Array)[0]!;
  }

  async logits(weights: Float32Array): Promise<Float32Array> {
    const out = await this.session.run(this.feeds(weights), [this.model.io.logits]);
    return (out[this.model.io.logits]!.data as Float32Array).slice(0, this.count * this.model.classes);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
