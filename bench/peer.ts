/**
 * Side by side with PyTorch: the same BAFFLE client step (fresh perturbed weights, forward pass, batch 32,
 * one thread each) in this project's engine and in PyTorch (Debian's python3-torch), in the same run.
 *
 *   node --import tsx bench/peer.ts [--install] [--quick] [--models lenet,wrn-gn-3] [--no-untuned]
 *   npm run bench -- --only peer          (the same, as a section of the bench; add --install-torch)
 *
 * 1. Equality first: our weights and a batch are written to a temp dir, bench/torch-peer.py rebuilds the
 *    network from the same layout (the zoo's layers, parameter views into one flat buffer) and returns its
 *    logits and loss; they must match ours (onnxruntime, the session the client uses) to float32 rounding.
 * 2. Timing, interleaved round-robin so that other jobs on the machine hit every contender alike: ours
 *    (perturbInto → OrtSession.loss, the optimised graph and, for reference, the plain one) and PyTorch
 *    (noise.normal_ → torch.add(base, noise, alpha=σ, out=flat) → forward; variants no_grad, inference_mode,
 *    channels_last, channels_last_stem; glibc malloc thresholds raised with GLIBC_TUNABLES, the "tuned" setting). Rates are
 *    passes per on-CPU second of the thread doing the work (robust to other jobs), and per wall second.
 * 3. Ratio = ours / the best PyTorch variant, on on-CPU time (and on wall time, for the record).
 */
import { zooArtifact } from '../src/core/model/zooArtifact.ts';
import type { ModelArtifact } from '../src/core/model/artifact.ts';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OrtSession } from '../src/node/engine/ort.ts';
import { buildModel } from '../src/core/model/index.ts';
import type { BuiltModel } from '../src/core/model/types.ts';
import { perturbInto } from '../src/core/rng/directions.ts';
import { forwardCost } from './flops.ts';
import { matmulModel, PROJECT_OPTIONS } from './ort.ts';
import * as ort from 'onnxruntime-node';
import { fmtNum, median, now, syntheticBatch, textTable, zooEntry, type Table, type ZooEntry } from './lib.ts';

const SCRIPT = fileURLToPath(new URL('./torch-peer.py', import.meta.url));
export const TUNED_MALLOC = 'glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824';
export const TORCH_VARIANTS = ['no_grad', 'inference_mode', 'channels_last', 'channels_last_stem'] as const;
export type TorchVariant = (typeof TORCH_VARIANTS)[number];
/** Variants that run the model code as written; channels_last_stem adds a layout change after the first conv. */
const MODEL_AS_IS: ReadonlySet<string> = new Set<TorchVariant>(['no_grad', 'inference_mode', 'channels_last']);

export interface Rate {
  /** Passes per on-CPU second of the working thread (median over rounds). */
  passesPerCpuSec: number;
  /** Passes per wall second (median over rounds). */
  passesPerSec: number;
  /** Per pass, on-CPU ms split by phase (wall split scaled to on-CPU time). */
  regenMs: number;
  perturbMs: number;
  forwardMs: number;
}

export interface PeerContender extends Rate {
  /** 'ours (optimised graph)', 'torch no_grad', … */
  label: string;
}

export interface PeerResult {
  model: string;
  label: string;
  params: number;
  batch: number;
  /** MFLOP per pass (2·MACs·batch). */
  mflopPerPass: number;
  torch: { version: string; python: string; threads: number; mkldnn: boolean };
  check: { oursLoss: number; torchLoss: number; maxAbsLogitDiff: number; maxLogit: number; ok: boolean };
  ours: PeerContender;
  oursPlain: PeerContender;
  torchVariants: (PeerContender & { variant: string; malloc: 'tuned' | 'default' })[];
  /** The fastest tuned PyTorch variant (on-CPU). */
  torchBest: string;
  /**
   * ours / the fastest tuned variant that runs the model code unchanged (no_grad, inference_mode, channels_last
   * input: "tuned" as issue 5 defines it, malloc thresholds raised), and that variant; absent in older records.
   */
  ratioModelAsIs?: number;
  torchBestModelAsIs?: string;
  /** ours / best PyTorch, passes per on-CPU second (ratio of the medians); and per wall second. */
  ratio: number;
  ratioWall: number;
  /** Median over rounds of (ours / best PyTorch) within the same round, and the range: robust to slow drifts of the machine. */
  ratioPaired: number;
  ratioPairedMin: number;
  ratioPairedMax: number;
  /** The core's peak measured in the same rounds: single-threaded MatMul 1024³ through onnxruntime, on-CPU GFLOP/s (median). */
  peakGflops: number;
  rounds: number;
}

export interface PeerOptions {
  models?: readonly string[];
  rounds?: number;
  /** Target on-CPU ms per contender per round. */
  targetMs?: number;
  /** Also time PyTorch with glibc's default malloc thresholds (informational). */
  untuned?: boolean;
  /** apt-get install python3-torch when it is missing (root only). */
  install?: boolean;
  log?: (line: string) => void;
}

/** The Python that has Debian's torch: BAFFLE_PYTHON, else /usr/bin/python3, else python3. */
function pythonWithTorch(): string | null {
  const candidates = [process.env.BAFFLE_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

/** Finds (or, with `install`, installs) a Python with torch; throws with the command to run otherwise. */
export function ensureTorch(install: boolean, log: (s: string) => void = console.log): string {
  let py = pythonWithTorch();
  if (py) return py;
  if (!install) {
    throw new Error(
      'PyTorch is not installed. Run with --install (root: apt-get update && apt-get install -y python3-torch), or set BAFFLE_PYTHON.',
    );
  }
  log('installing Debian python3-torch (apt-get update && apt-get install -y python3-torch)…');
  for (const args of [['update'], ['install', '-y', 'python3-torch']]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (status ${r.status}); are you root?`);
  }
  py = pythonWithTorch();
  if (!py) throw new Error('python3-torch installed, but no python3 imports torch (set BAFFLE_PYTHON)');
  return py;
}

/** A torch-peer.py process answering one JSON command per line. */
/** One torch-peer.py process speaking the line protocol (its header documents the commands). */
export class TorchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly replies: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(python: string, tunedMalloc: boolean) {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', BAFFLE_PEER_THREADS: '1' };
    if (tunedMalloc) env.GLIBC_TUNABLES = TUNED_MALLOC;
    else delete env.GLIBC_TUNABLES;
    this.child = spawn(python, [SCRIPT], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d) => (this.stderr += d));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.replies.shift()?.(line));
    this.child.on('exit', (code) => {
      for (const r of this.replies.splice(0)) r(JSON.stringify({ ok: false, error: `torch-peer exited (${code}): ${this.stderr.slice(-2000)}` }));
    });
  }

  async call<T = Record<string, unknown>>(msg: Record<string, unknown>): Promise<T> {
    const line = await new Promise<string>((resolve) => {
      this.replies.push(resolve);
      this.child.stdin.write(`${JSON.stringify(msg)}\n`);
    });
    const reply = JSON.parse(line) as { ok: boolean; error?: string } & T;
    if (!reply.ok) throw new Error(`torch-peer: ${reply.error}`);
    return reply;
  }

  async close(): Promise<void> {
    try {
      await this.call({ cmd: 'quit' });
    } catch {
      // already gone
    }
    this.child.kill();
  }
}

export interface Prepared {
  entry: ZooEntry;
  model: BuiltModel;
  /** The engine's view of the model (every parameter trainable). */
  artifact: ModelArtifact;
  weights: Float32Array;
  batch: ReturnType<typeof syntheticBatch>;
}

const SIGMA = 1e-4;
const PEAK_N = 1024;
const PEAK_FLOP = 2 * PEAK_N ** 3;
const BATCH = 32;

/** Our client loop on the main thread: perturbInto → loss, `passes` times. On-CPU ms from process.cpuUsage. */
async function timeOurs(session: OrtSession, p: Prepared, scratch: Float32Array, kStart: number, passes: number) {
  let regen = 0;
  let fwd = 0;
  const c0 = process.cpuUsage();
  const w0 = now();
  for (let k = kStart; k < kStart + passes; k++) {
    const t0 = now();
    perturbInto(scratch, p.weights, SIGMA, 0xbaff, k);
    const t1 = now();
    await session.loss(scratch);
    fwd += now() - t1;
    regen += t1 - t0;
  }
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: now() - w0, regen, perturb: 0, fwd };
}

interface Sample {
  cpuMs: number;
  wallMs: number;
  regen: number;
  perturb: number;
  fwd: number;
  passes: number;
}

function rateOf(label: string, samples: Sample[]): PeerContender {
  const perPass = (f: (s: Sample) => number) =>
    median(samples.map((s) => (f(s) / s.passes) * Math.min(1, s.cpuMs / Math.max(1e-9, s.wallMs))));
  return {
    label,
    passesPerCpuSec: median(samples.map((s) => (s.passes / s.cpuMs) * 1000)),
    passesPerSec: median(samples.map((s) => (s.passes / s.wallMs) * 1000)),
    regenMs: perPass((s) => s.regen),
    perturbMs: perPass((s) => s.perturb),
    forwardMs: perPass((s) => s.fwd),
  };
}

/** The zoo models to compare, with weights initWeights(1) and a synthetic batch of BATCH. */
export function preparePeers(ids: readonly string[]): Prepared[] {
  return ids.map((id) => {
    const entry = zooEntry(id);
    const model = buildModel(entry.config);
    const weights = model.initWeights(1);
    const artifact = zooArtifact(model, { weights, trainable: ['all'] });
    return { entry, model, artifact, weights, batch: syntheticBatch(entry.config.inputShape, BATCH, entry.config.classes) };
  });
}

/** Writes the weights, batches and the spec torch-peer.py builds its networks from into `dir`; returns the spec's path. */
export function writePeerSpec(prepared: readonly Prepared[], dir: string): string {
  const spec = {
    seed: 1,
    models: prepared.map((p) => {
      const f = (name: string) => path.join(dir, `${p.entry.id}.${name}`);
      writeFileSync(f('weights.f32'), p.weights);
      writeFileSync(f('x.f32'), p.batch.x);
      writeFileSync(f('y.u8'), p.batch.y);
      return {
        id: p.entry.id,
        config: p.entry.config,
        params: p.model.layout.size,
        layout: p.model.layout.params.map((q) => ({ name: q.name, shape: q.shape, offset: q.offset, size: q.size })),
        sigma: SIGMA,
        batch: BATCH,
        weights: f('weights.f32'),
        x: f('x.f32'),
        y: f('y.u8'),
      };
    }),
  };
  const specPath = path.join(dir, 'spec.json');
  writeFileSync(specPath, JSON.stringify(spec));
  return specPath;
}

export async function benchPeer(opts: PeerOptions = {}): Promise<PeerResult[]> {
  const log = opts.log ?? console.log;
  const python = ensureTorch(opts.install ?? false, log);
  const ids = opts.models ?? ['lenet', 'wrn-gn-3'];
  const rounds = opts.rounds ?? 7;
  const targetMs = opts.targetMs ?? 300;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baffle-peer-'));
  const tuned = new TorchProcess(python, true);
  const untuned = opts.untuned ? new TorchProcess(python, false) : null;
  const out: PeerResult[] = [];
  let releasePeak: () => Promise<void> = async () => {};
  try {
    // ---- export weights + batch, the spec torch-peer.py builds its networks from
    const prepared = preparePeers(ids);
    const specPath = writePeerSpec(prepared, dir);
    const info = await tuned.call<{ torch: string; python: string; threads: number; mkldnn: boolean; glibc_tunables: string }>({ cmd: 'load', spec: specPath });
    if (untuned) await untuned.call({ cmd: 'load', spec: specPath });
    log(`  PyTorch ${info.torch} (Python ${info.python}, ${info.threads} thread, mkldnn ${info.mkldnn}), GLIBC_TUNABLES=${info.glibc_tunables}`);

    const peakSession = await ort.InferenceSession.create(matmulModel(PEAK_N, PEAK_N, PEAK_N), PROJECT_OPTIONS);
    releasePeak = () => peakSession.release();
    const a = new Float32Array(PEAK_N * PEAK_N).map((_, i) => ((i * 7919) % 1000) / 1000);
    const peakFeeds = { a: new ort.Tensor('float32', a, [PEAK_N, PEAK_N]), b: new ort.Tensor('float32', a, [PEAK_N, PEAK_N]) };
    const peakRun = async (passes: number): Promise<Sample> => {
      const c0 = process.cpuUsage();
      const w0 = now();
      for (let i = 0; i < passes; i++) await peakSession.run(peakFeeds);
      const c = process.cpuUsage(c0);
      const wallMs = now() - w0;
      return { cpuMs: (c.user + c.system) / 1000, wallMs, regen: 0, perturb: 0, fwd: wallMs, passes };
    };
    for (const p of prepared) {
      const ours = await OrtSession.create(p.artifact);
      const plain = await OrtSession.create(p.artifact, { graph: 'plain' });
      ours.setBatch(p.batch);
      plain.setBatch(p.batch);
      const scratch = new Float32Array(p.weights.length);
      try {
        // ---- 1. equality on the same weights and batch
        const logitsFile = path.join(dir, `${p.entry.id}.torch-logits.f32`);
        const chk = await tuned.call<{ loss: number; layout_max_diff: number }>({ cmd: 'check', model: p.entry.id, out: logitsFile });
        const raw = readFileSync(logitsFile);
        const theirs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const mine = await ours.logits(p.weights);
        const oursLoss = await ours.loss(p.weights);
        let maxAbs = 0;
        let maxLogit = 0;
        for (let i = 0; i < mine.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(mine[i]! - theirs[i]!));
          maxLogit = Math.max(maxLogit, Math.abs(mine[i]!));
        }
        const ok =
          theirs.length === mine.length &&
          maxAbs <= 1e-4 * Math.max(1, maxLogit) &&
          Math.abs(oursLoss - chk.loss) <= 1e-5 * Math.max(1, oursLoss) &&
          chk.layout_max_diff <= 1e-4 * Math.max(1, maxLogit);
        log(
          `  ${p.entry.label}: equality check ${ok ? 'passed' : 'FAILED'}: loss ours ${oursLoss.toFixed(7)} vs torch ${chk.loss.toFixed(7)}, ` +
            `max |Δlogit| ${maxAbs.toExponential(2)} (max |logit| ${maxLogit.toFixed(3)}); PyTorch's timed layouts vs its NCHW ${chk.layout_max_diff.toExponential(2)}`,
        );
        if (!ok) throw new Error(`${p.entry.id}: PyTorch and ours disagree on the same weights; not timing a different model`);

        // ---- 2. interleaved timing
        let k = 0;
        const contenders: { label: string; run: (passes: number) => Promise<Sample>; passes: number; samples: Sample[] }[] = [];
        const ortRun = (s: OrtSession) => async (passes: number) => {
          const r = await timeOurs(s, p, scratch, k, passes);
          k += passes;
          return { ...r, passes };
        };
        const torchRun = (proc: TorchProcess, variant: string) => async (passes: number) => {
          const r = await proc.call<{ cpu_s: number; wall_s: number; regen_s: number; perturb_s: number; forward_s: number }>({
            cmd: 'time',
            model: p.entry.id,
            passes,
            variant,
          });
          return { cpuMs: r.cpu_s * 1000, wallMs: r.wall_s * 1000, regen: r.regen_s * 1000, perturb: r.perturb_s * 1000, fwd: r.forward_s * 1000, passes };
        };
        contenders.push({ label: 'ours (optimised graph)', run: ortRun(ours), passes: 0, samples: [] });
        contenders.push({ label: 'ours (plain graph)', run: ortRun(plain), passes: 0, samples: [] });
        for (const v of TORCH_VARIANTS) contenders.push({ label: `torch ${v}`, run: torchRun(tuned, v), passes: 0, samples: [] });
        if (untuned) contenders.push({ label: 'torch no_grad, default malloc', run: torchRun(untuned, 'no_grad'), passes: 0, samples: [] });
        // the core's peak in the same rounds (same contention): MatMul 1024³, 2.15 GFLOP per "pass"
        contenders.push({ label: 'peak', run: peakRun, passes: 0, samples: [] });
        // warm-up and calibration: passes per round so that each takes ≈ targetMs on-CPU
        for (const c of contenders) {
          await c.run(3);
          const s = await c.run(5);
          c.passes = Math.max(3, Math.round((targetMs * 5) / Math.max(1, s.cpuMs)));
        }
        for (let r = 0; r < rounds; r++) {
          for (const c of contenders) c.samples.push(await c.run(c.passes));
        }
        const peakSamples = contenders.pop()!.samples;
        const peakGflops = median(peakSamples.map((x) => (PEAK_FLOP * x.passes) / x.cpuMs / 1e6));
        const rates = contenders.map((c) => rateOf(c.label, c.samples));
        const oursRate = rates[0]!;
        const torchRates = rates.slice(2).map((rate, i) => ({
          ...rate,
          variant: i < TORCH_VARIANTS.length ? TORCH_VARIANTS[i]! : 'no_grad',
          malloc: (i < TORCH_VARIANTS.length ? 'tuned' : 'default') as 'tuned' | 'default',
        }));
        const fastest = (ts: typeof torchRates) => ts.reduce((a, b) => (b.passesPerCpuSec > a.passesPerCpuSec ? b : a));
        const best = fastest(torchRates.filter((t) => t.malloc === 'tuned'));
        const bestAsIs = fastest(torchRates.filter((t) => t.malloc === 'tuned' && MODEL_AS_IS.has(t.variant)));
        const bestIndex = 2 + torchRates.indexOf(best);
        const paired = contenders[0]!.samples.map((s, i) => {
          const t = contenders[bestIndex]!.samples[i]!;
          return s.passes / s.cpuMs / (t.passes / t.cpuMs);
        });
        const cost = forwardCost(p.entry.config);
        const result: PeerResult = {
          model: p.entry.id,
          label: p.entry.label,
          params: p.model.layout.size,
          batch: BATCH,
          mflopPerPass: (2 * cost.macs * BATCH) / 1e6,
          torch: { version: info.torch, python: info.python, threads: info.threads, mkldnn: info.mkldnn },
          check: { oursLoss, torchLoss: chk.loss, maxAbsLogitDiff: maxAbs, maxLogit, ok },
          ours: oursRate,
          oursPlain: rates[1]!,
          torchVariants: torchRates,
          torchBest: best.variant,
          ratioModelAsIs: oursRate.passesPerCpuSec / bestAsIs.passesPerCpuSec,
          torchBestModelAsIs: bestAsIs.variant,
          ratio: oursRate.passesPerCpuSec / best.passesPerCpuSec,
          ratioWall: oursRate.passesPerSec / best.passesPerSec,
          ratioPaired: median(paired),
          ratioPairedMin: Math.min(...paired),
          ratioPairedMax: Math.max(...paired),
          peakGflops,
          rounds,
        };
        log(
          `  ${p.entry.label}: ours ${fmtNum(oursRate.passesPerCpuSec)} passes/CPU-s vs PyTorch (${best.variant}) ` +
            `${fmtNum(best.passesPerCpuSec)}: ${result.ratio.toFixed(2)}× (paired rounds ${result.ratioPaired.toFixed(2)}×, ` +
            `range ${result.ratioPairedMin.toFixed(2)}–${result.ratioPairedMax.toFixed(2)}; wall: ${fmtNum(oursRate.passesPerSec)} vs ${fmtNum(best.passesPerSec)}, ${result.ratioWall.toFixed(2)}×; ` +
            `vs the model code as is (${bestAsIs.variant}) ${result.ratioModelAsIs!.toFixed(2)}×)`,
        );
        out.push(result);
      } finally {
        await ours.dispose();
        await plain.dispose();
      }
    }
  } finally {
    await releasePeak();
    await tuned.close();
    await untuned?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The peer table (also used by bench/run.ts). */
export function peerTable(results: readonly PeerResult[]): Table | null {
  if (!results.length) return null;
  const rows: (string | number)[][] = [];
  for (const r of results) {
    const all = [r.ours, r.oursPlain, ...r.torchVariants.map((t) => ({ ...t, label: `PyTorch ${t.variant}${t.malloc === 'default' ? ' (default malloc)' : ''}` }))];
    for (const c of all) {
      rows.push([
        r.label,
        c.label.replace(/^torch /, 'PyTorch '),
        c.passesPerCpuSec,
        c.passesPerSec,
        (r.mflopPerPass * c.passesPerCpuSec) / 1e3,
        r.peakGflops ? `${((100 * r.mflopPerPass * c.passesPerCpuSec) / 1e3 / r.peakGflops).toFixed(0)}%` : '—',
        c.regenMs,
        c.perturbMs,
        c.forwardMs,
        c === r.ours
          ? `**${r.ratio.toFixed(2)}×** (paired ${r.ratioPaired?.toFixed(2) ?? '—'}×, ${r.ratioPairedMin?.toFixed(2) ?? '?'}–${r.ratioPairedMax?.toFixed(2) ?? '?'}; wall ${r.ratioWall.toFixed(2)}×)`
          : '',
        c === r.ours && r.ratioModelAsIs !== undefined ? `${r.ratioModelAsIs.toFixed(2)}× (${r.torchBestModelAsIs})` : '',
      ]);
    }
  }
  const t = results[0]!.torch;
  return {
    title: `Side by side with PyTorch ${t.version}: BAFFLE client passes at batch ${results[0]!.batch}, one thread each, same run`,
    head: ['model', 'implementation', 'passes/s on-CPU', 'passes/s wall', 'GFLOP/s on-CPU', '% of core peak', 'regen ms', 'perturb ms', 'forward ms', 'ours / best PyTorch', 'ours / best PyTorch, model code as is'],
    rows,
    notes: [
      'One pass = regenerate z_k + perturb + forward (loss) with fresh weights. Ours: perturbInto (regeneration fused with W + σz) → OrtSession.loss; the optimised graph includes the gather into the NCHWc weight layout.',
      "PyTorch: noise.normal_() → torch.add(base, noise, alpha=σ, out=flat) (the model's parameters are views into flat) → cross_entropy(forward(x)); malloc thresholds raised via GLIBC_TUNABLES unless marked; torch.set_num_threads(1).",
      'Equality checked first on the same weights and batch: ' +
        results.map((r) => `${r.label} max |Δlogit| ${r.check.maxAbsLogitDiff.toExponential(1)}, Δloss ${Math.abs(r.check.oursLoss - r.check.torchLoss).toExponential(1)}`).join('; ') +
        '.',
      `% of core peak: against a single-threaded MatMul 1024³ through onnxruntime timed in the same rounds (${results.map((r) => `${fmtNum(r.peakGflops ?? NaN)}`).join(' / ')} GFLOP/s on-CPU); a lower bound of the core's peak when the machine is shared, so well-blocked convolutions can exceed it.`,
      '"best PyTorch" is the fastest tuned variant; channels_last_stem (NHWC from the first convolution on, a two-line change to the model code) is the one that gets oneDNN\'s NHWC kernels with one input channel. "model code as is": the fastest of no_grad, inference_mode and channels_last input, the tuning issue 5 names (malloc thresholds raised).',
      `Rates are medians over ${results[0]!.rounds} interleaved rounds; "on-CPU" divides by the working thread's CPU time (robust to other jobs on the machine; ours counts the whole Node process, PyTorch only its working thread). "paired": median and range over rounds of ours ÷ the best PyTorch variant in the same round. Phase times are on-CPU ms per pass (for ours, regen includes the perturbation).`,
    ],
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const flag = (f: string) => argv.includes(f);
  const value = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = flag('--quick');
  const results = await benchPeer({
    install: flag('--install'),
    models: value('--models')?.split(','),
    rounds: quick ? 3 : 7,
    targetMs: quick ? 150 : 300,
    untuned: !flag('--no-untuned'),
  });
  const table = peerTable(results);
  if (table) console.log(`\n${textTable(table)}`);
  const json = value('--json');
  if (json) writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
}
