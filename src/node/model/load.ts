// The model a run trains, as an artifact: a zoo architecture or an imported ONNX file, starting from its own
// initialisation or from `init` (an earlier run, or an ONNX file), with the `trainable` subset selected; and
// the run's data prepared as that model takes it. Everything here is checked before any data loads.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RunConfig } from '../../core/config/index.ts';
import { isOnnxPath } from '../../core/config/index.ts';
import { DATASET_IMAGES } from '../../core/data/names.ts';
import { keepClasses, normalizeSplit } from '../../core/data/preprocess.ts';
import type { Dataset } from '../../core/data/types.ts';
import { ModelError, UserError } from '../../core/errors.ts';
import type { ModelArtifact } from '../../core/model/artifact.ts';
import { buildModel } from '../../core/model/index.ts';
import { decodeModel } from '../../core/model/onnx/read.ts';
import { elementCount, float32Tensor, readFloat32, tensorDims, onnx } from '../../core/model/onnx/proto.ts';
import type { BuiltModel, ModelConfig } from '../../core/model/types.ts';
import { zooArtifact } from '../../core/model/zooArtifact.ts';
import { checkDataset, loadDataset } from '../data/index.ts';
import { readUserFile } from '../files.ts';
import { importOnnx } from './importOnnx.ts';

export interface RunModel {
  artifact: ModelArtifact;
  /** The zoo model behind the artifact (the backprop baseline and `baffle memory` need it), or null. */
  zoo: BuiltModel | null;
  /** A zoo model's full starting weights (trainable and frozen), in the zoo layout. */
  zooWeights: Float32Array | null;
}

/** The zoo model configuration of a run whose model is a zoo architecture. */
export function zooConfigOf(config: RunConfig): ModelConfig {
  if (isOnnxPath(config.model)) throw new Error(`model '${config.model}' is not a zoo model`);
  const images = DATASET_IMAGES[config.dataset];
  return {
    model: config.model,
    activation: config.activation,
    norm: config.norm,
    hidden: config.hidden,
    depth: config.depth,
    width: config.width,
    inputShape: [images.channels, images.zoo, images.zoo],
    classes: images.classes,
  };
}

/** Named float tensors: what `init` provides. */
type Tensors = Map<string, { dims: number[]; values: Float32Array }>;

function readFileOrRefuse(path: string, what: string): Uint8Array {
  return readUserFile(path, what);
}

function onnxTensors(path: string): Tensors {
  const proto = decodeModel(readFileOrRefuse(path, 'init file'), path);
  const out: Tensors = new Map();
  for (const t of proto.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT || !t.name) continue;
    const dims = tensorDims(t);
    out.set(t.name, { dims, values: readFloat32(t, elementCount(dims)) });
  }
  return out;
}

/** A run directory's weights.json + weights.bin (format baffle-weights/1). */
function runWeights(jsonPath: string): Tensors {
  let meta: { format?: unknown; layout?: { name: string; shape: number[]; offset: number; size: number }[] };
  try {
    meta = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new UserError(`init: ${jsonPath} is not readable JSON (${(e as Error).message})`);
  }
  if (meta.format !== 'baffle-weights/1' || !Array.isArray(meta.layout)) throw new UserError(`init: ${jsonPath} is not a baffle-weights/1 file`);
  const bin = readFileOrRefuse(join(jsonPath, '..', 'weights.bin'), 'init weights');
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const out: Tensors = new Map();
  for (const p of meta.layout) {
    if ((p.offset + p.size) * 4 > bin.byteLength) throw new UserError(`init: weights.bin beside ${jsonPath} is shorter than its layout`);
    const values = new Float32Array(p.size);
    for (let i = 0; i < p.size; i++) values[i] = view.getFloat32((p.offset + i) * 4, true);
    out.set(p.name, { dims: p.shape, values });
  }
  return out;
}

/** The tensors `init` names: a run directory (its model.onnx, else weights.json), an ONNX file or a weights.json. */
export function readInit(path: string): Tensors {
  if (existsSync(path) && statSync(path).isDirectory()) {
    if (existsSync(join(path, 'model.onnx'))) return onnxTensors(join(path, 'model.onnx'));
    if (existsSync(join(path, 'weights.json'))) return runWeights(join(path, 'weights.json'));
    throw new UserError(`init: ${path} holds neither model.onnx nor weights.json (not a finished run directory)`, {
      hint: 'a run directory gets them when the run finishes; for a stopped run use `baffle export DIR` first',
    });
  }
  if (/\.onnx$/i.test(path)) return onnxTensors(path);
  if (/\.json$/i.test(path)) {
    readFileOrRefuse(path, 'init file');
    return runWeights(path);
  }
  readFileOrRefuse(path, 'init');
  throw new UserError(`init: '${path}' is neither a run directory, an .onnx file nor a weights.json`);
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Replaces the given parameters of a zoo weight vector by the init tensors of the same name and shape. */
function applyToZoo(model: BuiltModel, weights: Float32Array, init: Tensors, source: string): Set<string> {
  const used = new Set<string>();
  for (const p of model.layout.params) {
    const t = init.get(p.name);
    if (!t) continue;
    if (!sameDims(t.dims, p.shape)) {
      throw new UserError(`init ${source}: parameter '${p.name}' has shape [${t.dims}], the model's is [${p.shape}]`);
    }
    weights.set(t.values, p.offset);
    used.add(p.name);
  }
  if (used.size === 0) throw new UserError(`init ${source}: none of its tensors is a parameter of this model (${model.layout.params.slice(0, 3).map((p) => p.name).join(', ')}, …)`);
  return used;
}

/** Replaces the initializers of an ONNX model by the init tensors of the same name and shape. */
function applyToOnnx(bytes: Uint8Array, file: string, init: Tensors, source: string): { bytes: Uint8Array; used: Set<string> } {
  const proto = decodeModel(bytes, file);
  const used = new Set<string>();
  const inits = proto.graph?.initializer ?? [];
  for (let i = 0; i < inits.length; i++) {
    const t = inits[i]!;
    const v = t.name ? init.get(t.name) : undefined;
    if (!v || t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    if (!sameDims(v.dims, tensorDims(t))) {
      throw new UserError(`init ${source}: tensor '${t.name}' has shape [${v.dims}], in ${file} it is [${tensorDims(t)}]`);
    }
    inits[i] = onnx.TensorProto.create(float32Tensor(t.name!, v.dims, v.values));
    used.add(t.name!);
  }
  if (used.size === 0) throw new UserError(`init ${source}: none of its tensors is an initializer of ${file}`);
  return { bytes: onnx.ModelProto.encode(proto).finish(), used };
}

/** Every trainable parameter must come from `init` (a frozen one may keep the model's own value). */
function checkInitCovers(artifact: ModelArtifact, used: Set<string>, source: string): void {
  const missing = artifact.layout.filter((p) => !used.has(p.name)).map((p) => p.name);
  if (missing.length > 0) {
    throw new UserError(`init ${source} does not hold the trainable parameter${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
}

/** Checks that the run's data set can feed the model (channels, image size, classes); throws ModelError. */
export function checkDataFits(artifact: Pick<ModelArtifact, 'preprocess' | 'inputDims' | 'classes'>, config: Pick<RunConfig, 'dataset' | 'model'>): void {
  const info = DATASET_IMAGES[config.dataset];
  const [c, h, w] = artifact.preprocess.image;
  const what = `model ${config.model} takes input [${artifact.inputDims}]`;
  if (c !== info.channels) {
    throw new ModelError(`${what}: ${c} channel${c > 1 ? 's' : ''}, but ${config.dataset} images have ${info.channels}`);
  }
  if (h !== w || (!info.resizable && h !== info.stored)) {
    throw new ModelError(`${what}: ${h}×${w} images, which ${config.dataset} (${info.stored}×${info.stored}${info.resizable ? ', resized to squares' : ''}) cannot provide`);
  }
  if (artifact.classes < info.classes) {
    throw new ModelError(`${what} and gives ${artifact.classes} logits per example, fewer than the ${info.classes} classes of ${config.dataset}`);
  }
}

/** The run's model: everything about it checked (file, selectors, init, fit with the data set). */
export async function loadRunModel(config: RunConfig): Promise<RunModel> {
  const normalisation = { mean: config.inputMean, std: config.inputStd };
  const init = config.init === null ? null : readInit(config.init);
  let result: RunModel;
  if (isOnnxPath(config.model)) {
    let bytes = readFileOrRefuse(config.model, 'model file');
    let used: Set<string> | null = null;
    if (init) ({ bytes, used } = applyToOnnx(bytes, config.model, init, config.init!));
    const artifact = await importOnnx(bytes, config.model, config.trainable, normalisation);
    if (used) checkInitCovers(artifact, used, config.init!);
    result = { artifact, zoo: null, zooWeights: null };
  } else {
    const zoo = buildModel(zooConfigOf(config));
    const weights = zoo.initWeights(config.seed);
    const used = init ? applyToZoo(zoo, weights, init, config.init!) : null;
    const artifact = zooArtifact(zoo, { weights, trainable: config.trainable, ...normalisation });
    if (used) checkInitCovers(artifact, used, config.init!);
    result = { artifact, zoo, zooWeights: weights };
  }
  checkDataFits(result.artifact, config);
  const channels = result.artifact.preprocess.image[0];
  for (const [k, v] of [['inputMean', config.inputMean], ['inputStd', config.inputStd]] as const) {
    if (v.length !== 1 && v.length !== channels) throw new UserError(`${k} has ${v.length} values; the model's input has ${channels} channel${channels > 1 ? 's' : ''}`);
  }
  return result;
}

/** Checks that the run's data set is where loadRunData will read it (before any work; a DataError otherwise). */
export function checkRunData(config: Pick<RunConfig, 'dataset' | 'dataDir'>): void {
  checkDataset(config.dataset, config.dataDir === null ? {} : { dataDir: config.dataDir });
}

/** The run's data set as the model takes it: resized to its input, normalised as configured. */
export function loadRunData(config: Pick<RunConfig, 'dataset' | 'dataDir' | 'classSubset'>, artifact: Pick<ModelArtifact, 'preprocess'>): Dataset {
  const side = artifact.preprocess.image[1];
  const dataset = loadDataset(config.dataset, config.dataDir === null ? { side } : { dataDir: config.dataDir, side });
  if (config.classSubset) {
    const subset = config.classSubset;
    const beyond = subset.filter((c) => c >= dataset.classes);
    if (beyond.length > 0) throw new UserError(`classSubset: ${config.dataset} has classes 0..${dataset.classes - 1}, not ${beyond.join(', ')}`);
    dataset.train = keepClasses(dataset.train, subset);
    dataset.test = keepClasses(dataset.test, subset);
  }
  normalizeSplit(dataset.train, artifact.preprocess);
  normalizeSplit(dataset.test, artifact.preprocess);
  return dataset;
}

/** A short human description of the model for the console. */
export function modelLine(config: RunConfig, artifact: ModelArtifact): string {
  const name = artifact.source.kind === 'zoo' ? artifact.source.description : basename(artifact.source.file);
  const trained = artifact.params.toLocaleString('en-US');
  const frozen = artifact.frozen.toLocaleString('en-US');
  const from = config.init ? `, from ${config.init}` : '';
  return `model: ${name}: ${trained} trainable parameters (${artifact.layout.length} tensors), ${frozen} frozen${from}`;
}
