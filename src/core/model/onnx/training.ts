// The training graph of an imported classifier (contract: ../artifact.ts): the selected initializers become
// float32 graph inputs, the input's batch dimension becomes symbolic, and SoftmaxCrossEntropyLoss of the
// logits and a new int64 labels input gives the loss. Everything else of the user's graph stays as it is
// (nodes, names, frozen initializers), so that export can give the user back their own model.

import { ModelError } from '../../errors.ts';
import type { ModelArtifact, ModelSource, OutputSpec, ParamEntry, Preprocess } from '../artifact.ts';
import { analyzeParams } from './params.ts';
import {
  attrInt, dataInputs, type Dim, DT, elementCount, formatDims, freshName, type GraphProto, makeValueInfo,
  type ModelProto, nodeLabel, onnx, readFloat32, tensorDims, tensorNames, valueDims, valueElemType,
  type ValueInfoProto,
} from './proto.ts';

/** The tensor trained on as logits, and the graph output it comes from. */
export interface LogitsChoice {
  /** The graph output export restores as the model's score (the first float output). */
  output: ValueInfoProto;
  /** The logits tensor: the output itself, or the input of a final Softmax/LogSoftmax. */
  logits: string;
  /** The final op skipped to get at the logits, if any. */
  skipped: 'Softmax' | 'LogSoftmax' | null;
  /** Declared dims of the output (null when not declared). */
  dims: Dim[] | null;
  notes: string[];
}

const NOT_BATCH_BY_CLASSES = 'an output that is not [batch, classes]';

/** Finds the logits (see LogitsChoice); throws a ModelError when the model's output is not class scores. */
export function findLogits(graph: GraphProto, file: string): LogitsChoice {
  const outputs = graph.output ?? [];
  const notes: string[] = [];
  if (outputs.length === 0) throw new ModelError(`${file} has no graph output`, 'Export the model with its class scores as output.');
  const floatOutputs = outputs.filter((o) => valueElemType(o) === DT.FLOAT || valueElemType(o) === 0);
  const output = floatOutputs[0];
  if (!output) {
    throw new ModelError(
      `${file}: no float32 graph output (${outputs.map((o) => `'${o.name}'`).join(', ')}); baffle trains on class scores`,
      'Export the model without a final ArgMax or other non-float op, with the class scores as output.',
    );
  }
  if (outputs.length > 1) {
    notes.push(`${file} has ${outputs.length} outputs; training on the first float output '${output.name}' (export keeps them all)`);
  }
  const name = output.name ?? '';
  const dims = valueDims(output);
  if (dims !== null && dims.length !== 2) {
    throw new ModelError(
      `${file}: the output '${name}' is ${formatDims(dims)}, ${NOT_BATCH_BY_CLASSES}`,
      'baffle imports classifiers whose output is the class scores of each example, [batch, classes]: export the model with that output.',
    );
  }
  const index = (graph.node ?? []).findIndex((n) => (n.output ?? []).includes(name));
  const producer = index >= 0 ? graph.node![index]! : null;
  if (!producer) {
    throw new ModelError(`${file}: the output '${name}' is not computed by any node`, 'Export the model with its class scores as output.');
  }
  if (producer.opType === 'Softmax' || producer.opType === 'LogSoftmax') {
    const axis = attrInt(producer, 'axis', -1);
    // Without a declared rank, axis 1 is the last one exactly when the output is [batch, classes] (the probe checks).
    const last = axis === -1 || axis === (dims?.length ?? 2) - 1;
    if (!last) {
      throw new ModelError(
        `${file}: the final ${nodeLabel(producer, index)} normalises axis ${axis}, not the class axis (the last)`,
        'baffle trains on the scores before a final Softmax over the classes: export the model with softmax over dim=-1, or without it.',
      );
    }
    const logits = producer.input?.[0];
    if (!logits) throw new ModelError(`${file}: the final ${nodeLabel(producer, index)} has no input`, 'Export the model again.');
    return { output, logits, skipped: producer.opType, dims, notes };
  }
  return { output, logits: name, skipped: null, dims, notes };
}

function isqrt(n: number): number | null {
  const s = Math.round(Math.sqrt(n));
  return s * s === n ? s : null;
}

/** The image an example is prepared as, from the input's per-example dims (or as given, checked against them). */
function imageShape(inputDims: number[], given: Preprocess['image'] | undefined, file: string, input: string): Preprocess['image'] {
  const size = elementCount(inputDims);
  const hint = 'Pass the image shape [C, H, W] explicitly (its elements must be those of one example).';
  if (given) {
    if (given.length !== 3 || !given.every((d) => Number.isInteger(d) && d >= 1) || elementCount(given) !== size) {
      throw new ModelError(`${file}: preprocess image [${given}] does not fit the input '${input}' of ${formatDims(inputDims)} per example`, hint);
    }
    return [given[0], given[1], given[2]];
  }
  if (inputDims.length === 3) {
    const [a, b, c] = inputDims as [number, number, number];
    // A channels-last input (tf2onnx's Keras models): with one channel the memory layout is that of [1, H, W].
    if ((c === 1 || c === 3) && a !== 1 && a !== 3) {
      if (c === 1) return [1, a, b];
      throw new ModelError(
        `${file}: the input '${input}' is ${formatDims(inputDims)} per example, channels last (NHWC); baffle feeds images channels first (NCHW)`,
        `Convert the model with channels-first input, e.g. python -m tf2onnx.convert ... --inputs-as-nchw ${input}; or, if it is not an image, ${hint.toLowerCase()}`,
      );
    }
    return [a, b, c];
  }
  if (inputDims.length === 2) return [1, inputDims[0]!, inputDims[1]!];
  if (inputDims.length === 1) {
    const f = inputDims[0]!;
    const grey = isqrt(f);
    if (grey !== null) return [1, grey, grey];
    const rgb = f % 3 === 0 ? isqrt(f / 3) : null;
    if (rgb !== null) return [3, rgb, rgb];
    throw new ModelError(`${file}: the input '${input}' takes ${f} features per example, not a square image of 1 or 3 channels`, hint);
  }
  throw new ModelError(`${file}: the input '${input}' is ${formatDims(inputDims)} per example; baffle cannot tell which image that is`, hint);
}

function perChannel(values: number[] | undefined, channels: number, fill: number, what: string, file: string): number[] {
  if (values === undefined) return new Array<number>(channels).fill(fill);
  if (values.length === 1) return new Array<number>(channels).fill(values[0]!);
  if (values.length !== channels || !values.every(Number.isFinite)) {
    throw new ModelError(`${file}: preprocess ${what} [${values}] must hold 1 or ${channels} finite numbers (one per channel)`, 'Fix the preprocess settings.');
  }
  if (what === 'std' && values.some((v) => v === 0)) throw new ModelError(`${file}: preprocess std [${values}] has a zero`, 'Fix the preprocess settings.');
  return [...values];
}

/** The example preprocessing: the image shape from the input dims, mean 0 and std 1 unless given. */
export function derivePreprocess(inputDims: number[], given: Partial<Preprocess> | undefined, file: string, input: string): Preprocess {
  const image = imageShape(inputDims, given?.image, file, input);
  return {
    image,
    mean: perChannel(given?.mean, image[0], 0, 'mean', file),
    std: perChannel(given?.std, image[0], 1, 'std', file),
  };
}

export interface TrainingGraphOptions {
  /** The file name, for messages. */
  file: string;
  source: ModelSource;
  preprocess?: Partial<Preprocess>;
}

/** An artifact but for what only running the graph tells (the probe): classes when undeclared, largestActivation. */
export type TrainingGraph = Omit<ModelArtifact, 'largestActivation' | 'classes'> & {
  /** Classes as the output declares them, or null (the probe finds them). */
  classes: number | null;
  /** Things the user should know (e.g. which of several outputs is trained); not part of the artifact. */
  notes: string[];
};

const BATCH = 'batch';

/** Builds the training graph of a model that readModel() accepted, training the initializers `trainable`. */
export function buildTrainingGraph(proto: ModelProto, trainable: readonly string[], options: TrainingGraphOptions): TrainingGraph {
  const { file } = options;
  const graph = proto.graph ?? {};
  const inputs = dataInputs(graph);
  if (inputs.length !== 1) throw new ModelError(`${file} has ${inputs.length} data inputs; baffle imports classifiers of one input`, 'Export the model with a single input.');
  const input = inputs[0]!;
  const inputName = input.name ?? '';

  // The input: the batch dimension becomes symbolic (its name kept if it has one), the others must be fixed.
  const declared = valueDims(input);
  const fixedShape = 'The input shape must be fixed but for the batch: export with a fixed example shape (torch: dynamic_axes only for the batch axis).';
  if (declared === null || declared.length < 2) {
    throw new ModelError(`${file}: the input '${inputName}' ${declared === null ? 'declares no shape' : `is ${formatDims(declared)}, without a per-example shape`}`, fixedShape);
  }
  const inputDims = declared.slice(1).map((d, i) => {
    if (typeof d !== 'number' || d < 1) {
      throw new ModelError(`${file}: dimension ${i + 1} of the input '${inputName}' ${formatDims(declared)} is ${d === null ? 'unknown' : `symbolic ('${d}')`}`, fixedShape);
    }
    return d;
  });
  const batch = typeof declared[0] === 'string' ? declared[0] : BATCH;
  const fixedBatch = typeof declared[0] === 'number' ? declared[0] : null;
  const preprocess = derivePreprocess(inputDims, options.preprocess, file, inputName);

  const choice = findLogits(graph, file);
  let classes: number | null = null;
  if (choice.dims !== null) {
    const c = choice.dims[1];
    if (typeof c === 'number') {
      if (c < 2) {
        throw new ModelError(`${file}: the output '${choice.output.name}' has ${c} score(s) per example; baffle needs one score per class (at least 2)`,
          'A binary classifier with one sigmoid output: export it with two class scores (e.g. a Linear(…, 2)).');
      }
      classes = c;
    }
  }

  // Trainable initializers in file order, consecutive in the flat vector.
  const wanted = new Set(trainable);
  const inits = graph.initializer ?? [];
  for (const name of wanted) {
    const t = inits.find((i) => i.name === name);
    if (!t || t.dataType !== DT.FLOAT) {
      throw new ModelError(`${file}: '${name}' is not a float32 initializer of the model, so it cannot be trained`, 'Train candidate weights only (`baffle inspect` lists them).');
    }
  }
  const trained = inits.filter((t) => wanted.has(t.name ?? ''));
  const layout: ParamEntry[] = [];
  let offset = 0;
  for (const t of trained) {
    const shape = tensorDims(t);
    const size = elementCount(shape);
    layout.push({ name: t.name ?? '', shape, offset, size });
    offset += size;
  }
  const initial = new Float32Array(offset);
  for (const [i, t] of trained.entries()) {
    try {
      initial.set(readFloat32(t, layout[i]!.size), layout[i]!.offset);
    } catch (e) {
      throw new ModelError(`${file}: ${(e as Error).message}`, 'The file is damaged: export the model again.');
    }
  }
  const frozen = analyzeParams(graph).candidates.filter((t) => !wanted.has(t.name)).reduce((n, t) => n + t.size, 0);

  const taken = tensorNames(graph);
  const labels = freshName('labels', taken);
  const loss = freshName('loss', taken);
  const nodeNames = new Set((graph.node ?? []).map((n) => n.name ?? ''));
  const lossNode = {
    opType: 'SoftmaxCrossEntropyLoss',
    name: freshName('baffle_loss', nodeNames),
    input: [choice.logits, labels],
    output: [loss],
    attribute: [{ name: 'reduction', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('mean') }],
  };

  const trainingGraph = onnx.GraphProto.create({
    ...graph,
    node: [...(graph.node ?? []), lossNode],
    input: [
      makeValueInfo(inputName, DT.FLOAT, [batch, ...inputDims]),
      makeValueInfo(labels, DT.INT64, [batch]),
      ...layout.map((p) => makeValueInfo(p.name, DT.FLOAT, p.shape)),
    ],
    output: [makeValueInfo(loss, DT.FLOAT, []), makeValueInfo(choice.logits, DT.FLOAT, [batch, classes])],
    initializer: inits.filter((t) => !wanted.has(t.name ?? '')),
    // Inferred shapes recorded by the exporter may carry the old fixed batch; onnxruntime infers them again.
    valueInfo: [],
  });
  const model = onnx.ModelProto.create({ ...proto, graph: trainingGraph });
  // A copy: protobufjs may hand back a view of a shared pool buffer.
  const bytes = new Uint8Array(onnx.ModelProto.encode(model).finish());

  const exportOutputs: OutputSpec[] = (graph.output ?? []).map((o) => {
    const dims = valueDims(o);
    const isChoice = o === choice.output;
    if (dims === null && !isChoice) choice.notes.push(`the output '${o.name}' declares no shape; the exported model declares it a scalar`);
    const spec = (dims ?? (isChoice ? [batch, classes] : [])).map((d, i): number | string => {
      // The batch becomes symbolic in the outputs that carry it (the first dim of the scores; of others when it
      // equals the input's old fixed batch).
      if (i === 0 && (isChoice || (fixedBatch !== null && d === fixedBatch))) return batch;
      return d ?? `${o.name}_dim${i}`;
    });
    return { name: o.name ?? '', elemType: valueElemType(o) || DT.FLOAT, dims: spec };
  });

  return {
    format: 'baffle-model/1',
    onnx: bytes,
    io: { input: inputName, labels, loss, logits: choice.logits },
    layout,
    params: offset,
    frozen,
    inputDims,
    preprocess,
    classes,
    initial,
    exportOutputs,
    source: options.source,
    notes: choice.notes,
  };
}
