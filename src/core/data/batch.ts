// A minibatch copied out of a split by example index, into buffers reused while the batch size stays the same
// (engines keep a view of the previous batch only until the next setBatch).
import type { Batch } from '../engine/types.ts';

export class BatchGatherer {
  private x = new Float32Array(0);
  private y = new Uint8Array(0);

  /** `x` holds examples of `exampleSize` values back to back, `y` their labels. */
  constructor(
    private readonly source: { x: Float32Array; y: Uint8Array },
    private readonly exampleSize: number,
  ) {}

  gather(indices: Int32Array): Batch {
    const n = indices.length;
    const size = this.exampleSize;
    if (this.y.length !== n) {
      this.x = new Float32Array(n * size);
      this.y = new Uint8Array(n);
    }
    for (let i = 0; i < n; i++) {
      const j = indices[i]!;
      this.x.set(this.source.x.subarray(j * size, (j + 1) * size), i * size);
      this.y[i] = this.source.y[j]!;
    }
    return { x: this.x, y: this.y, count: n };
  }
}
