// buildModel: one model definition (zoo.ts) → layout, reference forward, initialiser; zooArtifact (artifact.ts's
// ModelArtifact) adds the training graph.

import { initWeights } from './init.ts';
import { traceLayout } from './layout.ts';
import { referenceForward } from './reference.ts';
import * as S from './shapes.ts';
import type { BuiltModel, ModelConfig } from './types.ts';
import { defineModel } from './zoo.ts';

export function buildModel(config: ModelConfig): BuiltModel {
  const def = defineModel(config);
  const { inputShape, classes } = config;
  const { layout, outputShape, largestActivation } = traceLayout(def, inputShape);
  if (!S.sameShape(outputShape, [classes])) {
    throw new Error(`model produces per-example shape [${outputShape}], expected [${classes}]`);
  }
  return {
    config: structuredClone(config),
    layout,
    def,
    largestActivation,
    referenceLogits: (weights, x, batch) => referenceForward(def, layout, inputShape, weights, x, batch),
    initWeights: (seed) => initWeights(layout, seed),
  };
}

export type { ModelDef, Ops, ConvOptions } from './ops.ts';
export { defineModel, gnGroups, BATCHNORM_REFUSAL } from './zoo.ts';
export { initWeights } from './init.ts';
export { referenceCrossEntropy } from './reference.ts';
export type * from './types.ts';
