// The model as a value: everything a client needs to train a model with forward passes only, whoever made it
// (the zoo or the ONNX importer). A process that holds an artifact builds its engine from it and needs neither
// the model file nor the zoo: the server sends it to every client (`welcome`), the simulation to its workers.
//
// The training graph (`onnx`) is an ONNX model whose inputs are the example batch (`io.input`, batch dimension
// symbolic), the labels (`io.labels`, int64 [B]) and one float32 input per trainable parameter, named and shaped
// as in `layout`; frozen parameters are baked in as initializers. Its outputs are `io.loss` (mean softmax
// cross-entropy over the batch, float32 scalar) and `io.logits` (float32 [B, classes]).
// The trainable parameters form one flat float32 vector: `layout[i]` occupies [offset, offset + size).

/** Names of the training graph's interface tensors. */
export interface GraphIo {
  input: string;
  labels: string;
  loss: string;
  logits: string;
}

/** One trainable parameter in the flat weight vector (its name is its graph input's name). */
export interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** How a dataset's images become the model's input: resized to size, then (x − mean[c]) / std[c] per channel. */
export interface Preprocess {
  /** Image [channels, height, width] the examples are prepared as (values in [0, 1] before normalisation). */
  image: [number, number, number];
  mean: number[];
  std: number[];
}

/** An output of the original model, restored by export. */
export interface OutputSpec {
  name: string;
  /** ONNX TensorProto.DataType. */
  elemType: number;
  /** Dimensions: numbers, or names of symbolic dimensions. */
  dims: (number | string)[];
}

export type ModelSource =
  | { kind: 'zoo'; model: string; description: string }
  | { kind: 'onnx'; file: string; sha256: string; producer: string };

export interface ModelArtifact {
  format: 'baffle-model/1';
  /** The serialized training graph (see above). */
  onnx: Uint8Array;
  io: GraphIo;
  /** Trainable parameters in flat-vector order. */
  layout: ParamEntry[];
  /** Length of the flat trainable vector (sum of the layout's sizes). */
  params: number;
  /** Elements of the parameters baked into the graph (not trained). */
  frozen: number;
  /** Dimensions of one example as the graph's input takes it (batch excluded), e.g. [1, 28, 28] or [784]. */
  inputDims: number[];
  preprocess: Preprocess;
  classes: number;
  /** Elements of the largest tensor of a forward pass, per example (0 when unknown): the engine's batch slicing. */
  largestActivation: number;
  /** Initial values of the trainable vector. */
  initial: Float32Array;
  /** The original model's outputs, which export restores (the zoo's: its logits). */
  exportOutputs: OutputSpec[];
  source: ModelSource;
}

/** What a client is sent: the artifact without its initial weights (the `model` frames carry the weights). */
export type ClientModel = Omit<ModelArtifact, 'initial'>;

export function clientModel(a: ModelArtifact): ClientModel {
  const { initial: _initial, ...rest } = a;
  return rest;
}

/** Elements of one example (the product of inputDims). */
export function exampleSize(m: Pick<ModelArtifact, 'inputDims'>): number {
  return m.inputDims.reduce((p, d) => p * d, 1);
}

// ---------------------------------------------------------------------------------------------------
// Validation of a model that arrives from outside (the server's welcome, a file): field by field, never cast.

/** A field of a model description that is missing or malformed (`field` names it, e.g. 'layout[3].shape'). */
export class ModelFieldError extends Error {
  constructor(
    readonly field: string,
    expected: string,
  ) {
    super(`model.${field} must be ${expected}`);
    this.name = 'ModelFieldError';
  }
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

function field<T>(m: Record<string, unknown>, name: string, ok: (v: unknown) => v is T, expected: string): T {
  const v = m[name];
  if (!ok(v)) throw new ModelFieldError(name, expected);
  return v;
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024;
const isDims = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => isNat(d) && d >= 1);
const isNums = (v: unknown): v is number[] => Array.isArray(v) && v.length >= 1 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** Checks a client model description (as decoded from msgpack) and returns it typed; throws ModelFieldError. */
export function parseClientModel(v: unknown): ClientModel {
  if (!isRecord(v)) throw new ModelFieldError('(model)', 'a map');
  const format = field(v, 'format', (x): x is 'baffle-model/1' => x === 'baffle-model/1', "'baffle-model/1'");
  const onnx = field(v, 'onnx', (x): x is Uint8Array => x instanceof Uint8Array && x.byteLength > 0, 'bin (an ONNX model)');
  const ioRaw = field(v, 'io', isRecord, 'a map {input, labels, loss, logits}');
  const io: GraphIo = {
    input: field(ioRaw, 'input', isStr, 'a name'),
    labels: field(ioRaw, 'labels', isStr, 'a name'),
    loss: field(ioRaw, 'loss', isStr, 'a name'),
    logits: field(ioRaw, 'logits', isStr, 'a name'),
  };
  const layoutRaw = field(v, 'layout', Array.isArray, 'an array of {name, shape, offset, size}');
  let offset = 0;
  const layout: ParamEntry[] = layoutRaw.map((e, i) => {
    if (!isRecord(e)) throw new ModelFieldError(`layout[${i}]`, 'a map');
    const p: ParamEntry = {
      name: field(e, 'name', isStr, 'a name'),
      shape: field(e, 'shape', isDims, 'an array of positive integers'),
      offset: field(e, 'offset', isNat, 'a non-negative integer'),
      size: field(e, 'size', isNat, 'a non-negative integer'),
    };
    if (p.offset !== offset) throw new ModelFieldError(`layout[${i}].offset`, `${offset} (the parameters are consecutive)`);
    if (p.size !== p.shape.reduce((a, d) => a * d, 1)) throw new ModelFieldError(`layout[${i}].size`, 'the product of its shape');
    offset += p.size;
    return p;
  });
  const params = field(v, 'params', isNat, 'a non-negative integer');
  if (params !== offset) throw new ModelFieldError('params', `the sum of the layout's sizes (${offset})`);
  const pre = field(v, 'preprocess', isRecord, 'a map {image, mean, std}');
  const image = field(pre, 'image', (x): x is [number, number, number] => isDims(x) && x.length === 3, '[channels, height, width]');
  const preprocess: Preprocess = { image, mean: field(pre, 'mean', isNums, 'numbers'), std: field(pre, 'std', isNums, 'numbers') };
  const outputs = field(v, 'exportOutputs', Array.isArray, 'an array');
  const exportOutputs: OutputSpec[] = outputs.map((o, i) => {
    if (!isRecord(o)) throw new ModelFieldError(`exportOutputs[${i}]`, 'a map');
    return {
      name: field(o, 'name', isStr, 'a name'),
      elemType: field(o, 'elemType', isNat, 'an ONNX data type'),
      dims: field(o, 'dims', (x): x is (number | string)[] => Array.isArray(x) && x.every((d) => isNat(d) || typeof d === 'string'), 'dimensions'),
    };
  });
  const src = field(v, 'source', isRecord, 'a map');
  const source: ModelSource =
    src.kind === 'zoo'
      ? { kind: 'zoo', model: field(src, 'model', isStr, 'a name'), description: field(src, 'description', isStr, 'a text') }
      : src.kind === 'onnx'
        ? { kind: 'onnx', file: field(src, 'file', isStr, 'a name'), sha256: field(src, 'sha256', isStr, 'a hash'), producer: typeof src.producer === 'string' ? src.producer : '' }
        : (() => {
            throw new ModelFieldError('source.kind', "'zoo' or 'onnx'");
          })();
  return {
    format,
    onnx,
    io,
    layout,
    params,
    frozen: field(v, 'frozen', isNat, 'a non-negative integer'),
    inputDims: field(v, 'inputDims', (x): x is number[] => isDims(x) && x.length >= 1, 'an array of positive integers'),
    preprocess,
    classes: field(v, 'classes', (x): x is number => isNat(x) && x >= 2, 'an integer ≥ 2'),
    largestActivation: field(v, 'largestActivation', isNat, 'a non-negative integer'),
    exportOutputs,
    source,
  };
}
