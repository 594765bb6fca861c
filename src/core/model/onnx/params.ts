// Which initializers of an imported graph are weights, i.e. candidates for training, and how they group into
// layers (the unit of `first:N` / `last:N`).
//
// A candidate is a float32 initializer some node uses as a weight: Conv inputs 1, 2 (weight, bias); Gemm
// inputs 0, 1, 2 and MatMul operands when initializers; an operand of Add/Sub/Mul/Div with at least 2
// elements (a bias or scale; scalars there are constants such as decomposed Gelu's √2); BatchNormalization
// inputs 1, 2 (scale, B). BatchNormalization inputs 3, 4 are running statistics and never trained; Clip
// bounds, Pad values, Pow exponents and the like are not weights either.
//
// A layer is a Conv/Gemm/MatMul node with a weight, joined by the Add/Sub/Mul/Div/BatchNormalization nodes
// with a weight that consume its output directly or through one another (torch's MatMul + Add bias,
// tf2onnx's Conv + BatchNormalization). Such an affine node that follows no weighted node (e.g. the Mul and
// Add of a decomposed LayerNorm) starts a layer of its own. Layers are numbered in graph order.

import { DT, elementCount, type GraphProto, isFloatType, dataTypeName, nodeRef, tensorDims } from './proto.ts';

/** A node using an initializer. */
export interface Consumer {
  node: string;
  opType: string;
  /** Which input of the node the tensor is. */
  input: number;
  /** The node's position in graph order. */
  position: number;
}

export interface FloatInitializer {
  name: string;
  dataType: number;
  dims: number[];
  size: number;
  /** Position in the file's initializer list (the order of the trainable layout). */
  index: number;
  consumers: Consumer[];
  candidate: boolean;
  /** Why it is not a candidate (null for candidates): 'statistics', 'scalar constant', … */
  reason: string | null;
  /** Layers it is a weight of (candidates only), ascending. */
  layers: number[];
}

export interface Layer {
  index: number;
  /** The node that starts it (a Conv/Gemm/MatMul, or an affine node of its own). */
  opType: string;
  node: string;
  position: number;
}

export interface ParamAnalysis {
  /** Every float initializer (of any precision), in file order. */
  initializers: FloatInitializer[];
  /** The candidates among them, in file order. */
  candidates: FloatInitializer[];
  layers: Layer[];
}

const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);
const AFFINE = new Set(['Add', 'Sub', 'Mul', 'Div', 'BatchNormalization']);

/** null when input `index` of an `op` node is a weight for a tensor of `size` elements; else why it is not. */
function useAsWeight(op: string, index: number, size: number): string | null {
  switch (op) {
    case 'Conv':
      return index >= 1 ? null : 'Conv data input';
    case 'Gemm':
    case 'MatMul':
      return null;
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return size >= 2 ? null : 'scalar constant';
    case 'BatchNormalization':
      return index === 1 || index === 2 ? null : index >= 3 ? 'statistics (running mean/var)' : 'BatchNormalization data input';
    case 'Clip':
      return 'Clip bound';
    case 'Pow':
      return index === 1 ? 'Pow exponent' : 'Pow base';
    case 'Pad':
      return 'Pad value';
    case 'Reshape':
    case 'Slice':
    case 'Unsqueeze':
    case 'Squeeze':
    case 'Gather':
    case 'Shape':
      return 'shape constant';
    default:
      return `${op} input ${index}`;
  }
}

export function analyzeParams(graph: GraphProto): ParamAnalysis {
  const nodes = graph.node ?? [];
  const floats = new Map<string, FloatInitializer>();
  (graph.initializer ?? []).forEach((t, index) => {
    if (!isFloatType(t.dataType)) return;
    const dims = tensorDims(t);
    const name = t.name ?? '';
    floats.set(name, { name, dataType: t.dataType ?? 0, dims, size: elementCount(dims), index, consumers: [], candidate: false, reason: null, layers: [] });
  });

  // Pass 1: consumers, and whether any use is a weight use.
  const reasons = new Map<string, string[]>();
  nodes.forEach((node, position) => {
    (node.input ?? []).forEach((name, input) => {
      const t = floats.get(name);
      if (!t) return;
      const opType = node.opType ?? '';
      t.consumers.push({ node: node.name || `#${position}`, opType, input, position });
      const why = t.dataType !== DT.FLOAT ? `${dataTypeName(t.dataType)}, not float32` : t.size === 0 ? 'empty' : useAsWeight(opType, input, t.size);
      if (why === null) t.candidate = true;
      else reasons.set(name, [...(reasons.get(name) ?? []), why]);
    });
  });
  for (const t of floats.values()) {
    if (!t.candidate) t.reason = t.consumers.length === 0 ? 'unused' : [...new Set(reasons.get(t.name))].join(', ');
  }

  // Pass 2: layers. A node "has a weight" when one of its inputs is a candidate used as a weight there.
  const layers: Layer[] = [];
  const layerOfTensor = new Map<string, number>();
  const weightInputs = (node: (typeof nodes)[number]): number[] =>
    (node.input ?? []).flatMap((name, i) => {
      const t = floats.get(name);
      return t?.candidate && t.dataType === DT.FLOAT && useAsWeight(node.opType ?? '', i, t.size) === null ? [i] : [];
    });
  nodes.forEach((node, position) => {
    const op = node.opType ?? '';
    if (!WEIGHTED.has(op) && !AFFINE.has(op)) return;
    const weights = weightInputs(node);
    if (weights.length === 0) return;
    let layer: number | undefined;
    if (AFFINE.has(op)) {
      const dataIndex = op === 'BatchNormalization' ? 0 : (node.input ?? []).findIndex((_, i) => !weights.includes(i));
      const data = dataIndex >= 0 ? node.input?.[dataIndex] : undefined;
      if (data !== undefined) layer = layerOfTensor.get(data);
    }
    if (layer === undefined) {
      layer = layers.length;
      layers.push({ index: layer, opType: op, node: nodeRef(node, position), position });
    }
    for (const out of node.output ?? []) if (out) layerOfTensor.set(out, layer);
    for (const i of weights) {
      const t = floats.get(node.input![i]!)!;
      if (!t.layers.includes(layer)) t.layers.push(layer);
    }
  });
  for (const t of floats.values()) t.layers.sort((a, b) => a - b);

  const initializers = [...floats.values()];
  return { initializers, candidates: initializers.filter((t) => t.candidate), layers };
}
