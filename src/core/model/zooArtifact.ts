// The zoo as a model producer: a zoo architecture with given starting weights becomes a ModelArtifact through
// the same code that imports a user's ONNX file (src/core/model/onnx): the architecture is emitted as a plain
// inference model, its trainable subset chosen by the same selectors and turned into graph inputs.
import { readModel } from './onnx/read.ts';
import { selectTrainable } from './onnx/select.ts';
import { buildTrainingGraph } from './onnx/training.ts';
import { emitInferenceOnnx } from './onnxGraph.ts';
import type { ModelArtifact } from './artifact.ts';
import { buildModel } from './index.ts';
import type { BuiltModel, ModelConfig } from './types.ts';

export interface ZooArtifactOptions {
  /** The full parameter vector (zoo layout order) the model starts from. */
  weights: Float32Array;
  /** Trainable-parameter selectors (`trainable` key). */
  trainable: readonly string[];
  /** Per-channel input normalisation. */
  mean?: number[];
  std?: number[];
}

/** A short name of a zoo configuration, e.g. "lenet (groupnorm, hardswish)", "mlp [128]", "wrn-10-2". */
export function zooDescription(c: ModelConfig): string {
  const arch = c.model === 'mlp' ? `mlp [${c.hidden.join(', ')}]` : c.model === 'wrn' ? `wrn-${c.depth}-${c.width}` : c.model;
  const norm = c.model === 'mlp' || c.norm === 'none' ? '' : `${c.norm}, `;
  return `${arch} (${norm}${c.activation})`;
}

export function zooArtifact(model: BuiltModel, options: ZooArtifactOptions): ModelArtifact {
  const { inputShape, classes } = model.config;
  const file = `zoo model ${zooDescription(model.config)}`;
  const bytes = emitInferenceOnnx(model.def, inputShape, classes, model.layout, options.weights, {
    docString: JSON.stringify(model.config),
  });
  const proto = readModel(bytes, file);
  const trainable = selectTrainable(proto, options.trainable, file);
  const { notes: _notes, ...training } = buildTrainingGraph(proto, trainable, {
    file,
    source: { kind: 'zoo', model: model.config.model, description: zooDescription(model.config) },
    preprocess: { image: [...inputShape], mean: options.mean ?? [0], std: options.std ?? [1] },
  });
  // The zoo's graph is the project's own: its classes and largest activation are known without a probe.
  return { ...training, classes, largestActivation: model.largestActivation };
}

/** The artifact of a zoo configuration initialised from `seed` (tests, benchmarks). */
export function seededZooArtifact(config: ModelConfig, seed: number, trainable: readonly string[] = ['all']): ModelArtifact {
  const model = buildModel(config);
  return zooArtifact(model, { weights: model.initWeights(seed), trainable });
}
