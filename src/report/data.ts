// Reading finished run directories back, and the numbers the report derives from them. Every number in a
// report comes from here, i.e. from config.json / metrics.jsonl / summary.json / suite.json / memory.json.
import { UserError } from '../core/errors.ts';
import { readMetrics } from '../app/runDir.ts';
import { isOnnxPath, participantsOf, withDefaults } from '../core/config/index.ts';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { RunConfig } from '../core/config/index.ts';
import type { MemoryReport } from './memory.ts';
import type { MetricsRecord } from '../core/fl/federation.ts';
import { loadSuite, type RunStatus, type SuiteRecord } from './suite.ts';

export interface RunData {
  id: string;
  dir: string;
  config: RunConfig;
  metrics: MetricsRecord[];
  /** summary.json present: the run finished. */
  finished: boolean;
  /** Trained and frozen parameter counts (summary.json; null before it, frozen null for runs made before the artifact). */
  params: number | null;
  frozenParams: number | null;
  /** The (ε, δ) the run spent and the noise multiplier it used (summary.json of a run with dpClip; else null). */
  privacy: { epsilon: number | null; delta: number; noiseMultiplier: number } | null;
  status: RunStatus | 'finished' | 'unfinished';
}

export interface SuiteData {
  name: string;
  dir: string;
  title: string;
  description: string;
  /** The command that produced the runs (suite.json), or null for loose run directories. */
  command: string | null;
  /** Every distinct command that made one of the runs (several when parts were run with --only). */
  commands: string[];
  /** Suite source directory (experiments/suites/<name>). */
  source: string | null;
  overrides: Record<string, unknown>;
  notes: string | null;
  runs: RunData[];
}

export interface MemoryData {
  dir: string;
  report: MemoryReport;
}

export interface ReportInputs {
  suites: SuiteData[];
  memory: MemoryData[];
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new UserError(`report: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

export function loadRun(dir: string, id = basename(dir), status?: RunStatus): RunData | null {
  if (!existsSync(join(dir, 'config.json'))) return null;
  // Keys added after a run was recorded take their defaults: what that run did (e.g. every parameter trained,
  // the backprop baseline did not exist, so a run without `algorithm` is a BAFFLE run).
  const config = withDefaults(readJson<Partial<RunConfig>>(join(dir, 'config.json')));
  const finished = existsSync(join(dir, 'summary.json'));
  const summary = finished
    ? readJson<{ params?: number; frozenParams?: number; epsilon?: number | null; delta?: number; noiseMultiplier?: number }>(join(dir, 'summary.json'))
    : null;
  return {
    id,
    dir,
    config,
    metrics: readMetrics(dir),
    finished,
    status: status ?? (finished ? 'finished' : 'unfinished'),
    params: summary?.params ?? null,
    frozenParams: summary?.frozenParams ?? null,
    privacy:
      summary && typeof summary.delta === 'number' && typeof summary.noiseMultiplier === 'number'
        ? { epsilon: typeof summary.epsilon === 'number' ? summary.epsilon : null, delta: summary.delta, noiseMultiplier: summary.noiseMultiplier }
        : null,
  };
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

function loadSuiteDir(dir: string): SuiteData {
  const rec = readJson<SuiteRecord>(join(dir, 'suite.json'));
  // Prose (title, description, notes) from the suite's current source when it is at hand, so that the report
  // reads like the repository; numbers only ever come from the run directories.
  if (rec.source && existsSync(join(rec.source, 'suite.toml'))) {
    try {
      const src = loadSuite(rec.source);
      rec.title = src.title;
      rec.description = src.description;
      rec.notes = src.notes;
    } catch {
      // a suite that no longer loads: keep the recorded prose
    }
  }
  const runs: RunData[] = [];
  for (const r of rec.runs) {
    const run = loadRun(join(dir, r.id), r.id, r.status);
    if (run) runs.push(run);
  }
  // Natural order of run ids (k20 before k100).
  runs.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  return {
    // The output directory names the suite in the report (file names, archive), so that two outputs of one
    // suite (say a budget and a full run) can sit side by side.
    name: basename(dir),
    dir,
    title: rec.title,
    description: rec.description,
    command: rec.command,
    commands: [...new Set(rec.runs.map((r) => r.command ?? rec.command))],
    source: rec.source,
    overrides: rec.overrides ?? {},
    notes: rec.notes,
    runs,
  };
}

/**
 * Finds what each path holds: a suite output directory (suite.json), a `baffle memory` output (memory.json),
 * a single run directory (config.json + metrics.jsonl), or a directory of those (searched two levels deep).
 * Loose runs are grouped into one suite per parent directory.
 */
export function loadInputs(paths: readonly string[]): ReportInputs {
  const suites: SuiteData[] = [];
  const memory: MemoryData[] = [];
  const loose = new Map<string, RunData[]>();
  const visit = (dir: string, depth: number) => {
    if (existsSync(join(dir, 'suite.json'))) {
      suites.push(loadSuiteDir(dir));
      return;
    }
    if (existsSync(join(dir, 'memory.json'))) memory.push({ dir, report: readJson<MemoryReport>(join(dir, 'memory.json')) });
    if (existsSync(join(dir, 'metrics.jsonl'))) {
      const run = loadRun(dir);
      if (run) {
        const parent = resolve(dir, '..');
        loose.set(parent, [...(loose.get(parent) ?? []), run]);
      }
      return;
    }
    if (depth >= 2) return;
    for (const e of readdirSync(dir).sort()) {
      const sub = join(dir, e);
      if (isDir(sub)) visit(sub, depth + 1);
    }
  };
  for (const p of paths) {
    if (!isDir(p)) throw new UserError(`report: '${p}' is not a directory`);
    visit(resolve(p), 0);
  }
  // Two sections with one title (two outputs of one suite) are told apart by their directory names.
  for (const s of suites) {
    if (suites.filter((t) => t.title === s.title).length > 1) s.title = `${s.title} (${s.name})`;
  }
  for (const [parent, runs] of loose) {
    suites.push({
      name: basename(parent),
      dir: parent,
      title: `Runs in ${basename(parent)}`,
      description: '',
      command: null,
      commands: [],
      source: null,
      overrides: {},
      notes: null,
      runs: runs.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })),
    });
  }
  return { suites, memory };
}

// ---------------------------------------------------------------------------------------------------
// Derived numbers

export const isBp = (r: RunData) => r.config.algorithm === 'bp';
export const algorithmName = (r: RunData) => (isBp(r) ? 'backprop' : 'BAFFLE');

export const participants = participantsOf;

export interface RunNumbers {
  steps: number;
  epochs: number;
  finalAccuracy: number;
  bestAccuracy: number;
  finalLoss: number;
  forwardPasses: number;
  /** Forward passes one client spends per round. */
  forwardPerClientRound: number;
  uplinkBytes: number;
  downlinkBytes: number;
  uplinkPerClientRound: number;
  downlinkPerClientRound: number;
  wallSeconds: number;
}

export function numbers(run: RunData): RunNumbers | null {
  const last = run.metrics[run.metrics.length - 1];
  if (!last) return null;
  const clientRounds = last.step * participants(run.config);
  return {
    steps: last.step,
    epochs: last.epoch,
    finalAccuracy: last.testAccuracy,
    bestAccuracy: Math.max(...run.metrics.map((m) => m.testAccuracy)),
    finalLoss: last.testLoss,
    forwardPasses: last.forwardPasses,
    forwardPerClientRound: last.forwardPasses / clientRounds,
    uplinkBytes: last.uplinkBytes,
    downlinkBytes: last.downlinkBytes,
    uplinkPerClientRound: last.uplinkBytes / clientRounds,
    downlinkPerClientRound: last.downlinkBytes / clientRounds,
    wallSeconds: last.wallMs / 1000,
  };
}

/** Test accuracy at the last evaluation at or before `step` (null if none). */
export function accuracyAt(run: RunData, step: number): number | null {
  let best: MetricsRecord | null = null;
  for (const m of run.metrics) if (m.step <= step && (!best || m.step > best.step)) best = m;
  return best ? best.testAccuracy : null;
}

/** Keys that only shape the estimator (or the machinery): a backprop run matches whatever their values. */
// dpClip bounds a K-vector for BAFFLE and a gradient for backprop: two units, each run's own choice.
const NON_MODEL_KEYS: readonly (keyof RunConfig)[] = ['algorithm', 'K', 'sigma', 'scheme', 'seedPolicy', 'clip', 'workers', 'dataDir', 'dpClip'];

function comparable(c: RunConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!NON_MODEL_KEYS.includes(k as keyof RunConfig)) out[k] = v;
  return out;
}

export interface BaselineMatch {
  run: RunData;
  /** Keys (other than the estimator's) in which the baseline differs from the BAFFLE run; empty = exact. */
  differs: string[];
}

/**
 * The backprop run to set beside a BAFFLE run: the one whose configuration is the same in everything but the
 * estimator's keys (K, σ, scheme, seed policy, clip); failing that, the one of the same dataset and model that
 * differs in the fewest keys (reported). An imported ONNX model has no backprop run of its own (the baseline
 * runs zoo models): it is set beside the closest zoo run, `model` among the keys reported as different.
 */
export function matchBaseline(run: RunData, candidates: readonly RunData[]): BaselineMatch | null {
  const me = comparable(run.config);
  let best: BaselineMatch | null = null;
  for (const bp of candidates) {
    if (!isBp(bp) || bp.metrics.length === 0) continue;
    if (bp.config.dataset !== run.config.dataset || (bp.config.model !== run.config.model && !isOnnxPath(run.config.model))) continue;
    const other = comparable(bp.config);
    const differs = Object.keys(me).filter((k) => JSON.stringify(me[k]) !== JSON.stringify(other[k]));
    if (!best || differs.length < best.differs.length) best = { run: bp, differs };
  }
  return best;
}

/** A finished BAFFLE run, its numbers, its backprop baseline and that baseline's accuracy at the same step. */
export interface BaselinePair {
  r: RunData;
  n: RunNumbers;
  m: BaselineMatch | null;
  bp: number | null;
}

/** Every finished BAFFLE run of `runs` paired with its backprop baseline among them. */
export function baselinePairs(runs: readonly RunData[]): BaselinePair[] {
  return runs
    .filter((r) => !isBp(r) && numbers(r) !== null)
    .map((r) => {
      const n = numbers(r)!;
      const m = matchBaseline(r, runs);
      return { r, n, m, bp: m ? accuracyAt(m.run, n.steps) : null };
    });
}

/** Keys whose values differ between the suite's runs (its independent variables), in config order. */
export function suiteVaryingKeys(runs: readonly RunData[]): (keyof RunConfig)[] {
  if (runs.length === 0) return [];
  const keys = Object.keys(runs[0]!.config) as (keyof RunConfig)[];
  return keys.filter(
    (k) => !['workers', 'dataDir'].includes(k) && runs.some((r) => JSON.stringify(r.config[k]) !== JSON.stringify(runs[0]!.config[k])),
  );
}

/**
 * Series of a BAFFLE run when K is plotted: its values of the suite's other independent variables (not K, the
 * algorithm or the run length / evaluation settings).
 */
export function seriesOf(run: RunData, varying: readonly string[]): string {
  const keys = varying.filter((k) => !['K', 'algorithm', 'epochs', 'evalEvery', 'emaEvery', 'maxSteps', 'testSubset'].includes(k));
  if (keys.length === 0) return run.config.dataset;
  return keys.map((k) => `${k === 'dataset' ? '' : `${k} `}${String((run.config as unknown as Record<string, unknown>)[k])}`).join(', ');
}

/** Whether K is a variable of its own in the suite: some series of alike BAFFLE runs has two or more K. */
export function kVaries(suite: SuiteData): boolean {
  const varying = suiteVaryingKeys(suite.runs);
  const ks = new Map<string, Set<number>>();
  for (const r of suite.runs) {
    if (isBp(r) || r.metrics.length === 0) continue;
    const key = seriesOf(r, varying);
    ks.set(key, (ks.get(key) ?? new Set()).add(r.config.K));
  }
  return [...ks.values()].some((k) => k.size >= 2);
}

// ---------------------------------------------------------------------------------------------------
// Formatting

export function pct(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(digits)}%`;
}

export { bytes } from '../app/format.ts';

export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}

/** A configuration value as it reads in a table. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'null';
  return JSON.stringify(v);
}

/** A fine-tuning run of a suite (it starts from an earlier model) with the from-scratch BAFFLE run beside it. */
export interface FineTunePair {
  pair: BaselinePair;
  scratch: RunData | null;
  /** The scratch run's accuracy at the fine-tuning run's last step. */
  scratchAccuracy: number | null;
}

const startsFromModel = (c: RunConfig) => c.init !== null || isOnnxPath(c.model);

/**
 * Every BAFFLE run that starts from a pretrained model (init, or an imported ONNX file), with its backprop
 * baseline and the suite's from-scratch BAFFLE run of the same data (the same K when there is one).
 */
export function fineTunePairs(runs: readonly RunData[]): FineTunePair[] {
  const scratchRuns = runs.filter(
    (r) => !isBp(r) && !startsFromModel(r.config) && r.config.trainable.join() === 'all' && r.metrics.length > 0,
  );
  return baselinePairs(runs)
    .filter((p) => startsFromModel(p.r.config))
    .map((pair) => {
      const same = scratchRuns.filter(
        (s) => s.config.dataset === pair.r.config.dataset && JSON.stringify(s.config.classSubset) === JSON.stringify(pair.r.config.classSubset),
      );
      const scratch = same.find((s) => s.config.K === pair.r.config.K) ?? same[0] ?? null;
      return { pair, scratch, scratchAccuracy: scratch ? accuracyAt(scratch, pair.n.steps) : null };
    });
}
