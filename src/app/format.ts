// Human-readable numbers for the console.
import type { MetricsRecord } from '../core/fl/federation.ts';

export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 || u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function seconds(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function percent(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

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
