// Runs an imported model's training graph once in onnxruntime, at batch 2, to learn what only running it
// tells: that it runs at all with a batch other than the exporter's, the number of classes, and the largest
// activation per example (the engine's batch slicing). Every float activation is made a graph output for it.

import * as ort from 'onnxruntime-node';
import { ModelError } from '../../core/errors.ts';
import type { ModelArtifact } from '../../core/model/artifact.ts';
import { floatActivations } from '../../core/model/onnx/activations.ts';
import { makeValueInfo, onnx, DT } from '../../core/model/onnx/proto.ts';

export interface ProbeResult {
  classes: number;
  /** Elements of the largest float tensor of a pass (the input included), per example. */
  largestActivation: number;
}

const PROBE_BATCH = 2;

function dynamicBatchHint(input: string): string {
  return (
    'The export probably fixed the batch size: export with a dynamic batch axis, e.g. torch.onnx.export(..., ' +
    `dynamic_axes={'${input}': {0: 'batch'}, <output name>: {0: 'batch'}}) or torch.onnx.export(..., dynamo=True); ` +
    'with tf2onnx, keep the batch dimension of the input signature None.'
  );
}

/** Deterministic inputs in [0, 1) (an LCG: the same probe on every machine). */
function probeInput(size: number): Float32Array {
  const x = new Float32Array(size);
  let s = 0x2545f491;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s >>> 8) / 16777216;
  }
  return x;
}

export async function probeModel(
  graph: Pick<ModelArtifact, 'onnx' | 'io' | 'inputDims' | 'layout' | 'initial'>,
  file: string,
): Promise<ProbeResult> {
  const model = onnx.ModelProto.decode(graph.onnx);
  const g = model.graph!;
  const present = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const activations = floatActivations(g).filter((name) => !present.has(name));
  g.output = [...(g.output ?? []), ...activations.map((name) => makeValueInfo(name, DT.FLOAT, null))];
  const bytes = onnx.ModelProto.encode(model).finish();

  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Failures come back as ModelErrors with onnxruntime's message; its own log would print them twice.
      logSeverityLevel: 4,
    });
  } catch (e) {
    throw new ModelError(`${file}: onnxruntime cannot load the training graph: ${(e as Error).message}`,
      'The model file may be invalid: check it with onnx.checker.check_model, or export it again.');
  }
  try {
    const perExample = graph.inputDims.reduce((p, d) => p * d, 1);
    const feeds: Record<string, ort.Tensor> = {
      [graph.io.input]: new ort.Tensor('float32', probeInput(PROBE_BATCH * perExample), [PROBE_BATCH, ...graph.inputDims]),
      [graph.io.labels]: new ort.Tensor('int64', new BigInt64Array(PROBE_BATCH), [PROBE_BATCH]),
    };
    for (const p of graph.layout) {
      feeds[p.name] = new ort.Tensor('float32', graph.initial.subarray(p.offset, p.offset + p.size), p.shape);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      throw new ModelError(`${file}: the model does not run on a batch of ${PROBE_BATCH}: ${(e as Error).message}`, dynamicBatchHint(graph.io.input));
    }
    const logits = results[graph.io.logits]!;
    const dims = logits.dims;
    const classes = dims[1] ?? 0;
    if (dims.length !== 2 || dims[0] !== PROBE_BATCH || classes < 2) {
      throw new ModelError(
        `${file}: at batch ${PROBE_BATCH} the logits '${graph.io.logits}' are [${dims.join(', ')}], not [${PROBE_BATCH}, classes] with classes ≥ 2`,
        dims[0] === 1 || dims.length !== 2 ? dynamicBatchHint(graph.io.input) : 'baffle imports classifiers whose output is the class scores, [batch, classes ≥ 2].',
      );
    }
    let largest = perExample;
    for (const name of activations) {
      const t = results[name];
      if (t) largest = Math.max(largest, Math.ceil(t.dims.reduce((p, d) => p * d, 1) / PROBE_BATCH));
    }
    return { classes, largestActivation: largest };
  } finally {
    await session.release();
  }
}
