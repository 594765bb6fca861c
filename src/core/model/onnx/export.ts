// The inference model of an artifact with given weights: its training graph with the trainable inputs turned
// back into initializers, the labels input and the loss node removed, and the original outputs restored.
// Works for imported models (which keep their own outputs, e.g. a final Softmax) and zoo models (logits).

import type { ModelArtifact } from '../artifact.ts';
import { float32Tensor, makeValueInfo, onnx } from './proto.ts';

export function exportModel(
  artifact: Pick<ModelArtifact, 'onnx' | 'io' | 'layout' | 'params' | 'exportOutputs'>,
  weights: Float32Array,
): Uint8Array {
  if (weights.length !== artifact.params) {
    throw new RangeError(`exportModel: ${weights.length} weights given, the model has ${artifact.params} trainable parameters`);
  }
  if (artifact.exportOutputs.length === 0) throw new Error('exportModel: the artifact names no outputs to export');
  const model = onnx.ModelProto.decode(artifact.onnx);
  const graph = model.graph;
  if (!graph) throw new Error('exportModel: the artifact holds no graph');
  const trainable = new Set(artifact.layout.map((p) => p.name));
  const { labels, loss } = artifact.io;

  graph.input = (graph.input ?? []).filter((i) => i.name !== labels && !trainable.has(i.name ?? ''));
  graph.node = (graph.node ?? []).filter((n) => !(n.output ?? []).includes(loss));
  const stillUsed = graph.node.some((n) => (n.input ?? []).includes(labels));
  if (stillUsed) throw new Error(`exportModel: '${labels}' feeds nodes other than the loss`);
  // Trained weights first: their layout order is the initializer order the importer read them in.
  graph.initializer = [
    ...artifact.layout.map((p) => float32Tensor(p.name, p.shape, weights.subarray(p.offset, p.offset + p.size))),
    ...(graph.initializer ?? []),
  ];
  graph.output = artifact.exportOutputs.map((o) => makeValueInfo(o.name, o.elemType, o.dims));
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}
