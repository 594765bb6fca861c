// Reading a user's ONNX file: decode it, then refuse what the importer cannot train, with a message that says
// what is wrong with which tensor or node and what to do about it.
//
// decodeModel() only fails on files that are not (complete) ONNX models; modelProblems() lists every other
// refusal without throwing (`baffle inspect` prints them); readModel() is both, throwing the first problem.

import { ModelError } from '../../errors.ts';
import {
  dataInputs, dataTypeName, type DecodedModel, defaultOpset, DT, isFloatType, type ModelProto, onnx, type TensorProto,
  toInt, valueElemType, type Int64,
} from './proto.ts';
import { unsupportedNodes } from './supported.ts';

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/** Magic numbers of files people mistake for ONNX models, and what to do instead. */
const NOT_ONNX: readonly { magic: number[] | string; what: string }[] = [
  { magic: [0x50, 0x4b, 0x03, 0x04], what: 'a ZIP archive (a PyTorch .pt/.pth checkpoint or a Keras .keras file?): convert it to ONNX first, e.g. torch.onnx.export(model, example, "model.onnx") or python -m tf2onnx.convert' },
  { magic: [0x89, 0x48, 0x44, 0x46], what: 'an HDF5 file (a Keras .h5 model?): convert it with python -m tf2onnx.convert --keras model.h5 --output model.onnx' },
  { magic: [0x80], what: 'a Python pickle (a PyTorch checkpoint in the legacy format?): load the model in Python and torch.onnx.export it' },
  { magic: [0x89, 0x50, 0x4e, 0x47], what: 'a PNG image' },
  { magic: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { magic: 'version https://git-lfs', what: 'a Git LFS pointer, not the file itself: run git lfs pull' },
  { magic: '<', what: 'an HTML or XML document (a failed download?)' },
  { magic: '{', what: 'a JSON document' },
];

function startsWith(bytes: Uint8Array, magic: number[] | string): boolean {
  const m = typeof magic === 'string' ? [...new TextEncoder().encode(magic)] : magic;
  return bytes.length >= m.length && m.every((b, i) => bytes[i] === b);
}

/** ModelProto's top-level field numbers and their wire types (0 varint, 2 length-delimited). */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2 };

/**
 * When the bytes are the start of a ModelProto cut short, the length the file would need; else null.
 * Exporters write ir_version (field 1) first, so a file that does not start with it is not called truncated.
 */
function truncatedLength(bytes: Uint8Array): number | null {
  if (bytes[0] !== 0x08) return null;
  let pos = 0;
  const varint = (): number | null => {
    let value = 0;
    for (let scale = 1; pos < bytes.length; scale *= 128) {
      const b = bytes[pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
    return null;
  };
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === null) return bytes.length + 1;
    const wire = MODEL_FIELDS[Math.floor(tag / 8)];
    if (wire === undefined || wire !== tag % 8) return null;
    const value = varint();
    if (value === null) return bytes.length + 1;
    if (wire === 2) {
      if (pos + value > bytes.length) return pos + value;
      pos += value;
    }
  }
  return null;
}

/** Decodes an ONNX model; throws a ModelError when the bytes are not a complete ONNX model. */
export function decodeModel(bytes: Uint8Array, file: string): DecodedModel {
  if (bytes.length === 0) {
    throw new ModelError(`${file} is empty (0 bytes), not an ONNX model`, 'Check the path, or export the model again.');
  }
  const known = NOT_ONNX.find((k) => startsWith(bytes, k.magic));
  const notOnnx = (why: string) =>
    new ModelError(`${file} is not an ONNX model (${why})`, known ? `The file looks like ${known.what}.` : 'Export the model to ONNX, e.g. with torch.onnx.export or tf2onnx.');
  let model: DecodedModel;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const needed = known ? null : truncatedLength(bytes);
    if (needed !== null) {
      throw new ModelError(
        `${file} is truncated: it ends after ${bytes.length} bytes, but its content runs to byte ${needed} at least`,
        'The download or copy was incomplete: copy the file again.',
      );
    }
    throw notOnnx(`it does not decode as an ONNX ModelProto: ${(e as Error).message}`);
  }
  if (!model.graph) throw notOnnx('it holds no graph');
  if ((model.opsetImport ?? []).length === 0 || toInt(model.irVersion as Int64) <= 0) {
    // A graph but no opsets: the file was cut right after its graph (exporters write the opsets last).
    throw new ModelError(`${file} declares no ${model.opsetImport?.length ? 'IR version' : 'opset'}: it is truncated or not an ONNX model`,
      'Copy the file again, or export the model again.');
  }
  return model;
}

function externalTensors(model: ModelProto): TensorProto[] {
  const graph = model.graph ?? {};
  const tensors: TensorProto[] = [...(graph.initializer ?? [])];
  for (const node of graph.node ?? []) for (const a of node.attribute ?? []) if (a.t) tensors.push(a.t);
  return tensors.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
}

/** Every reason to refuse the model (besides not decoding), in the order readModel() reports them. */
export function modelProblems(model: ModelProto, file: string): ModelError[] {
  const problems: ModelError[] = [];
  const graph = model.graph ?? {};

  const external = externalTensors(model);
  if (external.length > 0) {
    const location = external[0]!.externalData?.find((e) => e.key === 'location')?.value;
    problems.push(new ModelError(
      `${file} keeps ${external.length} tensor(s) in external data files (e.g. '${external[0]!.name}'` +
        `${location ? ` in '${location}'` : ''}); baffle reads one self-contained file`,
      "Re-export with all weights in one file, e.g. in Python: m = onnx.load(path); onnx.save(m, 'single.onnx', " +
        'save_as_external_data=False) (possible below 2 GB).',
    ));
  }

  const opset = defaultOpset(model);
  if (opset === null || opset < MIN_OPSET || opset > MAX_OPSET) {
    problems.push(new ModelError(
      `${file} ${opset === null ? 'imports no opset of the default ONNX domain' : `uses opset ${opset} of the default ONNX domain`}` +
        `; baffle imports opsets ${MIN_OPSET}–${MAX_OPSET}`,
      'Export again with e.g. torch.onnx.export(..., opset_version=17) or tf2onnx --opset 17, or convert the file ' +
        'with onnx.version_converter.convert_version(model, 17).',
    ));
  }

  for (const u of unsupportedNodes(graph, file)) problems.push(new ModelError(u.message, u.hint));

  const inits = graph.initializer ?? [];
  if (!inits.some((t) => t.dataType === DT.FLOAT)) {
    const floats = inits.filter((t) => isFloatType(t.dataType));
    const constants = (graph.node ?? []).filter((n) => n.opType === 'Constant').length;
    problems.push(new ModelError(
      `${file} has no float32 initializers, so nothing to train` +
        (floats.length ? ` (its weights are ${dataTypeName(floats[0]!.dataType)})` : constants ? ` (it has ${constants} Constant nodes: weights baked into the graph?)` : ''),
      floats.length
        ? 'Export the model in float32 (e.g. model.float() before torch.onnx.export).'
        : 'Export the model with its weights as initializers (torch.onnx.export does this by default).',
    ));
  }

  const inputs = dataInputs(graph);
  if (inputs.length !== 1) {
    problems.push(new ModelError(
      inputs.length === 0
        ? `${file} has no data input (every graph input is an initializer)`
        : `${file} has ${inputs.length} data inputs (${inputs.map((i) => `'${i.name}'`).join(', ')}); baffle imports classifiers of one input`,
      'Export the model with a single input tensor, the batch of examples.',
    ));
  } else {
    const type = valueElemType(inputs[0]!);
    if (type !== DT.FLOAT) {
      problems.push(new ModelError(
        `${file}: the input '${inputs[0]!.name}' is ${dataTypeName(type)}; baffle feeds float32 examples`,
        'Export the model with a float32 input (do any conversion of uint8 pixels outside the model).',
      ));
    }
  }
  return problems;
}

/** Decodes and checks an ONNX model (see modelProblems); throws the first problem as a ModelError. */
export function readModel(bytes: Uint8Array, file: string): DecodedModel {
  const model = decodeModel(bytes, file);
  const first = modelProblems(model, file)[0];
  if (first) throw first;
  return model;
}
