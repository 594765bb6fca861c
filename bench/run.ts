/**
 * The project's performance benchmark: `npm run bench` (full, ~3–5 min on 2 vCPU) or
 * `npm run bench -- --quick` (~1 min). `--only <section>[,<section>]` (repeatable) runs some sections; their
 * results replace the same sections of bench/results/latest.json, and latest.md is rebuilt from the merged set.
 *
 * Sections: peak (single-thread MatMul 512³ and run() overhead), rng (regeneration ns/element), client
 * (forward passes/s per zoo model, 1 and all workers), server (ĝ rebuild ns/param/direction), e2e (s per
 * FedSGD step of simulate()), tta (opt-in, `--only tta`, ~10–40 min: time to accuracy of the default and the
 * paper's LeNet recipe with each kind of direction), ort (session-option variants), nchwc (experiment: onnxruntime's NCHWc graph with
 * the weights fed as inputs), browser (a client step in Chromium on onnxruntime-web). See docs/performance.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../src/node/data/index.ts';
import { defaultWorkers } from '../src/node/sim/simPool.ts';
import { benchClient, type ClientResult } from './client.ts';
import { benchE2e, RECIPES, type E2eResult } from './e2e.ts';
import { benchTta, TTA_RECIPES, type TtaResult } from './tta.ts';
import { selfCheck } from './flops.ts';
import { fmtNum, markdownTable, now, textTable, zooEntry, ZOO, type Table } from './lib.ts';
import { benchOrtOptions, benchPeak, benchRunOverhead, VARIANTS, type PeakResult, type VariantResult } from './ort.ts';
import { benchNchwc, type NchwcResult } from './nchwc.ts';
import { benchPeer, peerTable, type PeerResult } from './peer.ts';
import { benchConvs, convsTable, type ConvsResult } from './convs.ts';
import { benchScaling, renderScalingPng, scalingTable, type ScalingPoint } from './scaling.ts';
import { benchRng, type RngBenchResult } from './rng.ts';
import { benchServer, type ServerResult } from './server.ts';
import { benchBrowser, browserTable, type BrowserResult } from './browser.ts';

const SECTIONS = ['peak', 'rng', 'client', 'server', 'e2e', 'tta', 'ort', 'nchwc', 'peer', 'convs', 'scaling', 'browser'] as const;
type Section = (typeof SECTIONS)[number];

interface SectionMeta {
  at: string;
  quick: boolean;
  seconds: number;
  /** 1-minute load average when the section started (other jobs on the machine). */
  loadavg: number;
}

interface Results {
  machine: {
    cpu: string;
    cores: number;
    node: string;
    onnxruntime: string;
    platform: string;
  };
  meta: Partial<Record<Section, SectionMeta>>;
  peak?: PeakResult & { runOverheadUs: number };
  rng?: RngBenchResult & { n: number };
  client?: ClientResult[];
  server?: ServerResult[];
  e2e?: E2eResult[];
  tta?: TtaResult[];
  ort?: VariantResult[];
  nchwc?: NchwcResult[];
  peer?: PeerResult[];
  convs?: ConvsResult[];
  scaling?: ScalingPoint[];
  browser?: BrowserResult;
}

function parseArgs(argv: string[]): { quick: boolean; only: Set<Section>; render: boolean; installTorch: boolean } {
  let quick = false;
  let render = false;
  let installTorch = false;
  const only = new Set<Section>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--render') render = true;
    else if (a === '--install-torch') installTorch = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!v) throw new Error('--only needs a section name');
      for (const s of v.split(',')) {
        if (!(SECTIONS as readonly string[]).includes(s)) {
          throw new Error(`unknown section '${s}' (sections: ${SECTIONS.join(', ')})`);
        }
        only.add(s as Section);
      }
    } else if (a === '--help' || a === '-h') {
      console.log(
        `usage: npm run bench -- [--quick] [--only ${SECTIONS.join('|')}]... [--install-torch] | --render (rebuild latest.md and scaling.png from latest.json)`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (use --quick, --only <section>, --install-torch, --render)`);
  }
  return { quick, only, render, installTorch };
}

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const JSON_PATH = `${RESULTS_DIR}latest.json`;
const MD_PATH = `${RESULTS_DIR}latest.md`;
const PNG_PATH = `${RESULTS_DIR}scaling.png`;

/** CPU model, plus family and vector width from /proc/cpuinfo where the model name is vague ("AMD EPYC"). */
function cpuName(): string {
  const model = os.cpus()[0]?.model.trim() ?? 'unknown';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const family = /^cpu family\s*:\s*(\d+)/m.exec(info)?.[1];
    const flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
    const simd = / avx512f /.test(`${flags} `) ? 'AVX-512' : / avx2 /.test(`${flags} `) ? 'AVX2' : 'no AVX2';
    return `${model} (family ${family ?? '?'}, ${simd})`;
  } catch {
    return model;
  }
}

function machine(): Results['machine'] {
  const require = createRequire(import.meta.url);
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  return {
    cpu: cpuName(),
    cores: os.availableParallelism(),
    node: process.version,
    onnxruntime: ortVersion,
    platform: `${os.platform()} ${os.release()}`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// tables

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

function peakTable(r: Results): Table | null {
  if (!r.peak) return null;
  const p = r.peak;
  return {
    title: 'Machine peak: single-threaded MatMul through onnxruntime-node',
    head: ['kernel', 'ms/run', 'GFLOP/s wall (median)', 'GFLOP/s wall (best)', 'GFLOP/s on-CPU (median)', 'GFLOP/s on-CPU (best): core peak'],
    rows: [[`MatMul ${p.m}×${p.k}×${p.n} fp32`, p.msPerRun, p.gflops, p.bestGflops, p.cpuGflops, p.bestCpuGflops ?? '—']],
    notes: [
      `fixed cost of one session.run() (Identity on 1 float): ${fmtNum(p.runOverheadUs)} µs`,
      '"achieved % of W×peak" (client table) divides by the median wall figure; every "% of core peak" by the best on-CPU figure (the core\'s peak; the median is dragged down by other jobs on the shared core).',
    ],
  };
}

function rngTable(r: Results): Table | null {
  if (!r.rng) return null;
  const g = r.rng;
  const lenet = 26_730;
  const mlp = 132_490;
  const wrn = 302_490;
  const row = (name: string, ns: number, cpu: number): (string | number)[] => [
    name,
    ns,
    cpu,
    (cpu * lenet) / 1e3,
    (cpu * mlp) / 1e3,
    (cpu * wrn) / 1e3,
  ];
  return {
    title: `Direction regeneration, one core (n = ${g.n.toExponential(0)}, median)`,
    head: ['operation', 'ns/element (wall)', 'ns/element (on-CPU)', 'µs per LeNet direction', 'µs per MLP direction', 'µs per WRN-10-2 direction'],
    rows: [
      row('fillDirection (z_k)', g.nsPerElementFill, g.cpuNsPerElementFill),
      row('perturbInto (W + σ z_k, client)', g.nsPerElementPerturb, g.cpuNsPerElementPerturb),
      row('accumulateDirection (g += c z_k, f64, server)', g.nsPerElementAccumulate, g.cpuNsPerElementAccumulate),
    ],
    notes: ['µs per direction use the on-CPU figure (LeNet 26,730, MLP 132,490, WRN-10-2 302,490 parameters).'],
  };
}

function clientTable(r: Results): Table | null {
  if (!r.client?.length) return null;
  const peak = r.peak?.gflops;
  const cpuPeak = r.peak?.bestCpuGflops ?? r.peak?.cpuGflops;
  const rows = r.client.map((c) => [
    c.label,
    c.perturbation === 'lowrank' ? `lowrank r=${c.rank ?? 1}` : 'gaussian',
    c.params,
    (2 * c.macsPerExample * c.batch) / 1e6,
    c.workers,
    c.graph ?? '—',
    c.passesPerSec,
    `±${pct(c.spread)}`,
    c.passesPerCpuSec,
    c.fractionOfBatched === undefined ? '—' : pct(c.fractionOfBatched),
    c.regenMsPerPass,
    c.gatherMsPerPass ?? NaN,
    c.runMsPerPass ?? c.forwardMsPerPass,
    c.reduceMsPerStep === undefined ? '—' : c.reduceMsPerStep * 1000,
    pct(c.regenShare),
    c.gflops,
    peak ? pct(c.gflops / (peak * c.workers)) : '—',
    c.forwardGflopsOnCpu,
    cpuPeak ? pct(c.forwardGflopsOnCpu / cpuPeak) : '—',
    pct(c.waitShare),
  ]);
  return {
    title: `Client step: forward passes at batch ${r.client[0]!.batch}, fresh perturbed weights every pass`,
    head: [
      'model',
      'directions',
      'params',
      'MFLOP/pass',
      'workers',
      'graph',
      'passes/s (wall)',
      'spread',
      'passes/s on-CPU',
      'batched inference ÷ step',
      'regen+perturb ms',
      'gather ms',
      'run ms',
      'reduce µs per 100 losses',
      'regen share',
      'achieved GFLOP/s (wall)',
      'achieved % of W×peak',
      'fwd GFLOP/s/core on-CPU',
      'fwd % of core peak',
      'run-queue wait',
    ],
    rows,
    notes: [
      'MFLOP/pass = 2 × MACs/example (FlopCounter over the zoo definition) × batch; passes/s are medians over the repetitions.',
      'Per pass, per worker (wall ms): regen+perturb = perturbInto (z_k is regenerated and added in one fused pass, never stored); gather = flat weights → the engine layout (optimised graph); run = onnxruntime session.run incl. the binding. reduce = the workers\' losses → one vector → a_k = (L_k − L_0)/σ, µs per 100 losses (a client step of K = 100).',
      'achieved GFLOP/s = passes/s × MFLOP/pass (wall clock, whole loop incl. regeneration), as a share of workers × the MatMul peak (median).',
      '"passes/s on-CPU" divides by each worker thread\'s on-CPU time (/proc/thread-self/schedstat): the rate with an idle core per worker.',
      '"fwd GFLOP/s/core on-CPU": gather + run per busy core, against the MatMul peak measured on on-CPU time.',
      '"run-queue wait" is the share of runnable time the workers waited for a CPU: how much other jobs held the bench back.',
      ...r.client.flatMap((c) =>
        c.memberBatched
          ? [
              `${c.label}, lowrank r=${c.rank ?? 1}, member-batched step (memberBatch: ${c.memberBatched.members} members × ${c.memberBatched.batch} in one engine run): ` +
                `${fmtNum(c.memberBatched.passesPerCpuSec)} passes/s on-CPU, ${fmtNum(c.memberBatched.stepCpuMs)} ms per step, batched inference ÷ step ${pct(c.memberBatched.fractionOfBatched)}.`,
            ]
          : [],
      ),
      '"batched inference ÷ step" (1 worker): on-CPU time of one unperturbed forward pass over (K+1)·B = 101 × 32 examples in the same engine, divided by the on-CPU time of a client step of K+1 = 101 passes at batch 32 (1 = a client step at the speed of inference). lowrank r=1: perturbLowRank (W + σ·A Bᵀ per weight matrix from (m+p) draws; docs/directions.md), still one engine run per direction.',
    ],
  };
}

function serverTable(r: Results): Table | null {
  if (!r.server?.length) return null;
  return {
    title: 'Server step: rebuild ĝ from K scalars (SimPool.reconstruct, Float64 accumulator)',
    head: ['parameters', 'n', 'directions', 'K × sets', 'workers', 'ms', 'spread', 'ns/param/direction', 'ns/param/direction × workers', 'on-CPU ns/param/direction'],
    rows: r.server.map((s) => [
      s.layout ?? 'one vector',
      s.n.toExponential(0),
      s.perturbation === 'lowrank' ? `lowrank r=${s.rank ?? 1}` : 'gaussian',
      `${s.K} × ${s.sets ?? 1}`,
      s.workers,
      s.ms,
      `±${pct(s.spread)}`,
      s.nsPerParamDir,
      s.nsPerParamDirPerCore,
      s.cpuNsPerParamDir,
    ]),
    notes: [
      'Wall clock through the worker pool (messages included). "on-CPU" is process CPU time (all threads) per parameter per direction: the cost per busy core.',
      'K × sets: K directions per set; 10 sets = the default recipe\'s per-client seeds (10 clients × K = 100: 1,000 directions per step). lowrank: ĝ = A·diag(a)·Bᵀ per weight matrix (src/core/rng/lowrank.ts), biases Gaussian; docs/directions.md.',
    ],
  };
}

function e2eTable(r: Results): Table | null {
  if (!r.e2e?.length) return null;
  const rows = r.e2e.map((e) => {
    let predicted: string | number = '—';
    const client = r.client?.find((c) => c.model === e.model && c.workers === e.workers && (c.perturbation ?? 'gaussian') === 'gaussian');
    if (client && r.rng && !e.recipe.endsWith('-lowrank')) {
      predicted =
        e.passesPerStep / client.passesPerCpuSec + (e.directionsPerStep * e.params * r.rng.cpuNsPerElementAccumulate * 1e-9) / e.workers;
    }
    return [
      e.label,
      e.params,
      e.workers,
      e.steps,
      e.secPerStep,
      `±${pct(e.spread)}`,
      e.passesPerStep,
      e.passesPerSec,
      e.directionsPerStep,
      e.cpuSecPerStep,
      e.idleEstimateSecPerStep,
      predicted,
    ];
  });
  return {
    title: 'End to end: seconds per FedSGD step of simulate() (first step and evaluation excluded)',
    head: [
      'recipe',
      'params',
      'workers',
      'steps timed',
      's/step (median)',
      'spread',
      'passes/step',
      'passes/s',
      'directions/step',
      'CPU s/step',
      'idle-machine estimate s/step',
      'predicted from parts (on-CPU)',
    ],
    rows,
    notes: [
      'CPU s/step = process on-CPU seconds per step (all threads); idle-machine estimate = that ÷ workers (assumes the work spreads evenly).',
      'predicted from parts = passes/step ÷ client "passes/s on-CPU" (same model, same workers) + directions × n × on-CPU accumulate ns/element ÷ workers: the client and server sections should add up to the idle-machine estimate.',
    ],
  };
}

function ortTable(r: Results): Table | null {
  if (!r.ort?.length) return null;
  const models = [...new Set(r.ort.map((o) => o.model))];
  const head = ['variant', ...models.flatMap((m) => [`${m} ms`, `${m} ×`, `${m} × on-CPU`])];
  const rows = VARIANTS.filter((v) => r.ort!.some((o) => o.variant === v.id)).map((v) => [
    v.label,
    ...models.flatMap((m) => {
      const o = r.ort!.find((x) => x.model === m && x.variant === v.id);
      if (!o) return ['—', '—', '—'];
      return [o.ms, o.speedup.toFixed(2), o.cpuSpeedup === null ? '—' : o.cpuSpeedup.toFixed(2)];
    }),
  ]);
  return {
    title: 'onnxruntime session options: forward-only ms per pass at batch 32, one session, main thread',
    head,
    rows,
    notes: [
      '× = speed-up over the project\'s options (wall clock; > 1 is faster); "× on-CPU" compares process on-CPU time (robust to other jobs; not shown for 2 threads, where it counts both).',
      'Variants are interleaved round-robin and the median over rounds is reported. Differences within ±10% are noise on a shared machine.',
      '"weights as initializers" bakes one fixed weight vector into the graph: what ORT could do if weights were constants. BAFFLE needs new weights every pass, so it is an upper bound, not an option.',
    ],
  };
}

function nchwcTable(r: Results): Table | null {
  if (!r.nchwc?.length || r.nchwc[0]!.plainMs === undefined) return null;
  return {
    title: "Engine graphs: plain vs onnxruntime's optimised (NCHWc) graph with the weights fed as inputs (one client pass, on-CPU ms)",
    head: ['model', 'plain ms/pass', 'optimised, no GN fold', 'optimised, no explicit padding', 'optimised, one run per batch', 'optimised (default)', 'runs per batch', 'of which gather', 'speed-up', 'GN chains folded', 'convs padded explicitly', 'max rel. Δloss', 'max rel. Δa_k', 'create ms plain / optimised', 'contrib ops'],
    rows: r.nchwc.map((x) => [
      x.label,
      x.plainMs,
      x.noFoldMs,
      x.noPadMs ?? '—',
      x.wholeMs ?? '—',
      x.optimizedMs,
      x.runs ?? '—',
      x.gatherMs,
      `${x.speedup.toFixed(2)}×`,
      x.folded,
      x.padded ?? '—',
      x.maxRelLossDiff.toExponential(1),
      x.maxRelScalarDiff.toExponential(1),
      `${fmtNum(x.createPlainMs)} / ${fmtNum(x.createOptimizedMs)}`,
      x.ops || '—',
    ]),
    notes: [
      'pass = perturbInto + OrtSession.loss at batch 32 on one core (process on-CPU time, median of interleaved rounds); the optimised graph adds the gather into the blocked weight layout.',
      'How: src/node/engine/optimized.ts (index-valued initializers → onnxruntime-optimised graph → its weight tensors become inputs; GroupNorm + activation moved into the blocked layout; inputs of convolutions with pads >= 2 padded by a Pad node, the convolution run unpadded). Built per session (block size depends on the CPU), onnxruntime-node only.',
      'Δ columns: the optimised graph against the plain one (float32 rounding; a_k = ΔL/σ amplifies it by 1/σ = 1e4).',
    ],
  };
}

function ttaTable(r: Results): Table | null {
  if (!r.tta?.length) return null;
  const kb = (b: number) => b / 1024;
  return {
    title: 'Time to accuracy: each recipe trained until its evaluated test accuracy first reaches the target',
    head: ['recipe', 'target', 'reached', 'steps', 'test acc', 'wall s', 'CPU s', 'idle-machine estimate s', 'forward passes', 'KiB up per client', 'MiB down per client'],
    rows: r.tta.map((t) => [
      t.label,
      `${(100 * t.target).toFixed(1)}%`,
      t.reached ? 'yes' : 'no',
      t.steps,
      `${(100 * t.accuracy).toFixed(2)}%`,
      t.wallSec,
      t.cpuSec,
      t.idleEstimateSec,
      t.forwardPasses,
      kb(t.uplinkBytesPerClient),
      kb(t.downlinkBytesPerClient) / 1024,
    ]),
    notes: [
      'Evaluations (the EMA weights on the test split at the run\'s evalEvery, by default every epoch = 25 steps) count in the times, as they do for a user; the first evaluation at or above the target ends the run.',
      'CPU s = process on-CPU seconds from start to that evaluation (all threads); idle-machine estimate = that ÷ workers. Bytes are the run\'s totals ÷ clients (sync = weights: every step downloads the whole model).',
    ],
  };
}

function allTables(r: Results): Table[] {
  return [
    peakTable(r),
    rngTable(r),
    clientTable(r),
    serverTable(r),
    e2eTable(r),
    ttaTable(r),
    ortTable(r),
    nchwcTable(r),
    r.peer ? peerTable(r.peer) : null,
    r.convs ? convsTable(r.convs) : null,
    r.scaling ? scalingTable(r.scaling) : null,
    r.browser ? browserTable(r.browser) : null,
  ].filter(
    (t): t is Table => t !== null,
  );
}

function markdown(r: Results): string {
  const m = r.machine;
  const metaLines = SECTIONS.filter((s) => r.meta[s]).map((s) => {
    const x = r.meta[s]!;
    return `| ${s} | ${x.at} | ${x.quick ? 'quick' : 'full'} | ${x.seconds.toFixed(0)} s | ${x.loadavg.toFixed(2)} |`;
  });
  return [
    '# Benchmark results (latest run)',
    '',
    'Generated by `npm run bench` (bench/run.ts); see docs/performance.md for what is measured and how to read it.',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}, Node ${m.node}, onnxruntime-node ${m.onnxruntime}.`,
    '',
    '| section | finished at (UTC) | mode | took | load avg (1 min) at start |',
    '|---|---|---|---:|---:|',
    ...metaLines,
    '',
    ...allTables(r).flatMap((t) => [markdownTable(t), '']),
    ...(r.scaling?.length ? ['![Seconds per FedSGD step vs K, clients, model size and workers](scaling.png)', ''] : []),
  ].join('\n');
}

function scalingSubtitle(r: Results): string {
  const m = r.meta.scaling;
  return `${r.machine.cpu}, ${r.machine.cores} cores; onnxruntime-node ${r.machine.onnxruntime}${m ? `; ${m.at.slice(0, 16)} UTC, load avg ${m.loadavg.toFixed(1)}` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    process.exitCode = 2;
    return;
  }
  const { quick, only, render, installTorch } = args;
  if (render) {
    const saved = JSON.parse(readFileSync(JSON_PATH, 'utf8')) as Results;
    writeFileSync(MD_PATH, markdown(saved));
    if (saved.scaling?.length) await renderScalingPng(saved.scaling, PNG_PATH, scalingSubtitle(saved));
    for (const t of allTables(saved)) console.log(`${textTable(t)}\n`);
    console.log(`rebuilt ${MD_PATH} from ${JSON_PATH}`);
    return;
  }
  // tta trains whole runs (tens of minutes): only when asked for.
  const run = (s: Section) => (s === 'tta' ? only.has(s) : only.size === 0 || only.has(s));
  selfCheck();
  mkdirSync(RESULTS_DIR, { recursive: true });

  // A partial run (--only) merges into the previous results so latest.md stays complete.
  let results: Results = { machine: machine(), meta: {} };
  if (only.size > 0 && existsSync(JSON_PATH)) {
    try {
      const prev = JSON.parse(readFileSync(JSON_PATH, 'utf8')) as Results;
      results = { ...prev, machine: machine(), meta: { ...prev.meta } };
    } catch {
      // unreadable previous results: start afresh
    }
  }

  const workers = defaultWorkers();
  const t0 = now();
  console.log(
    `baffle bench${quick ? ' (quick)' : ''}: ${results.machine.cpu}, ${results.machine.cores} cores, Node ${process.version}, ` +
      `onnxruntime-node ${results.machine.onnxruntime}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  if (os.loadavg()[0]! > 0.5) {
    console.log('note: the machine is busy with other work; wall-clock figures will be low and noisy (see the on-CPU columns).');
  }

  const section = async (s: Section, body: () => Promise<void>) => {
    if (!run(s)) return;
    const started = now();
    const loadavg = os.loadavg()[0]!;
    process.stdout.write(`\n[${s}] running…\n`);
    await body();
    results.meta[s] = { at: new Date().toISOString(), quick, seconds: (now() - started) / 1000, loadavg };
    const tables = {
      peak: peakTable,
      rng: rngTable,
      client: clientTable,
      server: serverTable,
      e2e: e2eTable,
      tta: ttaTable,
      ort: ortTable,
      nchwc: nchwcTable,
      peer: (x: Results) => (x.peer ? peerTable(x.peer) : null),
      convs: (x: Results) => (x.convs ? convsTable(x.convs) : null),
      scaling: (x: Results) => (x.scaling ? scalingTable(x.scaling) : null),
      browser: (x: Results) => (x.browser ? browserTable(x.browser) : null),
    };
    const table = tables[s](results);
    if (table) console.log(textTable(table));
  };

  await section('peak', async () => {
    const peak = await benchPeak(1024, quick ? 5 : 15, quick ? 80 : 150);
    results.peak = { ...peak, runOverheadUs: await benchRunOverhead(quick ? 3 : 9, quick ? 500 : 2000) };
  });
  if (!results.peak && (run('client') || run('ort'))) {
    // "% of peak" needs a peak: take a short one (not stored as the peak section's own result).
    const p = await benchPeak(1024, 5, 80);
    results.peak = { ...p, runOverheadUs: NaN };
  }

  await section('rng', async () => {
    const n = quick ? 200_000 : 1_000_000;
    results.rng = { ...(await benchRng(n, quick ? 7 : 15)), n };
  });

  await section('client', async () => {
    const out: ClientResult[] = [];
    for (const entry of ZOO) {
      for (const perturbation of ['gaussian', 'lowrank'] as const) {
        for (const w of [...new Set([1, workers])]) {
          const r = await benchClient(entry, { workers: w, targetMs: quick ? 150 : 400, reps: quick ? 3 : 7, perturbation, rank: 1 });
          console.log(
            `  ${entry.label.padEnd(22)} ${perturbation.padEnd(8)} ${String(w).padStart(2)} worker(s): ${fmtNum(r.passesPerSec).padStart(6)} passes/s ` +
              `(regen ${fmtNum(r.regenMsPerPass)} ms + forward ${fmtNum(r.forwardMsPerPass)} ms per pass)` +
              (r.fractionOfBatched === undefined ? '' : `, batched inference ÷ step ${(100 * r.fractionOfBatched).toFixed(0)}%`),
          );
          out.push(r);
        }
      }
    }
    results.client = out;
  });

  await section('server', async () => {
    const out: ServerResult[] = [];
    const sizes = quick ? [1e5, 1e6] : [1e5, 1e6, 1e7];
    for (const n of sizes) {
      for (const w of [...new Set([1, workers])]) {
        const reps = quick ? 3 : n >= 1e7 ? 3 : 7;
        const r = await benchServer(n, 20, w, reps);
        console.log(`  n=${n.toExponential(0)} K=20 ${w} worker(s): ${fmtNum(r.ms)} ms, ${fmtNum(r.nsPerParamDir)} ns/param/direction`);
        out.push(r);
      }
    }
    // The default recipe's server step (MLP, 10 clients × K = 100 per-client directions): Gaussian vs low-rank.
    const variants = [{ perturbation: 'gaussian' as const }, { perturbation: 'lowrank' as const, rank: 1 }, ...(quick ? [] : [{ perturbation: 'lowrank' as const, rank: 4 }])];
    for (const v of variants) {
      for (const w of [...new Set([1, workers])]) {
        const r = await benchServer(0, 100, w, quick ? 3 : 5, 150, { layout: 'MLP 1024-128-10', sets: 10, ...v });
        const what = v.perturbation === 'lowrank' ? `lowrank r=${v.rank}` : 'gaussian';
        console.log(`  MLP 1024-128-10, 10 × K=100 ${what}, ${w} worker(s): ${fmtNum(r.ms)} ms, ${fmtNum(r.nsPerParamDir)} ns/param/direction`);
        out.push(r);
      }
    }
    results.server = out;
  });

  await section('e2e', async () => {
    const dataset = loadDataset('mnist-10k');
    const out: E2eResult[] = [];
    for (const recipe of RECIPES) {
      const steps = quick ? 2 : recipe.id.startsWith('paper-lenet') ? 6 : 10;
      const r = await benchE2e(recipe, dataset, workers, steps);
      console.log(`  ${recipe.label}: ${fmtNum(r.secPerStep)} s/step over ${r.steps} steps`);
      out.push(r);
    }
    results.e2e = out;
  });

  await section('tta', async () => {
    const dataset = loadDataset('mnist-10k');
    const out: TtaResult[] = [];
    // --quick: the MLP recipes only.
    for (const recipe of quick ? TTA_RECIPES.filter((r) => r.id.startsWith('mlp-')) : TTA_RECIPES) {
      const r = await benchTta(recipe, dataset, workers);
      console.log(`  ${recipe.label}: ${r.reached ? 'reached' : 'did not reach'} ${pct(recipe.target)} at step ${r.steps} (${pct(r.accuracy)}), ${fmtNum(r.wallSec)} s wall, ${fmtNum(r.idleEstimateSec)} s idle-machine estimate`);
      out.push(r);
    }
    results.tta = out;
  });

  await section('ort', async () => {
    const models = quick ? [zooEntry('mlp'), zooEntry('lenet'), zooEntry('lenet-gn')] : ZOO;
    results.ort = await benchOrtOptions(models, VARIANTS, quick ? { rounds: 1, reps: 2, targetMs: 30 } : { rounds: 3, reps: 3, targetMs: 60 });
  });

  await section('nchwc', async () => {
    const models = quick ? [zooEntry('lenet'), zooEntry('wrn-gn-3')] : ZOO;
    const out: NchwcResult[] = [];
    for (const m of models) {
      const r = await benchNchwc(m, quick ? { rounds: 3, passes: m.id.startsWith('wrn') ? 3 : 8 } : { rounds: 9, passes: m.id.startsWith('wrn') ? 6 : 16 });
      console.log(`  ${m.label.padEnd(22)} plain ${fmtNum(r.plainMs)} ms → optimised ${fmtNum(r.optimizedMs)} ms per pass (${r.speedup.toFixed(2)}×)`);
      out.push(r);
    }
    results.nchwc = out;
  });

  await section('peer', async () => {
    results.peer = await benchPeer({
      install: installTorch,
      models: quick ? ['lenet', 'wrn-gn-3'] : ['lenet', 'lenet-gn', 'wrn-gn-1', 'wrn-gn-3'],
      rounds: quick ? 3 : 7,
      targetMs: quick ? 150 : 300,
      untuned: true,
    });
  });

  await section('convs', async () => {
    results.convs = await benchConvs({ install: installTorch, models: quick ? ['lenet', 'wrn-gn-3'] : ['lenet', 'wrn-gn-1', 'wrn-gn-3'] });
  });

  await section('scaling', async () => {
    results.scaling = await benchScaling(loadDataset('mnist-10k'), { quick, workers });
    await renderScalingPng(results.scaling, PNG_PATH, scalingSubtitle(results));
    console.log(`  wrote ${PNG_PATH}`);
  });

  await section('browser', async () => {
    results.browser = await benchBrowser({ quick });
  });

  writeFileSync(JSON_PATH, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(MD_PATH, markdown(results));
  console.log(`\nwrote ${JSON_PATH} and ${MD_PATH} (${((now() - t0) / 1000).toFixed(0)} s)`);
}

await main();
