// Shape inference shared by every Ops implementation, so all of them accept and reject the same graphs.
// Shapes here are per-example (no batch dimension).

import type { ConvOptions } from './ops.ts';

function fmt(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function conv2dShape(
  x: readonly number[],
  w: readonly number[],
  b: readonly number[] | null,
  { stride, pad }: ConvOptions,
): number[] {
  if (x.length !== 3) throw new Error(`conv2d expects a [C, H, W] input, got ${fmt(x)}`);
  if (w.length !== 4) throw new Error(`conv2d expects a [outC, inC, kH, kW] weight, got ${fmt(w)}`);
  const [c, h, wd] = x as [number, number, number];
  const [oc, ic, kh, kw] = w as [number, number, number, number];
  if (ic !== c) throw new Error(`conv2d: weight ${fmt(w)} expects ${ic} input channels, input is ${fmt(x)}`);
  if (b && !sameShape(b, [oc])) throw new Error(`conv2d: bias ${fmt(b)} does not match ${oc} output channels`);
  if (!(stride >= 1) || !(pad >= 0)) throw new Error(`conv2d: bad stride ${stride} / pad ${pad}`);
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  if (oh < 1 || ow < 1) throw new Error(`conv2d: input ${fmt(x)} too small for kernel ${kh}×${kw}, pad ${pad}`);
  return [oc, oh, ow];
}

export function linearShape(x: readonly number[], w: readonly number[], b: readonly number[] | null): number[] {
  if (x.length !== 1) throw new Error(`linear expects a flat [F] input, got ${fmt(x)} (flatten first)`);
  if (w.length !== 2 || w[1] !== x[0]) throw new Error(`linear: weight ${fmt(w)} does not fit input ${fmt(x)}`);
  if (b && !sameShape(b, [w[0]!])) throw new Error(`linear: bias ${fmt(b)} does not match weight ${fmt(w)}`);
  return [w[0]!];
}

export function groupNormShape(x: readonly number[], groups: number): number[] {
  if (x.length < 2) throw new Error(`groupNorm expects [C, …] with spatial dims, got ${fmt(x)}`);
  const c = x[0]!;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`groupNorm: ${groups} groups do not divide ${c} channels`);
  }
  return [...x];
}

export function maxPoolShape(x: readonly number[], k: number, stride: number): number[] {
  if (x.length !== 3) throw new Error(`maxPool expects [C, H, W], got ${fmt(x)}`);
  const [c, h, w] = x as [number, number, number];
  const oh = Math.floor((h - k) / stride) + 1;
  const ow = Math.floor((w - k) / stride) + 1;
  if (oh < 1 || ow < 1) throw new Error(`maxPool: input ${fmt(x)} smaller than window ${k}`);
  return [c, oh, ow];
}

export function globalAvgPoolShape(x: readonly number[]): number[] {
  if (x.length !== 3) throw new Error(`globalAvgPool expects [C, H, W], got ${fmt(x)}`);
  return [x[0]!, 1, 1];
}

export function flattenShape(x: readonly number[]): number[] {
  return [sizeOf(x)];
}

export function addShape(a: readonly number[], b: readonly number[]): number[] {
  if (!sameShape(a, b)) throw new Error(`add: shapes ${fmt(a)} and ${fmt(b)} differ`);
  return [...a];
}
