// ONNX models shaped like real exporters' output (torch.onnx.export, tf2onnx), built with onnx-proto in the
// tests so that no binary is committed. Weights are deterministic pseudo-random numbers.

import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;
type IAttribute = onnxProto.onnx.IAttributeProto;
export type Dim = number | string;

/** Deterministic numbers in [0, 1) (an LCG). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s >>> 8) / 16777216;
  };
}

type AttrValue = number | number[] | string | { float: number };

function attribute(name: string, v: AttrValue): IAttribute {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if (typeof v === 'object') return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.INT, i: v };
}

export function valueInfo(name: string, elemType: number, dims: Dim[] | null): IValueInfo {
  if (dims === null) return { name, type: { tensorType: { elemType } } };
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

export class Graph {
  readonly nodes: INode[] = [];
  readonly initializers: ITensor[] = [];
  readonly inputs: IValueInfo[] = [];
  readonly outputs: IValueInfo[] = [];
  private readonly rand: () => number;

  constructor(seed = 1) {
    this.rand = lcg(seed);
  }

  input(name: string, dims: Dim[], elemType: number = DT.FLOAT): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }
  output(name: string, dims: Dim[] | null, elemType: number = DT.FLOAT): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 initializer: given values, or uniform in ±scale (default 1/√(fan-in)). */
  weight(name: string, dims: number[], values?: number[] | { scale?: number; offset?: number }): string {
    const size = dims.reduce((p, d) => p * d, 1);
    let data: Float32Array;
    if (Array.isArray(values)) data = Float32Array.from(values);
    else {
      const fanIn = dims.length > 1 ? size / dims[0]! : size;
      const scale = values?.scale ?? 1 / Math.sqrt(fanIn);
      const offset = values?.offset ?? 0;
      data = Float32Array.from({ length: size }, () => offset + (2 * this.rand() - 1) * scale);
    }
    this.initializers.push({ name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({ name, dims, dataType: DT.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  }

  node(op: string, name: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[]): string {
    const out = outputs ?? [`${name}_output_0`];
    this.nodes.push({ opType: op, name, input: inputs, output: out, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return out[0]!;
  }
  /** torch-style Constant node holding an int64 tensor (dims [] for a scalar). */
  constInt64(name: string, values: number[], dims: number[] = [values.length]): string {
    const t: ITensor = { dims, dataType: DT.INT64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) };
    const out = `${name}_output_0`;
    this.nodes.push({ opType: 'Constant', name, input: [], output: [out], attribute: [{ name: 'value', type: AT.TENSOR, t }] });
    return out;
  }

  model(opts: { opset: number; irVersion: number; producer: [string, string] }): Uint8Array {
    const m = onnx.ModelProto.create({
      irVersion: opts.irVersion,
      producerName: opts.producer[0],
      producerVersion: opts.producer[1],
      opsetImport: [{ domain: '', version: opts.opset }],
      graph: { name: 'main_graph', node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return new Uint8Array(onnx.ModelProto.encode(m).finish());
  }
}

const TORCH: [string, string] = ['pytorch', '2.5.1'];

export interface MlpOptions {
  /** Declared input dims, batch included (torch without dynamic_axes declares its example batch, here 1). */
  input?: Dim[];
  hidden?: number;
  classes?: number;
  opset?: number;
  /** Reshape the output to [batch, classes / 2, 2] (a model that is not a classifier). */
  pairs?: boolean;
  seed?: number;
}

/** torch-style MLP: Flatten → Gemm(transB=1) → Relu → Gemm(transB=1), weights named fc1.weight etc. */
export function torchMlp(o: MlpOptions = {}): Uint8Array {
  const input = o.input ?? [1, 1, 28, 28];
  const hidden = o.hidden ?? 32;
  const classes = o.classes ?? 10;
  const features = input.slice(1).reduce<number>((p, d) => p * (typeof d === 'number' ? d : 28), 1);
  const g = new Graph(o.seed ?? 1);
  const x = g.input('input', input);
  const flat = g.node('Flatten', '/flatten/Flatten', [x], { axis: 1 });
  const h = g.node('Gemm', '/fc1/Gemm', [flat, g.weight('fc1.weight', [hidden, features]), g.weight('fc1.bias', [hidden])],
    { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
  const r = g.node('Relu', '/relu/Relu', [h]);
  const batch = input[0]!;
  if (o.pairs) {
    const y = g.node('Gemm', '/fc2/Gemm', [r, g.weight('fc2.weight', [classes, hidden]), g.weight('fc2.bias', [classes])], { transB: 1 });
    g.node('Reshape', '/Reshape', [y, g.int64('onnx::Reshape_9', [-1, classes / 2, 2])], {}, ['output']);
    g.output('output', [batch, classes / 2, 2]);
  } else {
    g.node('Gemm', '/fc2/Gemm', [r, g.weight('fc2.weight', [classes, hidden]), g.weight('fc2.bias', [classes])],
      { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, ['output']);
    g.output('output', [batch, classes]);
  }
  return g.model({ opset: o.opset ?? 17, irVersion: 8, producer: TORCH });
}

/**
 * torch-style CNN exported with dynamic_axes: Conv (BatchNorm folded in, weights renamed onnx::Conv_N) → Relu
 * → MaxPool, twice; x.view(x.size(0), -1) as Shape → Gather → Unsqueeze → Concat → Reshape; Dropout; Gemm;
 * a final Softmax. Input [batch, 3, 12, 12], 5 classes, opset 13.
 */
export function torchCnn(): Uint8Array {
  const g = new Graph(2);
  const x = g.input('input', ['batch', 3, 12, 12]);
  const conv = (name: string, input: string, w: string, b: string, cin: number, cout: number) =>
    g.node('Conv', name, [input, g.weight(w, [cout, cin, 3, 3]), g.weight(b, [cout], { scale: 0.1 })],
      { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
  let h = conv('/conv1/Conv', x, 'onnx::Conv_12', 'onnx::Conv_13', 3, 8);
  h = g.node('Relu', '/relu1/Relu', [h]);
  h = g.node('MaxPool', '/pool1/MaxPool', [h], { ceil_mode: 0, kernel_shape: [2, 2], pads: [0, 0, 0, 0], strides: [2, 2] });
  h = conv('/conv2/Conv', h, 'onnx::Conv_15', 'onnx::Conv_16', 8, 16);
  h = g.node('Relu', '/relu2/Relu', [h]);
  h = g.node('MaxPool', '/pool2/MaxPool', [h], { ceil_mode: 0, kernel_shape: [2, 2], pads: [0, 0, 0, 0], strides: [2, 2] });
  const shape = g.node('Shape', '/Shape', [h]);
  const index = g.constInt64('/Constant', [0], []);
  const size0 = g.node('Gather', '/Gather', [shape, index], { axis: 0 });
  const axes = g.constInt64('/Constant_1', [0]);
  const unsq = g.node('Unsqueeze', '/Unsqueeze', [size0, axes]);
  const minus1 = g.constInt64('/Constant_2', [-1]);
  const newShape = g.node('Concat', '/Concat', [unsq, minus1], { axis: 0 });
  h = g.node('Reshape', '/Reshape', [h, newShape]);
  h = g.node('Dropout', '/dropout/Dropout', [h]);
  h = g.node('Gemm', '/fc/Gemm', [h, g.weight('fc.weight', [5, 16 * 3 * 3]), g.weight('fc.bias', [5])], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
  g.node('Softmax', '/Softmax', [h], { axis: 1 }, ['output']);
  g.output('output', ['batch', 5]);
  return g.model({ opset: 13, irVersion: 7, producer: TORCH });
}

export interface Tf2onnxOptions {
  opset?: 13 | 21;
  /** BatchNormalization with training_mode=1 (opset 21 only). */
  bnTraining?: boolean;
}

/**
 * tf2onnx-style Keras CNN: channels-last input [unk__6, 16, 16, 1] → Transpose → Conv → BatchNormalization
 * (not folded: scale/B/mean/var initializers) → HardSwish → depthwise Conv (group = channels) → HardSwish →
 * GlobalAveragePool → Flatten → MatMul + Add (Dense) → LogSoftmax; 4 classes. At opset 13 HardSwish (opset
 * 14+) is written as x · HardSigmoid(x).
 */
export function tf2onnxNet(o: Tf2onnxOptions = {}): Uint8Array {
  const opset = o.opset ?? 21;
  const g = new Graph(3);
  const x = g.input('input_1', ['unk__6', 16, 16, 1]);
  const hardSwish = (name: string, input: string) => {
    if (opset >= 14) return g.node('HardSwish', name, [input]);
    const s = g.node('HardSigmoid', `${name}/HardSigmoid`, [input], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } });
    return g.node('Mul', `${name}/mul`, [input, s]);
  };
  let h = g.node('Transpose', 'model/conv2d/Conv2D__6', [x], { perm: [0, 3, 1, 2] });
  h = g.node('Conv', 'model/conv2d/Conv2D', [h, g.weight('model/conv2d/Conv2D/ReadVariableOp:0', [8, 1, 3, 3])],
    { dilations: [1, 1], group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  const bn = [
    g.weight('model/batch_normalization/ReadVariableOp:0', [8], { scale: 0.2, offset: 1 }),
    g.weight('model/batch_normalization/ReadVariableOp_1:0', [8], { scale: 0.1 }),
    g.weight('model/batch_normalization/FusedBatchNormV3/ReadVariableOp:0', [8], { scale: 0.1 }),
    g.weight('model/batch_normalization/FusedBatchNormV3/ReadVariableOp_1:0', [8], { scale: 0.2, offset: 1 }),
  ];
  h = g.node('BatchNormalization', 'model/batch_normalization/FusedBatchNormV3', [h, ...bn],
    { epsilon: { float: 0.001 }, momentum: { float: 0.99 }, ...(o.bnTraining ? { training_mode: 1 } : {}) });
  h = hardSwish('model/activation/HardSwish', h);
  h = g.node('Conv', 'model/depthwise_conv2d/depthwise', [h, g.weight('model/depthwise_conv2d/depthwise/ReadVariableOp:0', [8, 1, 3, 3]),
    g.weight('model/depthwise_conv2d/BiasAdd/ReadVariableOp:0', [8], { scale: 0.1 })],
    { dilations: [1, 1], group: 8, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
  h = hardSwish('model/activation_1/HardSwish', h);
  h = g.node('GlobalAveragePool', 'model/global_average_pooling2d/Mean', [h]);
  h = g.node('Flatten', 'model/global_average_pooling2d/Mean_Squeeze__12', [h], { axis: 1 });
  h = g.node('MatMul', 'model/dense/MatMul', [h, g.weight('model/dense/MatMul/ReadVariableOp:0', [8, 4])]);
  h = g.node('Add', 'model/dense/BiasAdd', [h, g.weight('model/dense/BiasAdd/ReadVariableOp:0', [4], { scale: 0.1 })]);
  g.node('LogSoftmax', 'model/dense/LogSoftmax', [h], { axis: -1 }, ['dense']);
  g.output('dense', ['unk__6', 4]);
  return g.model({ opset, irVersion: opset >= 21 ? 10 : 7, producer: ['tf2onnx', '1.16.1 15c810'] });
}

/**
 * MobileNet-style block (torch, dynamic batch): Conv → Clip(0, 6) with min/max initializers → depthwise Conv →
 * Clip → 1×1 Conv + residual Add → GlobalAveragePool → Flatten → Gemm; 6 classes, opset 17.
 */
export function mobileNetBlock(): Uint8Array {
  const g = new Graph(4);
  const x = g.input('input', ['batch', 3, 16, 16]);
  const lo = g.weight('onnx::Clip_103', [], [0]);
  const hi = g.weight('onnx::Clip_104', [], [6]);
  const conv = (name: string, input: string, w: string, b: string, dims: number[], attrs: Record<string, AttrValue>) =>
    g.node('Conv', name, [input, g.weight(w, dims), g.weight(b, [dims[0]!], { scale: 0.1 })], attrs);
  const stem = conv('/features/features.0/features.0.0/Conv', x, 'onnx::Conv_101', 'onnx::Conv_102', [8, 3, 3, 3],
    { group: 1, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  const a = g.node('Clip', '/features/features.0/features.0.2/Clip', [stem, lo, hi]);
  let h = conv('/features/features.1/conv/conv.0/Conv', a, 'onnx::Conv_105', 'onnx::Conv_106', [8, 1, 3, 3],
    { group: 8, kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
  h = g.node('Clip', '/features/features.1/conv/conv.2/Clip', [h, lo, hi]);
  h = conv('/features/features.1/conv/conv.3/Conv', h, 'onnx::Conv_108', 'onnx::Conv_109', [8, 8, 1, 1],
    { group: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] });
  h = g.node('Add', '/features/features.1/Add', [a, h]);
  h = g.node('GlobalAveragePool', '/GlobalAveragePool', [h]);
  h = g.node('Flatten', '/Flatten', [h], { axis: 1 });
  g.node('Gemm', '/classifier/classifier.1/Gemm', [h, g.weight('classifier.1.weight', [6, 8]), g.weight('classifier.1.bias', [6])],
    { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, ['output']);
  g.output('output', ['batch', 6]);
  return g.model({ opset: 17, irVersion: 8, producer: TORCH });
}

/** A graph with no float initializer at all: input → Relu → output. */
export function noWeights(): Uint8Array {
  const g = new Graph();
  g.input('input', ['batch', 4]);
  g.node('Relu', '/Relu', ['input'], {}, ['output']);
  g.output('output', ['batch', 4]);
  return g.model({ opset: 17, irVersion: 8, producer: TORCH });
}

/** Decodes, edits and re-encodes a model (for variants of the fixtures). */
export function edit(bytes: Uint8Array, change: (m: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  change(m);
  return new Uint8Array(onnx.ModelProto.encode(m).finish());
}
