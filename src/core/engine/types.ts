// The one narrow door to a forward engine: load a batch, ask for its loss (or logits) under given weights.
// Two implementations: OrtSession (onnxruntime-node, the engine) and ReferenceSession (pure TS, the oracle).

export interface Batch {
  /** Images [count, C, H, W]. */
  x: Float32Array;
  /** Labels, one per image. */
  y: Uint8Array;
  count: number;
}

export interface Evaluation {
  /** Sum (not mean) of the per-example cross-entropy losses. */
  lossSum: number;
  correct: number;
  count: number;
}

export interface ForwardSession {
  /** Makes `batch` the input of every following call; the arrays must stay unchanged until replaced. */
  setBatch(batch: Batch): void;
  /** Mean cross-entropy of the current batch under `weights` (a flat vector in layout order). */
  loss(weights: Float32Array): Promise<number>;
  /** Logits [count × classes] of the current batch. */
  logits(weights: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}
