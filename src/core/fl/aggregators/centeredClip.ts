// Centered clipping (Karimireddy, He & Jaggi 2021): start from a center v (the coordinate-wise median here, a
// robust start without history), then `iterations` times v ← v + mean_c clip(x_c − v, τ), where clip scales a
// vector to L2 norm at most τ. A client can move the aggregate by at most τ/m per iteration. τ null = the
// median distance of the clients to the start (so that about half of them are clipped on the first pass).
import { all, dimensionOf, divided, type Aggregate, type Aggregator, type ClientVector } from './types.ts';
import { MedianAggregator } from './median.ts';

export class CenteredClipAggregator implements Aggregator {
  readonly name = 'centered-clip';
  constructor(
    readonly tau: number | null,
    readonly iterations: number,
  ) {
    if (tau !== null && !(tau > 0)) throw new Error(`centered-clip: τ must be > 0, got ${tau}`);
    if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`centered-clip: iterations must be a positive integer, got ${iterations}`);
  }
  aggregate(vectors: readonly ClientVector[], divisor = 1): Aggregate {
    const d = dimensionOf(vectors);
    const m = vectors.length;
    const v = new MedianAggregator().aggregate(vectors).values;
    const distance = (x: Float32Array) => Math.sqrt(x.reduce((s, xi, i) => s + (xi - v[i]!) ** 2, 0));
    let tau = this.tau;
    if (tau === null) {
      const ds = vectors.map((c) => distance(c.values)).sort((a, b) => a - b);
      tau = ds[Math.floor((m - 1) / 2)]! || Number.MIN_VALUE;
    }
    const step = new Float64Array(d);
    for (let it = 0; it < this.iterations; it++) {
      step.fill(0);
      for (const c of vectors) {
        const norm = distance(c.values);
        const scale = norm > tau ? tau / norm : 1;
        for (let i = 0; i < d; i++) step[i] += (scale * (c.values[i]! - v[i]!)) / m;
      }
      for (let i = 0; i < d; i++) v[i] += step[i]!;
    }
    return { values: divided(v, divisor), used: all(vectors), excluded: [] };
  }
}
