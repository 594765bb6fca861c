// The model's input normalisation, applied to a split once after loading: x ← (x − mean[c]) / std[c].
import type { Preprocess } from '../model/artifact.ts';
import type { Split } from './types.ts';

/** Per-channel values of a one-or-per-channel list (a single value applies to every channel). */
function perChannel(values: readonly number[], channels: number, what: string): number[] {
  if (values.length === 1) return new Array<number>(channels).fill(values[0]!);
  if (values.length !== channels) throw new Error(`${what} has ${values.length} values for ${channels} channels`);
  return [...values];
}

/** True when normalisation changes nothing (mean 0, std 1). */
export function isIdentity(p: Pick<Preprocess, 'mean' | 'std'>): boolean {
  return p.mean.every((m) => m === 0) && p.std.every((s) => s === 1);
}

/** Normalises the examples of `split` in place (NCHW images of `p.image`). */
export function normalizeSplit(split: Split, p: Preprocess): void {
  if (isIdentity(p)) return;
  const [channels, h, w] = p.image;
  const mean = perChannel(p.mean, channels, 'inputMean');
  const std = perChannel(p.std, channels, 'inputStd');
  const plane = h * w;
  const x = split.x;
  for (let i = 0; i < split.count; i++) {
    for (let c = 0; c < channels; c++) {
      const m = mean[c]!;
      const s = std[c]!;
      const o = (i * channels + c) * plane;
      for (let j = o; j < o + plane; j++) x[j] = (x[j]! - m) / s;
    }
  }
}

/** The examples of `split` whose label is one of `classes`, in their order (labels unchanged). */
export function keepClasses(split: Split, classes: readonly number[]): Split {
  const keep = new Set(classes);
  const size = split.count === 0 ? 0 : split.x.length / split.count;
  let count = 0;
  for (let i = 0; i < split.count; i++) if (keep.has(split.y[i]!)) count++;
  const x = new Float32Array(count * size);
  const y = new Uint8Array(count);
  for (let i = 0, j = 0; i < split.count; i++) {
    if (!keep.has(split.y[i]!)) continue;
    x.set(split.x.subarray(i * size, (i + 1) * size), j * size);
    y[j++] = split.y[i]!;
  }
  return { x, y, count };
}
