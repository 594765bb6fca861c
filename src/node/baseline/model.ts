// The backprop baseline's model: the zoo definition run through TfjsOps, differentiated by tfjs autograd.
// Weights come in and gradients go out as flat Float32Arrays in the project's parameter layout, so the
// baseline shares initialisation, optimizer, EMA and wire accounting with the BAFFLE runs.
import type * as TF from '@tensorflow/tfjs-core';
import { buildModel } from '../../core/model/index.ts';
import type { BuiltModel, ModelConfig, ParamLayout } from '../../core/model/types.ts';
import { defineModel } from '../../core/model/zoo.ts';
import type { ModelDef } from '../../core/model/ops.ts';
import { loadTfjs, type Tf, type TfjsBackend } from './tfjs.ts';
import { TfjsOps } from './tfjsOps.ts';

export interface LossAndGradient {
  /** Mean cross-entropy of the batch. */
  loss: number;
  /** dLoss/dW, flat, in layout order. */
  grad: Float32Array;
}

export class TfjsModel {
  private params: TF.Tensor[] = [];
  private batch: { x: TF.Tensor4D; onehot: TF.Tensor2D; count: number } | null = null;

  private constructor(
    readonly tf: Tf,
    readonly backend: TfjsBackend,
    readonly model: BuiltModel,
    private readonly def: ModelDef,
  ) {}

  static async create(config: ModelConfig, backend?: TfjsBackend): Promise<TfjsModel> {
    const tf = await loadTfjs(backend);
    const model = buildModel(config);
    return new TfjsModel(tf, tf.getBackend() as TfjsBackend, model, defineModel(config));
  }

  get layout(): ParamLayout {
    return this.model.layout;
  }

  /** Makes `weights` (flat, layout order) the current parameters (copied into engine tensors). */
  setWeights(weights: Float32Array): void {
    const { layout } = this.model;
    if (weights.length !== layout.size) {
      throw new Error(`weights have ${weights.length} values, the model has ${layout.size} parameters`);
    }
    this.tf.dispose(this.params);
    this.params = layout.params.map((p) =>
      this.tf.tensor(weights.slice(p.offset, p.offset + p.size), p.shape, 'float32'),
    );
  }

  /** Makes images x ([count, C, H, W] flat) with labels y the current batch. */
  setBatch(x: Float32Array, y: ArrayLike<number>, count: number): void {
    const { tf } = this;
    const [c, h, w] = this.model.config.inputShape;
    if (x.length < count * c * h * w) throw new Error(`batch holds ${x.length} values, ${count} images need ${count * c * h * w}`);
    if (this.batch) tf.dispose([this.batch.x, this.batch.onehot]);
    const nchw = tf.tensor4d(x.subarray(0, count * c * h * w), [count, c, h, w]);
    const labels = tf.tensor1d(Int32Array.from({ length: count }, (_, i) => y[i]!), 'int32');
    this.batch = {
      x: tf.transpose(nchw, [0, 2, 3, 1]),
      onehot: tf.cast(tf.oneHot(labels, this.model.config.classes), 'float32') as TF.Tensor2D,
      count,
    };
    tf.dispose([nchw, labels]);
  }

  private current() {
    if (!this.batch) throw new Error('TfjsModel: setBatch() must be called first');
    if (this.params.length === 0) throw new Error('TfjsModel: setWeights() must be called first');
    return this.batch;
  }

  private forward(params: TF.Tensor[], x: TF.Tensor4D): TF.Tensor2D {
    const byName = new Map(this.model.layout.params.map((p, i) => [p.name, params[i]!]));
    const ops = new TfjsOps(this.tf, byName);
    const out = this.def(ops, { t: x, shape: [...this.model.config.inputShape] });
    return out.t as TF.Tensor2D;
  }

  private meanCrossEntropy(logits: TF.Tensor2D, onehot: TF.Tensor2D): TF.Scalar {
    const { tf } = this;
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), 1))) as TF.Scalar;
  }

  /** Logits [count × classes] of the current batch. */
  logits(): Float32Array {
    const { x } = this.current();
    const t = this.tf.tidy(() => this.forward(this.params, x));
    const out = t.dataSync() as Float32Array;
    t.dispose();
    return Float32Array.from(out);
  }

  /** Mean cross-entropy of the current batch. */
  loss(): number {
    const { x, onehot } = this.current();
    const t = this.tf.tidy(() => this.meanCrossEntropy(this.forward(this.params, x), onehot));
    const v = t.dataSync()[0]!;
    t.dispose();
    return v;
  }

  /** Loss and its exact gradient (reverse-mode autograd) on the current batch; `out` receives the gradient. */
  lossAndGradient(out: Float32Array = new Float32Array(this.model.layout.size)): LossAndGradient {
    const { tf } = this;
    const { x, onehot } = this.current();
    const { layout } = this.model;
    if (out.length !== layout.size) throw new Error(`gradient buffer has ${out.length} values, expected ${layout.size}`);
    const { value, grads } = tf.tidy(() =>
      tf.valueAndGrads((...params: TF.Tensor[]) => this.meanCrossEntropy(this.forward(params, x), onehot))(this.params),
    );
    layout.params.forEach((p, i) => out.set(grads[i]!.dataSync() as Float32Array, p.offset));
    const loss = value.dataSync()[0]!;
    tf.dispose([value, ...grads]);
    return { loss, grad: out };
  }

  /** Tensors and bytes the engine holds right now (tfjs' own accounting). */
  memory(): { numTensors: number; numBytes: number } {
    const m = this.tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }

  dispose(): void {
    this.tf.dispose(this.params);
    this.params = [];
    if (this.batch) this.tf.dispose([this.batch.x, this.batch.onehot]);
    this.batch = null;
  }
}
