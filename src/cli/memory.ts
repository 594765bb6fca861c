// `baffle memory`: peak memory of one client doing one training step, BAFFLE vs backprop, for the same model
// and minibatch. Every measurement runs in a fresh process so nothing one engine allocated is counted for
// another. Modes:
//
//   idle         node + tsx + the minibatch, no engine: the floor every other mode stands on
//   baffle-ort   the BAFFLE client as shipped: onnxruntime-node, K+1 forward passes on perturbed weights
//   baffle-tfjs  the same K+1 forward passes on the backprop baseline's engine (tfjs), no gradient tape:
//                isolates the algorithm from the engine
//   bp-tfjs      the backprop client: one forward + backward pass (tfjs autograd), gradient read back
//
// Each child reports its resident set (at start, with the engine loaded, after the steps), its peak resident
// set (VmHWM), and for tfjs the engine's own accounting: bytes held in tensors and the peak bytes
// of one step (tf.profile), plus the size of the wasm heap. ONNX Runtime exposes no such counter.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type RunConfig } from '../core/config/index.ts';
import { configFromArgs } from '../node/config.ts';
import { writeAtomic, writeJson } from '../node/files.ts';
import { UserError } from '../core/errors.ts';

export const MEMORY_MODES = ['idle', 'baffle-ort', 'baffle-tfjs', 'bp-tfjs'] as const;
export type MemoryMode = (typeof MEMORY_MODES)[number];

export interface MemorySample {
  mode: MemoryMode;
  /** Resident set right after start-up (node, tsx, the minibatch), bytes. */
  rssStart: number;
  /** Resident set once the engine and model are loaded, bytes. */
  rssLoaded: number;
  /** Resident set after the measured steps, bytes. */
  rssEnd: number;
  /** Peak resident set of the whole process (Linux VmHWM; getrusage maxrss elsewhere), bytes. */
  rssPeak: number;
  /** tfjs: bytes held in tensors after a step (weights, batch, …). */
  engineBytes: number | null;
  /** tfjs: peak tensor bytes during one step (tf.profile). */
  enginePeakBytes: number | null;
  /** tfjs wasm backend: size of the wasm linear memory (heap), bytes. */
  wasmHeapBytes: number | null;
  /** Median wall time of one client step, ms. */
  stepMs: number | null;
  /** Forward passes of one step. */
  forwardPasses: number;
}

export interface MemoryReport {
  format: 'baffle-memory/1';
  command: string;
  model: string;
  params: number;
  dataset: string;
  batch: number;
  K: number;
  scheme: string;
  steps: number;
  tfjsBackend: string;
  node: string;
  cpus: number;
  /** One-minute load average when the measurement started (other jobs slow the step times, not the memory). */
  loadAvg1?: number;
  samples: MemorySample[];
}

export const MEMORY_USAGE = `  baffle memory [--config FILE] [--set key=value]... [--out DIR] [--steps N] [--modes a,b,...]
      Peak memory of one client step, BAFFLE (forward passes only) vs backprop, each in a fresh process,
      for the model, dataset, batchSize, K and scheme of the configuration. Writes memory.json and
      memory.md to DIR (default runs/memory-<model>); \`baffle report\` includes them.
`;

// ---------------------------------------------------------------------------------------------------
// Child side

interface ChildArgs {
  mode: MemoryMode;
  config: RunConfig;
  batchFile: string;
  batch: number;
  steps: number;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function child(args: ChildArgs): Promise<MemorySample> {
  const rssStart = process.memoryUsage().rss;
  const raw = readFileSync(args.batchFile);
  const { loadRunModel } = await import('../node/model/load.ts');
  const { artifact, zoo, zooWeights } = await loadRunModel(args.config);
  const { exampleSize } = await import('../core/model/artifact.ts');
  const xBytes = args.batch * exampleSize(artifact) * 4;
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + xBytes));
  const y = new Uint8Array(raw.buffer.slice(raw.byteOffset + xBytes, raw.byteOffset + xBytes + args.batch));
  const { K, sigma, scheme } = args.config;
  const times: number[] = [];
  const sample: MemorySample = {
    mode: args.mode,
    rssStart,
    rssLoaded: rssStart,
    rssEnd: rssStart,
    rssPeak: 0,
    engineBytes: null,
    enginePeakBytes: null,
    wasmHeapBytes: null,
    stepMs: null,
    forwardPasses: 0,
  };
  const timed = async (f: () => unknown) => {
    for (let s = 0; s <= args.steps; s++) {
      const t = performance.now();
      await f();
      if (s > 0) times.push(performance.now() - t); // the first step warms up
    }
  };

  if (args.mode === 'baffle-ort') {
    const { OrtSession } = await import('../node/engine/ort.ts');
    const { estimate } = await import('../core/zo/task.ts');
    const session = await OrtSession.create(artifact);
    const weights = artifact.initial;
    const scratch = new Float32Array(weights.length);
    session.setBatch({ x, y, count: args.batch });
    sample.rssLoaded = process.memoryUsage().rss;
    let step = 0;
    await timed(async () => {
      const est = await estimate(session, weights, scratch, { seed: 1000 + step++, K, sigma, scheme });
      sample.forwardPasses = est.forwardPasses;
    });
  } else if (args.mode === 'baffle-tfjs' || args.mode === 'bp-tfjs') {
    const { TfjsModel } = await import('../node/baseline/model.ts');
    const { perturbInto } = await import('../core/rng/directions.ts');
    if (!zoo || !zooWeights) throw new UserError(`memory: mode '${args.mode}' runs the zoo models in tfjs; an imported ONNX model has the 'baffle-ort' mode only`);
    const m = await TfjsModel.create(zoo.config);
    const weights = zooWeights;
    m.setWeights(weights);
    m.setBatch(x, y, args.batch);
    sample.rssLoaded = process.memoryUsage().rss;
    const grad = new Float32Array(weights.length);
    const scratch = new Float32Array(weights.length);
    let step = 0;
    const oneStep =
      args.mode === 'bp-tfjs'
        ? () => {
            m.lossAndGradient(grad);
            sample.forwardPasses = 1;
          }
        : () => {
            // K+1 (forward) or 2K (central) forward passes on perturbed weights, as a BAFFLE client does them.
            const seed = 1000 + step++;
            let passes = 0;
            if (scheme === 'forward') {
              m.setWeights(weights);
              m.loss();
              passes++;
            }
            for (const sign of scheme === 'forward' ? [1] : [1, -1]) {
              for (let k = 0; k < K; k++) {
                perturbInto(scratch, weights, sign * sigma, seed, k);
                m.setWeights(scratch);
                m.loss();
                passes++;
              }
            }
            sample.forwardPasses = passes;
          };
    await timed(oneStep);
    const profile = await m.tf.profile(() => {
      oneStep();
    });
    sample.enginePeakBytes = profile.peakBytes;
    sample.engineBytes = m.memory().numBytes;
    const backend = m.tf.backend() as { wasm?: { HEAPU8: Uint8Array } };
    sample.wasmHeapBytes = backend.wasm ? backend.wasm.HEAPU8.byteLength : null;
  }
  sample.stepMs = median(times);
  sample.rssEnd = process.memoryUsage().rss;
  sample.rssPeak = peakRss();
  return sample;
}

/**
 * Peak resident set of this process. On Linux, VmHWM of /proc/self/status: the high-water mark of the current
 * address space, which starts afresh at exec. (getrusage's maxrss does not: it carries the parent's peak across
 * fork + exec, so a parent that holds a large dataset would inflate every child's figure.)
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

// ---------------------------------------------------------------------------------------------------
// Parent side

export function fmtMiB(bytes: number | null): string {
  return bytes === null ? '—' : (bytes / 2 ** 20).toFixed(1);
}

/** The sample of one client mode, if it was measured. */
export function sampleOf(r: MemoryReport, mode: MemoryMode): MemorySample | undefined {
  return r.samples.find((s) => s.mode === mode);
}

/** How much the resident set grew during the measured steps: peak above the process with engine and model loaded. */
export function stepGrowth(s: MemorySample): number {
  return Math.max(0, s.rssPeak - s.rssLoaded);
}

/** The markdown table of a memory report (also used by `baffle report`). */
export function memoryMarkdown(r: MemoryReport): string {
  const idle = sampleOf(r, 'idle');
  const rows = r.samples.map((s) => {
    const over = idle && s.mode !== 'idle' ? fmtMiB(s.rssPeak - idle.rssPeak) : '—';
    const growth = s.mode === 'idle' ? '—' : fmtMiB(stepGrowth(s));
    return (
      `| ${s.mode} | ${s.forwardPasses || '—'} | ${fmtMiB(s.rssPeak)} | ${over} | ${fmtMiB(s.rssLoaded)} | ${growth} | ` +
      `${fmtMiB(s.enginePeakBytes)} | ${fmtMiB(s.wasmHeapBytes)} | ${s.stepMs === null ? '—' : s.stepMs.toFixed(1)} |`
    );
  });
  return [
    `Model ${r.model} (${r.params.toLocaleString('en-US')} parameters), ${r.dataset} minibatch of ${r.batch}, ` +
      `K = ${r.K} (${r.scheme} differences), tfjs backend ${r.tfjsBackend}, ${r.steps} measured steps per mode, ` +
      `each mode in a fresh process (Node ${r.node}, ${r.cpus} CPUs).`,
    '',
    '| client mode | forward passes / step | peak RSS, MiB | peak RSS over idle, MiB | RSS with engine and model loaded, MiB | peak RSS above loaded (the steps), MiB | engine peak tensor memory in one step, MiB | wasm heap, MiB | ms / step |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Made by: \`${r.command}\``,
  ].join('\n');
}

export async function memoryCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      steps: { type: 'string', default: '3' },
      modes: { type: 'string', default: MEMORY_MODES.join(',') },
      child: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(MEMORY_USAGE);
    return 0;
  }
  if (values.child) {
    const args = JSON.parse(readFileSync(values.child, 'utf8')) as ChildArgs;
    const sample = await child(args);
    process.stdout.write(`${JSON.stringify(sample)}\n`);
    return 0;
  }
  const config = configFromArgs(values.config, values.set ?? []);
  const modes = values.modes!.split(',').map((m) => m.trim()) as MemoryMode[];
  for (const m of modes) {
    if (!MEMORY_MODES.includes(m)) throw new UserError(`--modes: unknown mode '${m}' (use ${MEMORY_MODES.join(', ')})`);
  }
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps must be a positive integer, got ${values.steps}`);
  const report = await measureMemory(config, modes, steps, `baffle memory ${argv.join(' ')}`.trim());
  const outDir = resolve(values.out ?? `runs/memory-${config.model}`);
  writeJson(join(outDir, 'memory.json'), report);
  writeAtomic(join(outDir, 'memory.md'), `${memoryMarkdown(report)}\n`);
  process.stdout.write(`${memoryMarkdown(report)}\n\nwritten: ${join(outDir, 'memory.json')}, memory.md\n`);
  return 0;
}

/** Runs each mode in a fresh child process and collects the samples. */
export async function measureMemory(config: RunConfig, modes: readonly MemoryMode[], steps: number, command: string): Promise<MemoryReport> {
  const { loadRunData, loadRunModel } = await import('../node/model/load.ts');
  const { exampleSize } = await import('../core/model/artifact.ts');
  const { tfjsBackendFromEnv } = await import('../node/baseline/tfjs.ts');
  const { artifact } = await loadRunModel(config);
  const dataset = loadRunData(config, artifact);
  const params = artifact.params;
  const batch = Math.min(config.batchSize, dataset.train.count);
  const size = exampleSize(artifact);
  // Evenly spaced training examples (the split is ordered by class), written once for every child.
  const x = new Float32Array(batch * size);
  const y = new Uint8Array(batch);
  const stride = Math.floor(dataset.train.count / batch);
  for (let i = 0; i < batch; i++) {
    x.set(dataset.train.x.subarray(i * stride * size, (i * stride + 1) * size), i * size);
    y[i] = dataset.train.y[i * stride]!;
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'baffle-memory-'));
  try {
    const batchFile = join(dir, 'batch.bin');
    writeFileSync(batchFile, Buffer.concat([Buffer.from(x.buffer), Buffer.from(y.buffer)]));
    const tsx = import.meta.resolve('tsx');
    const samples: MemorySample[] = [];
    for (const mode of modes) {
      const argsFile = join(dir, `${mode}.json`);
      const args: ChildArgs = { mode, config, batchFile, batch, steps };
      writeFileSync(argsFile, JSON.stringify(args));
      const p = spawnSync(process.execPath, ['--import', tsx, new URL(import.meta.url).pathname, '--child', argsFile], {
        encoding: 'utf8',
        maxBuffer: 64 * 2 ** 20,
      });
      if (p.status !== 0) throw new Error(`memory measurement '${mode}' failed (exit ${p.status}):\n${p.stderr}`);
      samples.push(JSON.parse(p.stdout.trim().split('\n').pop()!) as MemorySample);
    }
    return {
      format: 'baffle-memory/1',
      command,
      model: artifact.source.kind === 'zoo' ? artifact.source.description : artifact.source.file,
      params,
      dataset: config.dataset,
      batch,
      K: config.K,
      scheme: config.scheme,
      steps,
      tfjsBackend: tfjsBackendFromEnv(),
      node: process.versions.node,
      cpus: os.cpus().length,
      loadAvg1: os.loadavg()[0],
      samples,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// As a child process: `node --import tsx src/cli/memory.ts --child ARGS.json`.
if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await memoryCommand(process.argv.slice(2));
}
