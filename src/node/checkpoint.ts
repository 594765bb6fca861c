// Server checkpoints: everything the federation loop needs to continue from a completed step, so that a
// killed server (even kill -9) resumes with no round lost or counted twice.
//
// Two files in the checkpoint directory:
//   checkpoint-<step>.bin  the float32 arrays (weights, optimizer moments, EMA shadow), little-endian, back to back
//   checkpoint.json        the manifest: step, progress (counters, metrics, RNG state), scalar state, the offset
//                          and length of every array in the .bin, its byte size and SHA-256, and an `extra`
//                          record for the transport's state (client stream cursors, round log)
// Each file is written to a temporary name, fsynced and renamed; the manifest goes last, so its rename is the
// commit point: a crash before it leaves the previous checkpoint intact. Older .bin files are removed after.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from '../core/config/index.ts';
import { UniformRng } from '../core/rng/uniform.ts';
import type { EmaState } from '../core/fl/ema.ts';
import type { FederationProgress, MetricsRecord } from '../core/fl/federation.ts';
import type { OptimizerState } from '../core/fl/optimizer.ts';

export const CHECKPOINT_FORMAT = 'baffle-checkpoint/1';
const MANIFEST = 'checkpoint.json';

export interface Checkpoint {
  runId: string;
  config: RunConfig;
  progress: FederationProgress;
  weights: Float32Array;
  optimizer: OptimizerState | null;
  ema: EmaState | null;
  /** JSON-serialisable state of the other parts (the network transport's client cursors and round log). */
  extra: Record<string, unknown>;
}

type ArrayRef = { $f32: [offset: number, length: number] };
type StoredState = Record<string, number | ArrayRef>;

class BinWriter {
  readonly parts: Float32Array[] = [];
  private offset = 0;
  add(a: Float32Array): ArrayRef {
    const ref: ArrayRef = { $f32: [this.offset, a.length] };
    this.parts.push(a);
    this.offset += a.length;
    return ref;
  }
  state(s: Record<string, Float32Array | number>): StoredState {
    const out: StoredState = {};
    for (const [k, v] of Object.entries(s)) out[k] = v instanceof Float32Array ? this.add(v) : v;
    return out;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.offset * 4);
    const view = new DataView(out.buffer);
    let o = 0;
    for (const p of this.parts) {
      for (let i = 0; i < p.length; i++, o += 4) view.setFloat32(o, p[i], true);
    }
    return out;
  }
}

function readArray(bin: Uint8Array, ref: ArrayRef, what: string): Float32Array {
  const [offset, length] = ref.$f32;
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || (offset + length) * 4 > bin.byteLength) {
    throw new Error(`checkpoint: ${what} lies outside the data file`);
  }
  const view = new DataView(bin.buffer, bin.byteOffset + offset * 4, length * 4);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function readState(bin: Uint8Array, s: StoredState, what: string): Record<string, Float32Array | number> {
  const out: Record<string, Float32Array | number> = {};
  for (const [k, v] of Object.entries(s)) out[k] = typeof v === 'number' ? v : readArray(bin, v, `${what}.${k}`);
  return out;
}

/** Writes `data` to `path` durably: temp file, fsync, rename, fsync of the directory. */
export function writeDurable(path: string, data: Uint8Array | string, dir: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < buf.byteLength) written += writeSync(fd, buf, written, buf.byteLength - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const d = openSync(dir, 'r');
    fsyncSync(d);
    closeSync(d);
  } catch {
    // Directories cannot be fsynced everywhere; the rename is still atomic.
  }
}

/** Saves a checkpoint of a completed step into `dir`. `wallMs` is the run's elapsed training time so far. */
export function saveCheckpoint(dir: string, c: Checkpoint, wallMs: number): void {
  mkdirSync(dir, { recursive: true });
  const w = new BinWriter();
  const weights = w.add(c.weights);
  const optimizer = c.optimizer ? w.state(c.optimizer) : null;
  const ema = c.ema ? w.state(c.ema) : null;
  const bin = w.bytes();
  const step = c.progress.step;
  const file = `checkpoint-${String(step).padStart(8, '0')}.bin`;
  writeDurable(join(dir, file), bin, dir);
  const p = c.progress;
  const manifest = {
    format: CHECKPOINT_FORMAT,
    runId: c.runId,
    step,
    savedAt: new Date().toISOString(),
    config: c.config,
    progress: {
      step: p.step,
      counters: p.counters,
      metrics: p.metrics,
      sampleRng: p.sampleRng.getState(),
      lossSinceEval: p.lossSinceEval,
      stepsSinceEval: p.stepsSinceEval,
      wallOffsetMs: wallMs,
      ...(p.dpReduced ? { dpReduced: p.dpReduced } : {}),
    },
    weights,
    optimizer,
    ema,
    extra: c.extra,
    data: { file, bytes: bin.byteLength, sha256: createHash('sha256').update(bin).digest('hex') },
  };
  writeDurable(join(dir, MANIFEST), `${JSON.stringify(manifest)}\n`, dir);
  for (const name of readdirSync(dir)) {
    if (name !== file && /^checkpoint-\d+\.bin$/.test(name)) rmSync(join(dir, name), { force: true });
  }
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, MANIFEST));
}

/** Loads the checkpoint in `dir` (throws with a clear message when it is missing or damaged). */
export function loadCheckpoint(dir: string): Checkpoint {
  const path = join(dir, MANIFEST);
  let m: Record<string, any>;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  if (m.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: not a ${CHECKPOINT_FORMAT} manifest`);
  const binPath = join(dir, String(m.data?.file ?? ''));
  let bin: Uint8Array;
  try {
    bin = readFileSync(binPath);
  } catch (e) {
    throw new Error(`checkpoint data ${binPath}: ${(e as Error).message}`);
  }
  if (bin.byteLength !== m.data.bytes || createHash('sha256').update(bin).digest('hex') !== m.data.sha256) {
    throw new Error(`checkpoint data ${binPath} does not match its manifest (size or SHA-256)`);
  }
  const p = m.progress;
  const progress: FederationProgress = {
    step: p.step,
    counters: p.counters,
    // JSON has no NaN: a metric that was NaN (e.g. trainLoss with no counted step) comes back as null.
    metrics: (p.metrics as Record<string, number | null>[]).map(
      (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? NaN : v])) as unknown as MetricsRecord,
    ),
    sampleRng: UniformRng.fromState(p.sampleRng),
    lossSinceEval: p.lossSinceEval,
    stepsSinceEval: p.stepsSinceEval,
    wallOffsetMs: p.wallOffsetMs,
    ...(p.dpReduced && typeof p.dpReduced === 'object' ? { dpReduced: checkReduced(p.dpReduced) } : {}),
  };
  return {
    runId: m.runId,
    config: m.config,
    progress,
    weights: readArray(bin, m.weights, 'weights'),
    optimizer: m.optimizer ? (readState(bin, m.optimizer, 'optimizer') as OptimizerState) : null,
    ema: m.ema ? (readState(bin, m.ema, 'ema') as EmaState) : null,
    extra: m.extra ?? {},
  };
}

/** The DP rounds charged at reduced noise (federation.ts dpReduced): "m′/m" → count, validated. */
function checkReduced(v: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    const parts = /^(\d+)\/(\d+)$/.exec(k);
    if (!parts || !(Number(parts[1]) < Number(parts[2])) || !Number.isInteger(n) || (n as number) < 0) throw new Error(`checkpoint: bad dpReduced entry ${k}: ${String(n)}`);
    out[k] = n as number;
  }
  return out;
}
