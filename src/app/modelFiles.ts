// Models leaving baffle: `baffle export` (a run's evaluated weights into its model's own ONNX graph) and
// `baffle eval` (accuracy and loss of any ONNX classifier on a data set, in a plain onnxruntime session — what
// any other runtime would see).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { isServerKey, resolveConfig, type RunConfig } from '../core/config/index.ts';
import { DATASET_IMAGES, isDatasetName } from '../core/data/names.ts';
import { keepClasses, normalizeSplit } from '../core/data/preprocess.ts';
import type { Split } from '../core/data/types.ts';
import { ModelError, UserError } from '../core/errors.ts';
import { evaluationSplit } from '../core/fl/setup.ts';
import { crossEntropy } from '../core/engine/metrics.ts';
import { exportModel } from '../core/model/onnx/export.ts';
import { dataInputs, valueDims } from '../core/model/onnx/proto.ts';
import { readModel } from '../core/model/onnx/read.ts';
import { derivePreprocess, findLogits } from '../core/model/onnx/training.ts';
import { hasCheckpoint, loadCheckpoint } from '../node/checkpoint.ts';
import { loadConfigFile } from '../node/config.ts';
import { checkDataset, loadDataset } from '../node/data/index.ts';
import { readUserFile, writeAtomic } from '../node/files.ts';
import { loadRunModel } from '../node/model/load.ts';
import { resumableRun } from './runDir.ts';

/**
 * Writes the ONNX model of the run in `dir` to `out`: the evaluated weights (the EMA when on) of its checkpoint
 * (a stopped run) or of its weights.bin (a finished one) baked into the model's graph. Returns the step.
 */
export async function exportRun(dir: string, out: string): Promise<{ step: number | null; from: string }> {
  const configPath = resumableRun(dir, 'run', 'export:');
  const saved = loadConfigFile(configPath);
  // A served run's config.json holds the server keys beside the run keys.
  const config = resolveConfig([Object.fromEntries(Object.entries(saved).filter(([k]) => !isServerKey(k)))], [configPath]);
  const { artifact } = await loadRunModel(config);
  let weights: Float32Array;
  let step: number | null = null;
  let from: string;
  const ckDir = join(dir, 'checkpoint');
  if (hasCheckpoint(ckDir)) {
    const ck = loadCheckpoint(ckDir);
    const shadow = ck.ema?.shadow;
    weights = config.ema && shadow instanceof Float32Array ? shadow : ck.weights;
    step = ck.progress.step;
    from = `the checkpoint after step ${step}`;
  } else if (existsSync(join(dir, 'weights.bin'))) {
    const bin = readFileSync(join(dir, 'weights.bin'));
    const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
    weights = new Float32Array(bin.byteLength / 4);
    for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(i * 4, true);
    from = 'weights.bin';
  } else {
    throw new UserError(`export: ${dir} has neither a checkpoint nor weights.bin (the run has not completed a step)`);
  }
  if (weights.length !== artifact.params) {
    throw new UserError(`export: ${from} in ${dir} holds ${weights.length} weights, the run's model has ${artifact.params} trainable parameters`);
  }
  writeAtomic(out, exportModel(artifact, weights));
  return { step, from };
}

export interface EvalOptions {
  dataset: RunConfig['dataset'];
  dataDir: string | null;
  inputMean: number[];
  inputStd: number[];
  testSubset: number | null;
  classSubset: number[] | null;
}

export interface EvalResult {
  accuracy: number;
  loss: number;
  count: number;
  /** What the model's output was taken as. */
  output: { name: string; kind: 'logits' | 'probabilities' | 'log-probabilities' };
}

/** Accuracy and mean cross-entropy of the ONNX classifier in `file` on the test split of a data set. */
export async function evaluateOnnx(file: string, opts: EvalOptions): Promise<EvalResult> {
  if (!isDatasetName(opts.dataset)) throw new UserError(`eval: unknown dataset '${opts.dataset}'`);
  const bytes = readUserFile(file, 'eval: model file');
  const proto = readModel(bytes, file);
  const graph = proto.graph!;
  const input = dataInputs(graph)[0]!;
  const dims = valueDims(input) ?? [];
  const inputDims = dims.slice(1).map((d) => (typeof d === 'number' ? d : NaN));
  if (inputDims.some((d) => !(d >= 1))) throw new ModelError(`eval: ${file}: the input '${input.name}' has no fixed per-example shape`);
  const pre = derivePreprocess(inputDims, { mean: opts.inputMean, std: opts.inputStd }, file, input.name ?? '');
  const choice = findLogits(graph, file);
  const kind = choice.skipped === 'Softmax' ? 'probabilities' : choice.skipped === 'LogSoftmax' ? 'log-probabilities' : 'logits';
  // What can be told from the file is checked before the data loads: channels, and the class count when declared.
  const info = DATASET_IMAGES[opts.dataset];
  const channels = pre.image[0];
  if (channels !== info.channels) {
    throw new ModelError(`eval: ${file} takes input [${inputDims}]: ${channels} channel${channels > 1 ? 's' : ''}, but ${opts.dataset} images have ${info.channels}`);
  }
  const declared = valueDims(choice.output)?.[1];
  if (typeof declared === 'number' && declared < info.classes) {
    throw new ModelError(`eval: ${file} gives ${declared} scores per example, ${opts.dataset} has ${info.classes} classes`);
  }
  checkDataset(opts.dataset, opts.dataDir ? { dataDir: opts.dataDir } : {});
  const data = loadDataset(opts.dataset, { ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), side: pre.image[1] });
  const test: Split = evaluationSplit(opts.classSubset ? keepClasses(data.test, opts.classSubset) : data.test, opts.testSubset);
  normalizeSplit(test, pre);
  // A model exported with a fixed batch dimension takes batches of exactly that size.
  const fixed = typeof dims[0] === 'number' && dims[0] > 0 ? dims[0] : null;
  const batch = fixed ?? 250;
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const size = inputDims.reduce((p, d) => p * d, 1);
  let lossSum = 0;
  let correct = 0;
  let classes = 0;
  try {
    for (let s = 0; s < test.count; s += batch) {
      const n = Math.min(batch, test.count - s);
      const x = new Float32Array((fixed ?? n) * size);
      x.set(test.x.subarray(s * size, (s + n) * size));
      const outputs = await session.run({ [input.name!]: new ort.Tensor('float32', x, [fixed ?? n, ...inputDims]) }, [choice.output.name!]);
      const out = outputs[choice.output.name!]!;
      classes = Number(out.dims[1]);
      let scores = (out.data as Float32Array).subarray(0, n * classes);
      if (kind !== 'logits') scores = scores.map((v) => (kind === 'probabilities' ? Math.log(Math.max(v, 1e-45)) : v));
      const part = crossEntropy(scores, test.y.subarray(s, s + n), n, classes);
      lossSum += part.lossSum;
      correct += part.correct;
    }
  } finally {
    await session.release();
  }
  if (classes < data.classes) throw new ModelError(`eval: ${file} gives ${classes} scores per example, ${opts.dataset} has ${data.classes} classes`);
  return { accuracy: correct / test.count, loss: lossSum / test.count, count: test.count, output: { name: choice.output.name ?? '', kind } };
}
