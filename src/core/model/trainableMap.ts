// Where the trainable vector of an artifact sits inside a zoo model's full parameter vector. The backprop
// baseline computes gradients of the whole zoo model (tfjs) and the server trains only the artifact's
// parameters: expand() writes the trainable values into the full vector (frozen values stay), gather()
// reads the trainable part of a full-length vector (a gradient) back out.
import type { ParamEntry } from './artifact.ts';
import type { ParamLayout } from './types.ts';

export class TrainableMap {
  /** [trainable offset, full offset, size] per parameter. */
  private readonly runs: [number, number, number][];
  /** Length of the trainable vector. */
  readonly size: number;

  constructor(
    readonly full: ParamLayout,
    trainable: readonly ParamEntry[],
  ) {
    const byName = new Map(full.params.map((p) => [p.name, p]));
    this.runs = trainable.map((t) => {
      const f = byName.get(t.name);
      if (!f || f.size !== t.size) throw new Error(`trainable parameter '${t.name}' is not a parameter of the full model`);
      return [t.offset, f.offset, t.size];
    });
    this.size = trainable.reduce((s, t) => s + t.size, 0);
  }

  /** True when every parameter trains (the two vectors are the same). */
  get identity(): boolean {
    return this.size === this.full.size && this.runs.every(([t, f]) => t === f);
  }

  /** full[trainable positions] = trainable. */
  expand(trainable: Float32Array, full: Float32Array): void {
    for (const [t, f, n] of this.runs) full.set(trainable.subarray(t, t + n), f);
  }

  /** out = the trainable positions of `full`. */
  gather(full: Float32Array, out: Float32Array): void {
    for (const [t, f, n] of this.runs) out.set(full.subarray(f, f + n), t);
  }
}
