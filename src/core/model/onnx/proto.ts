// Small helpers over onnx-proto's protobufjs messages, shared by the importer's modules.
// int64 fields decode as protobufjs Long objects (or numbers when built by hand): toInt() takes both.

import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.IModelProto;
/** A model as onnx.ModelProto.decode() returns it. */
export type DecodedModel = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DT = onnx.TensorProto.DataType;
export const AT = onnx.AttributeProto.AttributeType;

/** An int64 field as protobufjs hands it over. */
export type Int64 = number | { toNumber(): number } | null | undefined;

export function toInt(v: Int64, fallback = 0): number {
  if (v === null || v === undefined) return fallback;
  return typeof v === 'number' ? v : v.toNumber();
}

const DATA_TYPE_NAMES: Record<number, string> = {
  [DT.FLOAT]: 'float32',
  [DT.UINT8]: 'uint8',
  [DT.INT8]: 'int8',
  [DT.UINT16]: 'uint16',
  [DT.INT16]: 'int16',
  [DT.INT32]: 'int32',
  [DT.INT64]: 'int64',
  [DT.STRING]: 'string',
  [DT.BOOL]: 'bool',
  [DT.FLOAT16]: 'float16',
  [DT.DOUBLE]: 'float64',
  [DT.UINT32]: 'uint32',
  [DT.UINT64]: 'uint64',
  [DT.BFLOAT16]: 'bfloat16',
};

export function dataTypeName(t: number | null | undefined): string {
  if (!t) return 'undefined type';
  return DATA_TYPE_NAMES[t] ?? `data type ${t}`;
}

/** Float element types of any precision (float16, bfloat16 and the float8 types of newer ONNX versions included). */
export function isFloatType(t: number | null | undefined): boolean {
  return t === DT.FLOAT || t === DT.FLOAT16 || t === DT.DOUBLE || t === DT.BFLOAT16 || (t !== null && t !== undefined && t >= 17 && t <= 20);
}

export function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toInt(d as Int64));
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

/** A declared dimension: a size, the name of a symbolic dimension, or null when unknown. */
export type Dim = number | string | null;

/** Declared element type of a value, or 0 when it has no tensor type. */
export function valueElemType(v: ValueInfoProto): number {
  return v.type?.tensorType?.elemType ?? 0;
}

/** Declared dimensions of a value, or null when its shape is not declared. */
export function valueDims(v: ValueInfoProto): Dim[] | null {
  const shape = v.type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    return d.dimValue === null || d.dimValue === undefined ? null : toInt(d.dimValue as Int64);
  });
}

export function makeValueInfo(name: string, elemType: number, dims: readonly Dim[] | null): ValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType };
  if (dims !== null) {
    tensorType.shape = {
      dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { name, type: { tensorType } };
}

export function formatDims(dims: readonly Dim[] | null): string {
  if (dims === null) return '[?]';
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = getAttribute(node, name);
  return a ? toInt(a.i as Int64, fallback) : fallback;
}

/** "Conv node '/conv1/Conv' (#3)", naming an unnamed node by its position. */
export function nodeLabel(node: NodeProto, index: number): string {
  const op = isDefaultDomain(node.domain) ? node.opType : `${node.domain}:${node.opType}`;
  return node.name ? `${op} node '${node.name}' (#${index})` : `${op} node #${index}`;
}

/** Short form for tables: "Conv:/conv1/Conv" (or "Conv:#3" for an unnamed node). */
export function nodeRef(node: NodeProto, index: number): string {
  return `${node.opType}:${node.name || `#${index}`}`;
}

/** Names of the initializers. */
export function initializerNames(graph: GraphProto): Set<string> {
  return new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
}

/** Graph inputs that are fed at run time (old exporters also list the initializers as inputs). */
export function dataInputs(graph: GraphProto): ValueInfoProto[] {
  const inits = initializerNames(graph);
  return (graph.input ?? []).filter((i) => !inits.has(i.name ?? ''));
}

/** Every tensor name the graph mentions, so that new names can avoid them. */
export function tensorNames(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) names.add(v.name ?? '');
  for (const t of graph.initializer ?? []) names.add(t.name ?? '');
  for (const n of graph.node ?? []) {
    for (const s of [...(n.input ?? []), ...(n.output ?? [])]) names.add(s);
  }
  return names;
}

/** `base`, or `base_1`, `base_2`, … : the first not in `taken` (added to it). */
export function freshName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

/** Values of a float32 tensor: raw_data (little-endian) or float_data. */
export function readFloat32(t: TensorProto, size: number): Float32Array {
  const raw = t.rawData;
  if (raw && raw.byteLength > 0) {
    if (raw.byteLength !== size * 4) {
      throw new RangeError(`tensor '${t.name}' holds ${raw.byteLength} bytes, its ${size} float32 elements need ${size * 4}`);
    }
    // raw_data may sit at any byte offset of the file: read through a DataView, explicitly little-endian.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const data = t.floatData ?? [];
  if (data.length !== size) {
    throw new RangeError(`tensor '${t.name}' holds ${data.length} values, its dims need ${size}`);
  }
  return Float32Array.from(data);
}

export function float32Tensor(name: string, dims: readonly number[], values: Float32Array): TensorProto {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, true);
  return { name, dims: [...dims], dataType: DT.FLOAT, rawData: raw };
}

/** The version of the default-domain opset the model imports, or null. */
export function defaultOpset(model: ModelProto): number | null {
  const entry = (model.opsetImport ?? []).find((o) => isDefaultDomain(o.domain));
  return entry ? toInt(entry.version as Int64) : null;
}
