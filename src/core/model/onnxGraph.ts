// Ops implementation #2: emits a zoo model as an ONNX inference model (opset 21): input "x" float32
// [B, C, H, W] (B symbolic), output "logits" float32 [B, classes], the parameters initializers named as in the
// layout. The training graph (parameters as inputs, loss appended) is made from it by src/core/model/onnx,
// the same code that imports a user's model.

import onnxProto from 'onnx-proto';
import type { ConvOptions, ModelDef, Ops } from './ops.ts';
import { GN_EPS } from './ops.ts';
import * as S from './shapes.ts';
import { float32Tensor } from './onnx/proto.ts';
import type { Activation, InitSpec, ParamLayout } from './types.ts';

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;
type IAttribute = onnxProto.onnx.IAttributeProto;

export const OPSET = 21;
/** IR version 10 (ONNX 1.16) is the first that admits opset 21. */
export const IR_VERSION = 10;
const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

/** A value in the graph: its name and per-example shape (batch excluded). */
export interface OnnxValue {
  name: string;
  shape: readonly number[];
}

type AttrValue = number | string | number[] | { float: number };

function attr(name: string, v: AttrValue): IAttribute {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if (typeof v === 'object') return { name, type: AT.FLOAT, f: v.float };
  return { name, type: AT.INT, i: v };
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): IValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export class OnnxGraphBuilder implements Ops<OnnxValue, OnnxValue> {
  readonly nodes: INode[] = [];
  readonly inputs: IValueInfo[] = [];
  readonly initializers: ITensor[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  private readonly names = new Set<string>();

  constructor(readonly batchDim = 'B') {}

  /** Declares a graph input with the symbolic batch dimension in front. */
  batchedInput(name: string, elemType: number, shape: readonly number[]): OnnxValue {
    this.inputs.push(valueInfo(name, elemType, [this.batchDim, ...shape]));
    this.names.add(name);
    return { name, shape };
  }

  private fresh(op: string): string {
    let name: string;
    do name = `${op.toLowerCase()}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  /** Appends a node with a single output and returns the output's name. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(op);
    this.nodes.push({
      opType: op,
      name: `${op}_${this.nodes.length}`,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    });
    return out;
  }

  private constFloat(values: number[]): string {
    return this.constant(DT.FLOAT, values, () => new Uint8Array(new Float32Array(values).buffer));
  }
  private constInt64(values: number[]): string {
    return this.constant(DT.INT64, values, () => new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
  }
  private constant(dataType: number, values: number[], raw: () => Uint8Array): string {
    const key = `${dataType}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push({ name, dataType, dims: [values.length], rawData: raw() });
      this.constCache.set(key, name);
    }
    return name;
  }

  // ---- Ops ----

  shape(x: OnnxValue): readonly number[] {
    return x.shape;
  }
  param(name: string, shape: readonly number[], _init: InitSpec): OnnxValue {
    if (this.names.has(name)) throw new Error(`duplicate graph name "${name}"`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, DT.FLOAT, [...shape]));
    return { name, shape };
  }
  conv2d(x: OnnxValue, w: OnnxValue, b: OnnxValue | null, opts: ConvOptions): OnnxValue {
    const shape = S.conv2dShape(x.shape, w.shape, b?.shape ?? null, opts);
    const { stride, pad } = opts;
    const name = this.node('Conv', b ? [x.name, w.name, b.name] : [x.name, w.name], {
      kernel_shape: [w.shape[2]!, w.shape[3]!],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      dilations: [1, 1],
      group: 1,
    });
    return { name, shape };
  }
  linear(x: OnnxValue, w: OnnxValue, b: OnnxValue | null): OnnxValue {
    const shape = S.linearShape(x.shape, w.shape, b?.shape ?? null);
    const name = this.node('Gemm', b ? [x.name, w.name, b.name] : [x.name, w.name], { transB: 1 });
    return { name, shape };
  }
  groupNorm(x: OnnxValue, groups: number): OnnxValue {
    const shape = S.groupNormShape(x.shape, groups);
    // [B, C, …] → [B, G, C/G·…] → InstanceNormalization (normalises each (b, g) row) → [B, C, …].
    const grouped = this.node('Reshape', [x.name, this.constInt64([0, groups, -1])]);
    const ones = this.constFloat(new Array<number>(groups).fill(1));
    const zeros = this.constFloat(new Array<number>(groups).fill(0));
    const normed = this.node('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: GN_EPS } });
    const name = this.node('Reshape', [normed, this.constInt64([0, ...shape])]);
    return { name, shape };
  }
  act(x: OnnxValue, kind: Activation): OnnxValue {
    const op = { hardswish: 'HardSwish', relu: 'Relu', selu: 'Selu', gelu: 'Gelu' }[kind];
    if (!op) throw new Error(`unknown activation ${JSON.stringify(kind)}`);
    // ONNX Selu's default alpha/gamma and Gelu's default approximate='none' match PyTorch's.
    return { name: this.node(op, [x.name]), shape: x.shape };
  }
  maxPool(x: OnnxValue, k: number, stride: number): OnnxValue {
    const shape = S.maxPoolShape(x.shape, k, stride);
    const name = this.node('MaxPool', [x.name], { kernel_shape: [k, k], strides: [stride, stride] });
    return { name, shape };
  }
  globalAvgPool(x: OnnxValue): OnnxValue {
    const shape = S.globalAvgPoolShape(x.shape);
    return { name: this.node('GlobalAveragePool', [x.name]), shape };
  }
  flatten(x: OnnxValue): OnnxValue {
    const shape = S.flattenShape(x.shape);
    if (x.shape.length === 1) return x;
    return { name: this.node('Flatten', [x.name], { axis: 1 }), shape };
  }
  add(a: OnnxValue, b: OnnxValue): OnnxValue {
    const shape = S.addShape(a.shape, b.shape);
    return { name: this.node('Add', [a.name, b.name]), shape };
  }
}

export interface OnnxModelOptions {
  /** Model doc string (e.g. the config as JSON). */
  docString?: string;
}

/**
 * The zoo model `def` as a plain inference model for per-example input shape `inputShape` ([C, H, W]): input
 * "x" float32 [B, C, H, W], output "logits" float32 [B, classes], every parameter an initializer holding its
 * slice of `weights` (layout order). The training graph is made from it exactly as from an imported model.
 */
export function emitInferenceOnnx(
  def: ModelDef,
  inputShape: readonly number[],
  classes: number,
  layout: ParamLayout,
  weights: Float32Array,
  options: OnnxModelOptions = {},
): Uint8Array {
  if (weights.length !== layout.size) throw new Error(`weights have ${weights.length} values, the layout ${layout.size}`);
  const g = new OnnxGraphBuilder();
  const x = g.batchedInput('x', DT.FLOAT, inputShape);
  const out = def(g, x);
  if (!S.sameShape(out.shape, [classes])) {
    throw new Error(`model output has per-example shape [${out.shape}], expected [${classes}]`);
  }
  const last = g.nodes[g.nodes.length - 1];
  if (last?.output?.[0] === out.name) last.output = ['logits'];
  else g.node('Identity', [out.name], {}, 'logits');
  // The parameters were declared as graph inputs; here they are the model's own initializers.
  const params = new Set(layout.params.map((p) => p.name));
  const parameters = layout.params.map((p) => float32Tensor(p.name, p.shape, weights.subarray(p.offset, p.offset + p.size)));
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'baffle',
    producerVersion: '0.1.0',
    docString: options.docString ?? '',
    graph: {
      name: 'baffle',
      node: g.nodes,
      input: g.inputs.filter((i) => !params.has(i.name ?? '')),
      initializer: [...parameters, ...g.initializers],
      output: [valueInfo('logits', DT.FLOAT, [g.batchDim, classes])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
