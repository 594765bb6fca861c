// A run directory: what `baffle run` and `baffle serve` write (docs/formats.md), every file atomically, and the
// rules that keep a run from being lost: a directory holding a run is never overwritten unless asked to
// (--force), and a run continues only with --resume. Everything is checked before any data loads, and a refused
// command leaves no directory behind.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from '../core/config/index.ts';
import { UserError } from '../core/errors.ts';
import type { MetricsRecord } from '../core/fl/federation.ts';
import type { ModelArtifact } from '../core/model/artifact.ts';
import { exportModel } from '../core/model/onnx/export.ts';
import { checkOutputDir, fsReason, writeAtomic, writeJson, writeJsonLines } from '../node/files.ts';

export interface RunSummary extends MetricsRecord {
  bestTestAccuracy: number;
  params: number;
  /** Frozen parameters (baked into the graph, not trained). */
  frozenParams: number;
  totalSteps: number;
  workers: number;
  /** Differentially private runs: the (ε, δ) spent (ε null = infinite: no noise) and the noise multiplier. */
  epsilon?: number | null;
  delta?: number;
  noiseMultiplier?: number;
}

/** Files of a run, removed by --force (nothing else in the directory is touched). */
const RUN_FILES = ['config.json', 'metrics.jsonl', 'summary.json', 'weights.bin', 'weights.json', 'model.onnx', 'rounds.jsonl', 'server.json'];
const CHECKPOINT = 'checkpoint';

/** What in `dir` shows that it holds a run, or null. */
export function runIn(dir: string): string | null {
  for (const f of ['summary.json', CHECKPOINT, 'config.json', 'metrics.jsonl']) if (existsSync(join(dir, f))) return f;
  return null;
}

/** Creates `dir` and proves it writable (a probe file); the reasons are those of checkOutputDir. */
function creatable(dir: string, what: string): void {
  checkOutputDir(dir, what);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserError(`${what}: cannot create the directory (${fsReason(e)})`);
  }
  const probe = join(dir, `.baffle-write-test-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new UserError(`${what}: cannot write there (${fsReason(e)})`);
  }
}

/**
 * Checks, without touching the disk, that `dir` can take a fresh run: refused when it already holds one (unless
 * `force`), or when it cannot be created or written. `command` names the command for the hint.
 */
export function checkFreshRun(dir: string, force: boolean, command: 'run' | 'serve'): void {
  const held = existsSync(dir) && statSync(dir).isDirectory() ? runIn(dir) : null;
  if (held && !force) {
    throw new UserError(`--out ${dir} already holds a run (${held})`, {
      hint: `continue it with \`baffle ${command} --resume ${dir}\`, choose another --out, or add --force to replace it`,
    });
  }
  checkOutputDir(dir, `--out ${dir}`);
}

/**
 * Makes `dir` ready for a fresh run: created (and writable), and refused when it already holds a run unless
 * `force`, which removes that run's files first. Call it after every other check, right before the data loads
 * (checkFreshRun first, so that a refused command leaves no directory behind).
 */
export function prepareFreshRun(dir: string, force: boolean, command: 'run' | 'serve'): void {
  checkFreshRun(dir, force, command);
  const held = existsSync(dir) ? runIn(dir) : null;
  creatable(dir, `--out ${dir}`);
  if (held) {
    for (const f of RUN_FILES) rmSync(join(dir, f), { force: true });
    rmSync(join(dir, CHECKPOINT), { recursive: true, force: true });
  }
}

/**
 * The configuration a run directory holds, for --resume (refused with the reason when it is not a run directory).
 * `flag` names the argument in messages (`--resume DIR`, or e.g. `export` for `baffle export DIR`).
 */
export function resumableRun(dir: string, command: 'run' | 'serve', flag = '--resume'): string {
  const resuming = flag === '--resume';
  if (!existsSync(dir)) throw new UserError(`${flag} ${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${flag} ${dir}: is a file, not a run directory`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) {
    throw new UserError(`${flag} ${dir}: no config.json there (not a run directory)`, {
      hint: resuming ? `start a run there with \`baffle ${command} --out ${dir}\`` : 'give the directory a `baffle run` or `baffle serve` wrote (its --out)',
    });
  }
  if (resuming) creatable(dir, `${flag} ${dir}`);
  return configPath;
}

export interface ServerFile {
  runId: string;
  tokens: string;
  tls: { cert: string; key: string } | null;
  url?: string;
  statusUrl?: string;
  pid?: number;
}

/** server.json of a served run (address, tokens, TLS files), or null. */
export function readServerFile(dir: string): ServerFile | null {
  const p = join(dir, 'server.json');
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as ServerFile;
  } catch (e) {
    throw new UserError(`${p} is not readable JSON (${(e as Error).message})`);
  }
}

/** The summary of a finished run in `dir`, or null while it is not finished. */
export function finishedRun(dir: string): RunSummary | null {
  const p = join(dir, 'summary.json');
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as RunSummary;
  } catch {
    return null;
  }
}

export function writeConfig(dir: string, config: unknown): void {
  writeJson(join(dir, 'config.json'), config);
}

export function writeMetrics(dir: string, metrics: readonly MetricsRecord[]): void {
  writeJsonLines(join(dir, 'metrics.jsonl'), metrics);
}

/** The metrics records already in a run directory (those up to `step` are kept by a resumed run). */
export function readMetrics(dir: string): MetricsRecord[] {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.trim() !== '')
    .map(({ l, i }) => {
      try {
        return JSON.parse(l) as MetricsRecord;
      } catch (e) {
        throw new UserError(`${path}:${i + 1} is not a JSON record (${(e as Error).message})`);
      }
    });
}

/**
 * The trained model: `model.onnx` (the evaluated weights baked into the model's own graph, loadable by any ONNX
 * runtime), and `weights.bin` + `weights.json` (the flat trainable vector, little-endian float32, and its layout).
 */
export function writeModel(dir: string, artifact: ModelArtifact, weights: Float32Array, kind: 'ema' | 'raw'): void {
  writeAtomic(join(dir, 'model.onnx'), exportModel(artifact, weights));
  const bytes = new Uint8Array(weights.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < weights.length; i++) view.setFloat32(i * 4, weights[i]!, true);
  writeAtomic(join(dir, 'weights.bin'), bytes);
  writeJson(join(dir, 'weights.json'), {
    format: 'baffle-weights/1',
    dtype: 'float32',
    byteOrder: 'little-endian',
    weights: kind,
    params: artifact.params,
    frozenParams: artifact.frozen,
    model: artifact.source,
    layout: artifact.layout.map((p) => ({ name: p.name, shape: p.shape, offset: p.offset, size: p.size })),
  });
}

/** The summary of a finished run: the last evaluation plus totals. */
export function summarize(
  metrics: readonly MetricsRecord[],
  artifact: ModelArtifact,
  totalSteps: number,
  workers: number,
  privacy: { delta: number; noiseMultiplier: number } | null = null,
): RunSummary {
  const last = metrics[metrics.length - 1]!;
  return {
    ...last,
    bestTestAccuracy: Math.max(...metrics.map((m) => m.testAccuracy)),
    params: artifact.params,
    frozenParams: artifact.frozen,
    totalSteps,
    workers,
    ...(privacy ? { epsilon: last.epsilon ?? null, delta: privacy.delta, noiseMultiplier: privacy.noiseMultiplier } : {}),
  };
}

export function writeSummary(dir: string, summary: RunSummary): void {
  writeJson(join(dir, 'summary.json'), summary);
}

/** The end of a run: model.onnx and the weights, then summary.json (its presence means the run finished). */
export function finishRun(
  dir: string,
  artifact: ModelArtifact,
  result: { metrics: readonly MetricsRecord[]; evalWeights: Float32Array; totalSteps: number; privacy: { delta: number; noiseMultiplier: number } | null },
  config: Pick<RunConfig, 'ema'>,
  workers: number,
): RunSummary {
  writeModel(dir, artifact, result.evalWeights, config.ema ? 'ema' : 'raw');
  const summary = summarize(result.metrics, artifact, result.totalSteps, workers, result.privacy);
  writeSummary(dir, summary);
  return summary;
}

/** The configuration as written to config.json (workers resolved). */
export function configRecord(config: RunConfig, workers: number): RunConfig & { workers: number } {
  return { ...config, workers };
}

/** The default run directory: runs/<time>-<dataset>-<model>[-suffix] (an ONNX model by its file's stem). */
export function defaultRunDir(config: Pick<RunConfig, 'dataset' | 'model'>, suffix = ''): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const model = config.model.replace(/^.*[\\/]/, '').replace(/\.onnx$/i, '');
  return `runs/${stamp}-${config.dataset}-${model}${suffix}`;
}
