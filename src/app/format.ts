// Human-readable lines for the console.
import type { MetricsRecord } from '../core/fl/federation.ts';
import { bytes, count, percent, seconds } from '../core/format.ts';

export { bytes, count, percent, seconds } from '../core/format.ts';

/** The one line printed per evaluation by `baffle run` and `baffle serve`. */
export function evaluationLine(m: MetricsRecord): string {
  return (
    `epoch ${m.epoch.toFixed(Number.isInteger(m.epoch) ? 0 : 2).padStart(3)}  step ${String(m.step).padStart(5)}  ` +
    `test acc ${percent(m.testAccuracy).padStart(7)}  test loss ${m.testLoss.toFixed(4)}  ` +
    `train loss ${m.trainLoss.toFixed(4)}  fwd ${count(m.forwardPasses)}  ` +
    `up ${bytes(m.uplinkBytes)}  down ${bytes(m.downlinkBytes)}  ${seconds(m.wallMs)}`
  );
}

/** What a run that ended says. */
export function doneLine(s: { testAccuracy: number; bestTestAccuracy: number; step: number; wallMs: number }, dir: string): string {
  return (
    `done: test accuracy ${percent(s.testAccuracy)} (best ${percent(s.bestTestAccuracy)}) after ${s.step} steps in ` +
    `${seconds(s.wallMs)}; results in ${dir} (model.onnx, metrics.jsonl, summary.json)`
  );
}

/** What `--resume` of a finished run says (it exits 0 without training again). */
export function finishedLine(s: { testAccuracy: number; step: number; totalSteps: number }, dir: string): string {
  return `the run in ${dir} is finished (step ${s.step} of ${s.totalSteps}, test accuracy ${percent(s.testAccuracy)}): not training again`;
}
