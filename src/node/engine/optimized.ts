// onnxruntime's fully optimised graph with the weights still fed as inputs.
//
// onnxruntime's fastest CPU kernels (level 'all': the NchwcTransformer's blocked `com.microsoft.nchwc:Conv`
// with the activation fused in) are applied only to convolutions whose weights are constant initializers.
// BAFFLE needs new weights on every pass, so the project's graph feeds them as inputs and onnxruntime keeps
// the plain im2col Conv (≈1.3× slower on the conv models). This module gets both:
//
//   1. bake in weights whose values are their own flat indices plus 2^23 (exact in float32 below 2^23, and
//      far from any constant of the graph; larger models use two bakes, the low 12 bits and the rest), and
//      let onnxruntime optimise that model at level 'all' and save it (optimizedModelFilePath);
//   2. in the saved graph every weight-derived initializer (reordered to the blocked OIHWBiBo layout, or kept
//      as is) holds indices: it is the gather map from the flat layout to the engine's layout (0 = padding);
//   3. those initializers become graph inputs again, and the graph is loaded with optimisation off.
//
// Per pass the session gathers the flat weights into the engine-layout tensors (a contiguous identity range
// is fed as a zero-copy view instead). Checks, each a reason to fall back to the plain graph: every derived
// tensor is a pure gather (no arithmetic folded in), every weight reaches the graph, and the logits match
// the plain graph on a probe batch. The saved graph is specific to this CPU (NCHWc block size 8 or 16) and
// uses contrib ops: it is built per session, never shipped, and it exists for onnxruntime-node only.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClientModel } from '../../core/model/artifact.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
type IModel = onnxProto.onnx.IModelProto;
type ITensor = onnxProto.onnx.ITensorProto;

/** How one engine-layout input tensor is filled from the flat weight vector. */
export type WeightFeed =
  /** weights[offset, offset + size) as is: fed as a view, no copy. */
  | { kind: 'view'; name: string; dims: number[]; offset: number; size: number }
  /**
   * buffer[dst[i]] = weights[src[i]] for every i; the other elements of the buffer are padding and stay 0.
   * dst is null when every element is written in order (dst[i] = i). `runs`, when set, is the same dense
   * map as strided runs (triples: first source index, source stride, length), which copies faster.
   */
  | { kind: 'gather'; name: string; dims: number[]; src: Int32Array; dst: Int32Array | null; runs: Int32Array | null; length: number };

export interface OptimizedGraph {
  /** The optimised model (weights as inputs), to load with graphOptimizationLevel 'disabled'. */
  bytes: Uint8Array;
  feeds: WeightFeed[];
  /** Custom-domain ops in the graph (e.g. com.microsoft.nchwc:Conv ×3), for reports. */
  contribOps: Record<string, number>;
  /** NCHWc channel block size of this CPU (16 with AVX-512, 8 with AVX2), 0 if the graph has no blocked conv. */
  block: number;
  /** GroupNorm + activation chains moved into the blocked layout (reorder pairs removed). */
  foldedReorders: number;
  /** Convolutions whose input is padded by a Pad node, the convolution itself running unpadded. */
  paddedExplicitly: number;
}

export interface OptimizeOptions {
  /** Run GroupNorm + activation in the blocked layout where a group is whole blocks (default true). */
  foldReorders?: boolean;
  /**
   * Experiment: in a folded chain, compute HardSwish (HardSigmoid + Mul) as a blocked 1×1 depthwise Conv with
   * unit weights and onnxruntime's fused HardSwish activation (default false: measured no faster).
   */
  fuseHardSwish?: boolean;
  /** Experiment: GroupNorm's InstanceNormalization on [N, G, L] as LayerNormalization over L (default false). */
  layerNorm?: boolean;
  /** Pad the input of blocked convolutions with pads >= PAD_EXPLICITLY_FROM explicitly, run them unpadded (default true). */
  padExplicitly?: boolean;
}

/** Thrown when the optimised graph cannot be used: the reason for the fallback. */
export class OptimizeError extends Error {
  override name = 'OptimizeError';
}

/** One bake encodes weight i as ((i >>> shift) & mask) + OFFSET; values of float32 tensors outside
 * [OFFSET, 2·OFFSET) cannot come from a weight. */
interface Bake {
  shift: number;
  mask: number;
}

const OFFSET = 2 ** 23;
const LOW_BITS = 12;

function bakesFor(n: number): Bake[] {
  if (n <= OFFSET) return [{ shift: 0, mask: OFFSET - 1 }];
  if (n > 2 ** (LOW_BITS + 23)) throw new OptimizeError(`model too large for the index encoding (${n} parameters)`);
  return [
    { shift: 0, mask: (1 << LOW_BITS) - 1 },
    { shift: LOW_BITS, mask: OFFSET - 1 },
  ];
}

/** Does the float32 tensor hold any value in the index range (so it derives from the weights)? */
function holdsIndices(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v >= OFFSET && v < 2 * OFFSET) return true;
  }
  return false;
}

/** The model's ONNX with every parameter an initializer holding `values` (a slice per parameter). */
function bakeWeights(model: ClientModel, values: Float32Array): Uint8Array {
  const proto = onnx.ModelProto.decode(model.onnx);
  const graph = proto.graph!;
  const params = new Set(model.layout.map((p) => p.name));
  graph.input = (graph.input ?? []).filter((i) => !params.has(i.name ?? ''));
  graph.initializer = graph.initializer ?? [];
  for (const p of model.layout) {
    const data = values.slice(p.offset, p.offset + p.size);
    graph.initializer.push(onnx.TensorProto.create({ name: p.name, dataType: FLOAT, dims: p.shape, rawData: new Uint8Array(data.buffer) }));
  }
  return onnx.ModelProto.encode(proto).finish();
}

function floatsOf(t: ITensor): Float32Array {
  if (t.rawData?.length) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

async function optimiseToProto(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions, dir: string, tag: string): Promise<IModel> {
  const file = path.join(dir, `${tag}.onnx`);
  const s = await ort.InferenceSession.create(bytes, {
    ...options,
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: file,
    logSeverityLevel: 3, // the "hardware specific" warning is the point here
  });
  await s.release();
  return onnx.ModelProto.decode(readFileSync(file));
}

/**
 * Builds the optimised graph of `model` with its weights as engine-layout inputs. Throws OptimizeError when
 * onnxruntime's rewrite is not a pure relayout of the weights.
 */
export async function optimizeWithWeightInputs(
  model: ClientModel,
  sessionOptions: ort.InferenceSession.SessionOptions,
  options: OptimizeOptions = {},
): Promise<OptimizedGraph> {
  const n = model.params;
  const bakes = bakesFor(n);
  const own = new Set((onnx.ModelProto.decode(model.onnx).graph?.initializer ?? []).map((i) => i.name ?? ''));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-ort-'));
  let protos: IModel[];
  try {
    protos = [];
    for (const [b, bake] of bakes.entries()) {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = ((i >>> bake.shift) & bake.mask) + OFFSET;
      protos.push(await optimiseToProto(bakeWeights(model, values), sessionOptions, dir, `bake${b}`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const proto = protos[0]!;
  const graph = proto.graph!;
  const others = protos.slice(1).map((p) => new Map((p.graph?.initializer ?? []).map((t) => [t.name ?? '', t])));

  const feeds: WeightFeed[] = [];
  const kept: ITensor[] = [];
  const seen = new Uint8Array(n);
  for (const init of graph.initializer ?? []) {
    const name = init.name ?? '';
    // Constants of our own graph (GroupNorm scales, shapes), of inlined functions and non-float tensors are
    // not parameters; nor is any float tensor without a value in the index range.
    const first = init.dataType === FLOAT && !own.has(name) ? floatsOf(init) : null;
    if (first === null || !holdsIndices(first)) {
      kept.push(init);
      continue;
    }
    const parts = [first, ...others.map((m) => {
      const t = m.get(name);
      if (!t) throw new OptimizeError(`the two index bakes gave different graphs (tensor ${name})`);
      return floatsOf(t);
    })];
    const len = parts[0]!.length;
    const map = new Int32Array(len);
    let padding = 0;
    for (let i = 0; i < len; i++) {
      let idx = 0;
      let zero = 0;
      for (const [b, bake] of bakes.entries()) {
        const v = parts[b]![i]!;
        if (v === 0) {
          zero++;
          continue;
        }
        const d = v - OFFSET;
        if (!Number.isInteger(d) || d < 0 || d > bake.mask) {
          throw new OptimizeError(`optimised tensor ${name} is not a pure gather of the weights (value ${v})`);
        }
        idx += d * 2 ** bake.shift;
      }
      if (zero === bakes.length) {
        map[i] = -1;
        padding++;
      } else if (zero > 0 || idx >= n) {
        throw new OptimizeError(`optimised tensor ${name} is not a pure gather of the weights`);
      } else {
        map[i] = idx;
        seen[idx] = 1;
      }
    }
    const dims = (init.dims ?? []).map(Number);
    feeds.push(makeFeed(name, dims, map, padding));
  }
  for (let i = 0; i < n; i++) if (!seen[i]) throw new OptimizeError(`weight ${i} does not reach the optimised graph`);

  graph.initializer = kept;
  const block = nchwcBlockSize(graph, feeds);
  const folded = block > 0 && options.foldReorders !== false ? foldReorders(graph, block, options.fuseHardSwish === true) : 0;
  if (options.layerNorm) instanceToLayerNorm(graph);
  const padded = block > 0 && options.padExplicitly !== false ? padExplicitly(graph, block, feeds) : 0;
  for (const f of feeds) {
    graph.input!.push({ name: f.name, type: { tensorType: { elemType: FLOAT, shape: { dim: f.dims.map((d) => ({ dimValue: d })) } } } });
  }
  const contribOps: Record<string, number> = {};
  for (const node of graph.node ?? []) {
    if (node.domain) {
      const key = `${node.domain}:${node.opType}`;
      contribOps[key] = (contribOps[key] ?? 0) + 1;
    }
  }
  return { bytes: onnx.ModelProto.encode(proto).finish(), feeds, contribOps, block, foldedReorders: folded, paddedExplicitly: padded };
}

function makeFeed(name: string, dims: number[], map: Int32Array, padding: number): WeightFeed {
  const len = map.length;
  if (padding === 0 && len > 0) {
    const first = map[0]!;
    let identity = true;
    for (let i = 1; i < len && identity; i++) identity = map[i] === first + i;
    if (identity) return { kind: 'view', name, dims, offset: first, size: len };
    return { kind: 'gather', name, dims, src: map, dst: null, runs: stridedRuns(map), length: len };
  }
  const src = new Int32Array(len - padding);
  const dst = new Int32Array(len - padding);
  let j = 0;
  for (let i = 0; i < len; i++) {
    if (map[i]! >= 0) {
      src[j] = map[i]!;
      dst[j++] = i;
    }
  }
  return { kind: 'gather', name, dims, src, dst, runs: null, length: len };
}

/** The map as runs of constant source stride, or null when runs would be short (< 4 on average). */
function stridedRuns(map: Int32Array): Int32Array | null {
  const out: number[] = [];
  for (let i = 0; i < map.length; ) {
    const stride = i + 1 < map.length ? map[i + 1]! - map[i]! : 1;
    let j = i + 1;
    while (j < map.length && map[j]! - map[j - 1]! === stride) j++;
    out.push(map[i]!, stride, j - i);
    i = j;
  }
  return out.length / 3 > map.length / 4 ? null : Int32Array.from(out);
}

/** Fills `buffer` (engine layout) from the flat `weights` as a gather feed says. */
export function gatherInto(
  buffer: Float32Array,
  weights: Float32Array,
  src: Int32Array,
  dst: Int32Array | null,
  runs: Int32Array | null = null,
): void {
  if (runs !== null) {
    let d = 0;
    for (let r = 0; r < runs.length; r += 3) {
      let s = runs[r]!;
      const st = runs[r + 1]!;
      const end = d + runs[r + 2]!;
      // Runs are channel blocks (16 with AVX-512, 8 with AVX2): written out, the copy is 25% faster than the loop.
      for (; d + 8 <= end; d += 8, s += 8 * st) {
        buffer[d] = weights[s]!;
        buffer[d + 1] = weights[s + st]!;
        buffer[d + 2] = weights[s + 2 * st]!;
        buffer[d + 3] = weights[s + 3 * st]!;
        buffer[d + 4] = weights[s + 4 * st]!;
        buffer[d + 5] = weights[s + 5 * st]!;
        buffer[d + 6] = weights[s + 6 * st]!;
        buffer[d + 7] = weights[s + 7 * st]!;
      }
      for (; d < end; d++, s += st) buffer[d] = weights[s]!;
    }
    return;
  }
  const m = src.length;
  if (dst === null) {
    for (let i = 0; i < m; i++) buffer[i] = weights[src[i]!]!;
  } else {
    for (let i = 0; i < m; i++) buffer[dst[i]!] = weights[src[i]!]!;
  }
}

// ---- GroupNorm in the blocked layout ---------------------------------------------------------------------
//
// onnxruntime runs Conv in the blocked NCHWc layout but not InstanceNormalization, so around every
// GroupNorm (Reshape [0, G, -1] → InstanceNormalization → Reshape) + activation it inserts ReorderOutput
// (blocked → NCHW) before and ReorderInput (NCHW → blocked) after. When a group is made of whole channel
// blocks ((C/G) % block == 0), the group's elements are one contiguous run in the blocked tensor too, in
// another order; mean and variance are order-free (up to rounding) and the activation is element-wise, so
// the chain can run on the blocked tensor as is. foldReorders rewires it so and drops the reorders.

type INode = onnxProto.onnx.INodeProto;
type IGraph = onnxProto.onnx.IGraphProto;
const NCHWC = 'com.microsoft.nchwc';
/** Shape-preserving element-wise ops an activation may be made of (with scalar constants). */
const ELEMENTWISE = new Set(['HardSigmoid', 'Mul', 'Add', 'Sub', 'Div', 'Relu', 'Sigmoid', 'Tanh', 'Selu', 'Elu', 'Erf', 'Gelu', 'LeakyRelu', 'Clip']);

function intAttr(node: INode, name: string): number | null {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a || a.i === undefined || a.i === null) return null;
  return Number(a.i);
}

/**
 * The channel block size from a reordered conv weight: in OIHWBiBo element j < block is output channel j of
 * input channel 0, so map[j] − map[0] = j·I·kH·kW up to the block size.
 */
function nchwcBlockSize(graph: IGraph, feeds: WeightFeed[]): number {
  const weightInputs = new Set((graph.node ?? []).filter((n) => n.domain === NCHWC && n.opType === 'Conv').map((n) => n.input?.[1] ?? ''));
  for (const f of feeds) {
    if (f.kind !== 'gather' || f.dst !== null || !weightInputs.has(f.name) || f.dims.length !== 4) continue;
    const [O, I, kh, kw] = f.dims as [number, number, number, number];
    if (O < 8 || I < 8) continue;
    const stride = I * kh * kw;
    let b = 1;
    while (b < O && f.src[b] === f.src[0]! + b * stride) b++;
    if (b === 8 || b === 16) return b;
  }
  return 0;
}

function floatAttr(node: INode, name: string): number | null {
  const a = node.attribute?.find((x) => x.name === name);
  return a && typeof a.f === 'number' ? a.f : null;
}

/** The region is exactly HardSwish(x) = x · HardSigmoid(x; 1/6, 1/2): returns [HardSigmoid, Mul], else null. */
function hardSwishPair(region: Set<INode>, x: string): [INode, INode] | null {
  if (region.size !== 2) return null;
  const hs = [...region].find((n) => n.opType === 'HardSigmoid');
  const mul = [...region].find((n) => n.opType === 'Mul');
  if (!hs || !mul || hs.input?.[0] !== x) return null;
  const alpha = floatAttr(hs, 'alpha') ?? 0.2;
  const beta = floatAttr(hs, 'beta') ?? 0.5;
  if (Math.abs(alpha - 1 / 6) > 1e-7 || beta !== 0.5) return null;
  const ins = mul.input ?? [];
  if (ins.length !== 2 || !ins.includes(x) || !ins.includes(hs.output![0]!)) return null;
  return [hs, mul];
}

function foldReorders(graph: IGraph, block: number, fuseHardSwish: boolean): number {
  const nodes = graph.node ?? [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const consumers = (tensor: string) => nodes.filter((n) => n.input?.includes(tensor));
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const int64s = (name: string): number[] | null => {
    const t = inits.get(name);
    if (!t || t.dataType !== onnx.TensorProto.DataType.INT64) return null;
    if (t.rawData?.length) {
      const copy = new Uint8Array(t.rawData);
      return Array.from(new BigInt64Array(copy.buffer, 0, copy.byteLength / 8), Number);
    }
    return (t.int64Data ?? []).map(Number);
  };
  const isScalarConst = (name: string) => {
    const t = inits.get(name);
    return !!t && (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1) === 1;
  };
  const remove = new Set<INode>();
  const added: { before: INode; node: INode }[] = [];
  let folded = 0;
  for (const ro of nodes) {
    if (ro.domain !== NCHWC || ro.opType !== 'ReorderOutput' || intAttr(ro, 'channels_last')) continue;
    const channels = intAttr(ro, 'channels');
    const blocked = ro.input?.[0];
    const plain = ro.output?.[0];
    if (!channels || !blocked || !plain || channels % block !== 0 || outputs.has(plain)) continue;
    const c1 = consumers(plain);
    if (c1.length !== 1 || c1[0]!.opType !== 'Reshape') continue;
    const r1 = c1[0]!;
    const s1 = int64s(r1.input?.[1] ?? '');
    if (!s1 || s1.length !== 3 || s1[0] !== 0 || s1[2] !== -1 || !(s1[1]! > 0) || (channels / s1[1]!) % block !== 0) continue;
    const c2 = consumers(r1.output![0]!);
    if (c2.length !== 1 || c2[0]!.opType !== 'InstanceNormalization') continue;
    const inorm = c2[0]!;
    const c3 = consumers(inorm.output![0]!);
    if (c3.length !== 1 || c3[0]!.opType !== 'Reshape') continue;
    const r2 = c3[0]!;
    const s2 = int64s(r2.input?.[1] ?? '');
    if (!s2 || s2.length !== 4 || (s2[1] !== channels && s2[1] !== 0)) continue;
    // Grow the element-wise activation region from the normalised tensor.
    const region = new Set<INode>();
    const tensors = new Set<string>([r2.output![0]!]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const n of nodes) {
        if (region.has(n) || n.domain || !ELEMENTWISE.has(n.opType ?? '') || (n.output?.length ?? 0) !== 1) continue;
        const ins = n.input ?? [];
        if (!ins.some((i) => tensors.has(i)) || !ins.every((i) => tensors.has(i) || isScalarConst(i))) continue;
        region.add(n);
        tensors.add(n.output![0]!);
        grew = true;
      }
    }
    // The region's ends: tensors read outside it. Exactly one, and not a graph output.
    const ends = [...tensors].filter((t) => outputs.has(t) || nodes.some((n) => !region.has(n) && n !== r2 && n.input?.includes(t)));
    if (ends.length !== 1 || outputs.has(ends[0]!)) continue;
    const end = ends[0]!;
    // HardSwish as a blocked depthwise 1×1 Conv with unit weights and the fused activation: one pass, not three.
    const pair = fuseHardSwish ? hardSwishPair(region, r2.output![0]!) : null;
    if (pair) {
      const ones = `hardswish_ones_${channels}`;
      if (!inits.has(ones)) {
        const t = { name: ones, dataType: FLOAT, dims: [channels, 1, 1, 1], rawData: new Uint8Array(new Float32Array(channels).fill(1).buffer) };
        graph.initializer!.push(t);
        inits.set(ones, t);
      }
      const [hs, mul] = pair;
      hs.domain = NCHWC;
      hs.opType = 'Conv';
      hs.name = `baffle_hardswish_${folded}`;
      hs.input = [r2.output![0]!, ones];
      hs.output = [end];
      hs.attribute = [
        { name: 'activation', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('HardSwish') },
        { name: 'auto_pad', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('NOTSET') },
        { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] },
        { name: 'group', type: onnx.AttributeProto.AttributeType.INT, i: channels },
      ];
      remove.add(mul);
      region.delete(mul);
    }
    // Rewire: the first Reshape reads the blocked tensor; ReorderInputs after the end are dropped, any other
    // reader of the end gets a ReorderOutput of its own.
    r1.input![0] = blocked;
    remove.add(ro);
    const readers = nodes.filter((n) => !region.has(n) && n !== r2 && n.input?.includes(end));
    const plainReaders = readers.filter((n) => !(n.domain === NCHWC && n.opType === 'ReorderInput' && !intAttr(n, 'channels_last')));
    for (const ri of readers) {
      if (plainReaders.includes(ri)) continue;
      const out = ri.output![0]!;
      for (const n of nodes) n.input = (n.input ?? []).map((i) => (i === out ? end : i));
      remove.add(ri);
    }
    if (plainReaders.length > 0) {
      const reordered = `${end}_nchw`;
      const first = nodes.find((n) => plainReaders.includes(n))!;
      added.push({ before: first, node: { ...ro, name: `baffle_reorder_moved_${folded}`, input: [end], output: [reordered] } });
      for (const n of plainReaders) n.input = (n.input ?? []).map((i) => (i === end ? reordered : i));
    }
    folded++;
  }
  if (folded === 0) return 0;
  const out: INode[] = [];
  for (const n of nodes) {
    for (const a of added) if (a.before === n) out.push(a.node);
    if (!remove.has(n)) out.push(n);
  }
  graph.node = out;
  return folded;
}


/**
 * GroupNorm is emitted as Reshape [0, G, -1] → InstanceNormalization(scale 1, bias 0) → Reshape [0, C, H, W].
 * On that rank-3 input with unit scale and zero bias it is LayerNormalization over the last axis (L = C/G·H·W,
 * read from the second Reshape), whose kernel takes the mean and mean square in one pass.
 */
function instanceToLayerNorm(graph: IGraph): number {
  const nodes = graph.node ?? [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const int64s = (name: string): number[] | null => {
    const t = inits.get(name);
    if (!t || t.dataType !== onnx.TensorProto.DataType.INT64) return null;
    const copy = new Uint8Array(t.rawData ?? []);
    return t.rawData?.length ? Array.from(new BigInt64Array(copy.buffer, 0, copy.byteLength / 8), Number) : (t.int64Data ?? []).map(Number);
  };
  const constant = (name: string, value: number) => {
    const t = inits.get(name);
    if (!t || t.dataType !== FLOAT) return false;
    const v = floatsOf(t);
    return v.length > 0 && v.every((x) => x === value);
  };
  const producer = new Map<string, INode>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);
  const made = new Map<number, [string, string]>();
  let changed = 0;
  for (const n of nodes) {
    if (n.opType !== 'InstanceNormalization' || n.domain) continue;
    const [x, scale, bias] = n.input ?? [];
    const r1 = producer.get(x ?? '');
    const s1 = r1?.opType === 'Reshape' ? int64s(r1.input?.[1] ?? '') : null;
    const r2 = nodes.find((m) => m.opType === 'Reshape' && m.input?.[0] === n.output?.[0]);
    const s2 = r2 ? int64s(r2.input?.[1] ?? '') : null;
    if (!s1 || s1.length !== 3 || !s2 || s2.length !== 4 || !constant(scale ?? '', 1) || !constant(bias ?? '', 0)) continue;
    const L = (s2[1]! / s1[1]!) * s2[2]! * s2[3]!;
    if (!Number.isInteger(L) || L < 1) continue;
    let names = made.get(L);
    if (!names) {
      names = [`ln_one_${L}`, `ln_zero_${L}`];
      graph.initializer!.push(
        { name: names[0], dataType: FLOAT, dims: [L], rawData: new Uint8Array(new Float32Array(L).fill(1).buffer) },
        { name: names[1], dataType: FLOAT, dims: [L], rawData: new Uint8Array(new Float32Array(L).buffer) },
      );
      made.set(L, names);
    }
    const eps = n.attribute?.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    n.opType = 'LayerNormalization';
    n.input = [x!, names[0], names[1]];
    n.attribute = [
      { name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 },
      { name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: eps },
    ];
    changed++;
  }
  return changed;
}

// ---- Explicit padding of wide-kernel convolutions -------------------------------------------------------
//
// onnxruntime's blocked convolution computes the outputs whose window overlaps the zero padding on a slower
// path than the interior ones. With a 5×5 kernel on a 16×16 input (LeNet's conv2) that is 44% of the
// outputs: padding the input with a Pad node first and running the convolution unpadded took that layer
// from 2.10 to 1.82 ms per pass (batch 32), the same bits. A 3×3 kernel (pads 1) gains nothing and the Pad's
// pass over a large tensor then costs more than it saves (WRN-10-2: 14.1 → 15.9 ms), so only pads >= 2.
// The blocked tensor [N, C, H, W] is [N, C/B, H, W, B] in memory: padding axes 2 and 3 of that 5-D view pads
// every channel block alike. Reshape's 0 (copy the dimension) keeps the rewrite free of the actual sizes.

/** Smallest padding at which a convolution is padded explicitly. */
export const PAD_EXPLICITLY_FROM = 2;

function padExplicitly(graph: IGraph, block: number, feeds: WeightFeed[]): number {
  const dims = new Map(feeds.map((f) => [f.name, f.dims]));
  const nodes = graph.node ?? [];
  const out: INode[] = [];
  const int64 = (name: string, values: number[]) => {
    graph.initializer!.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  };
  let count = 0;
  for (const node of nodes) {
    const pads = node.attribute?.find((a) => a.name === 'pads')?.ints?.map(Number) ?? [];
    const w = dims.get(node.input?.[1] ?? '');
    const autoPad = node.attribute?.find((a) => a.name === 'auto_pad')?.s;
    const explicitPads = !autoPad?.length || new TextDecoder().decode(autoPad) === 'NOTSET';
    if (node.domain !== NCHWC || node.opType !== 'Conv' || !w || w.length !== 4 || pads.length !== 4 || !explicitPads || Math.max(...pads) < PAD_EXPLICITLY_FROM) {
      out.push(node);
      continue;
    }
    const [top, left, bottom, right] = pads as [number, number, number, number];
    const inChannels = w[1]! * (intAttr(node, 'group') ?? 1);
    const blocked = inChannels % block === 0;
    const tag = `baffle_pad${count}`;
    const x = node.input![0]!;
    if (blocked) {
      out.push({ opType: 'Reshape', name: `${tag}_5d`, input: [x, int64(`${tag}_shape5`, [0, -1, 0, 0, block])], output: [`${tag}_x5`] });
      out.push({ opType: 'Pad', name: tag, input: [`${tag}_x5`, int64(`${tag}_pads`, [0, 0, top, left, 0, 0, 0, bottom, right, 0])], output: [`${tag}_p5`] });
      out.push({ opType: 'Reshape', name: `${tag}_4d`, input: [`${tag}_p5`, int64(`${tag}_shape4`, [0, -1, 0, 0])], output: [`${tag}_x`] });
    } else {
      // Input in plain NCHW (a first layer with fewer channels than a block).
      out.push({ opType: 'Pad', name: tag, input: [x, int64(`${tag}_pads`, [0, 0, top, left, 0, 0, bottom, right])], output: [`${tag}_x`] });
    }
    node.input![0] = `${tag}_x`;
    node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'pads');
    node.attribute.push({ name: 'pads', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 0, 0, 0] });
    out.push(node);
    count++;
  }
  graph.node = out;
  return count;
}
