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
import { join } from 'node:path';
import type { RunConfig } from '../core/config/index.ts';
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

// As a child process: `node --import tsx src/app/memory.ts --child ARGS.json` prints its sample as JSON.
if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--child');
  const args = JSON.parse(readFileSync(process.argv[at + 1]!, 'utf8')) as ChildArgs;
  process.stdout.write(`${JSON.stringify(await child(args))}\n`);
}
