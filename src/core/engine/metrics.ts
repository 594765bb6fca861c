// Loss and accuracy from logits, computed the same way for every engine.
import type { Evaluation } from './types.ts';

export function crossEntropy(logits: Float32Array, labels: Uint8Array, count: number, classes: number): Evaluation {
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < count; i++) {
    const row = i * classes;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < classes; j++) {
      const v = logits[row + j];
      if (v > max) {
        max = v;
        arg = j;
      }
    }
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[row + j] - max);
    lossSum += Math.log(sum) + max - logits[row + labels[i]];
    if (arg === labels[i]) correct++;
  }
  return { lossSum, correct, count };
}
