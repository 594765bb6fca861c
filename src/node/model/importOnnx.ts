// A user's ONNX classifier → a model artifact: read and check the file, pick the weights to train, build the
// training graph, and run it once (probe) for what only running it tells.

import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { ModelError } from '../../core/errors.ts';
import type { ModelArtifact, Preprocess } from '../../core/model/artifact.ts';
import { readModel } from '../../core/model/onnx/read.ts';
import { selectTrainable } from '../../core/model/onnx/select.ts';
import { buildTrainingGraph, findLogits } from '../../core/model/onnx/training.ts';
import { probeModel } from '../engine/probe.ts';

export interface ImportOptions {
  /** Receives what the user should know but is no error (e.g. which of several outputs is trained). */
  onNote?: (note: string) => void;
}

/**
 * Imports `bytes` (the content of `file`, named in messages) training the candidates `selectors` pick
 * (select.ts; e.g. ['all'] or ['last:1']). Throws a ModelError for a model it cannot train.
 */
export async function importOnnx(
  bytes: Uint8Array,
  file: string,
  selectors: readonly string[],
  preprocess?: Partial<Preprocess>,
  options: ImportOptions = {},
): Promise<ModelArtifact> {
  const proto = readModel(bytes, file);
  const trainable = selectTrainable(proto, selectors, file);
  const producer = [proto.producerName, proto.producerVersion].filter(Boolean).join(' ') || 'unknown';
  const source = { kind: 'onnx' as const, file: basename(file), sha256: createHash('sha256').update(bytes).digest('hex'), producer };
  const { notes, classes: declared, ...graph } = buildTrainingGraph(proto, trainable, { file, source, preprocess });
  for (const n of notes) options.onNote?.(n);
  const { classes, largestActivation } = await probeModel(graph, file);
  if (declared !== null && declared !== classes) {
    throw new ModelError(`${file}: the output declares ${declared} classes, but the graph computes ${classes} scores per example`,
      'The file is inconsistent: export the model again.');
  }
  // An output that did not declare its class count gets it now that the probe found it.
  const scoresName = findLogits(proto.graph ?? {}, file).output.name;
  const scores = graph.exportOutputs.find((o) => o.name === scoresName);
  if (scores && scores.dims.length === 2 && typeof scores.dims[1] === 'string') scores.dims[1] = classes;
  return { ...graph, classes, largestActivation };
}
