// Helpers of the browser tests (test/browser.test.ts): Debian's Chromium driven by playwright-core (never a
// downloaded browser), a tiny cross-origin isolated HTTP server for test pages, the project's modules bundled
// for a page with esbuild, IDX and PNG files (one client's shard of mnist-10k), onnxruntime-web beside
// onnxruntime-node on the same passes, and the federation with Node clients made to differ as a browser does.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { Session } from '../src/app/session.ts';
import { resolveConfig, type RunConfig } from '../src/core/config/index.ts';
import { BatchGatherer } from '../src/core/data/batch.ts';
import { resizeBatchToUnit } from '../src/core/data/resize.ts';
import type { Batch, ForwardSession } from '../src/core/engine/types.ts';
import { CursorStream } from '../src/core/fl/clientData.ts';
import type { MetricsRecord } from '../src/core/fl/federation.ts';
import { clientShards, clientStream } from '../src/core/fl/setup.ts';
import type { ClientTransport, EstimateReply, EstimateRequest } from '../src/core/fl/transport.ts';
import { clientModel, exampleSize, type ClientModel } from '../src/core/model/artifact.ts';
import { UniformRng } from '../src/core/rng/uniform.ts';
import { estimate } from '../src/core/zo/task.ts';
import { mnist10kRawSplits, type RawSplit } from '../src/node/data/mnist10k.ts';
import { OrtSession, type OrtGraph } from '../src/node/engine/ort.ts';
import { loadRunData, loadRunModel } from '../src/node/model/load.ts';
import { WebPages } from '../src/node/net/web.ts';

export const CHROMIUM = '/usr/bin/chromium';
/** Headless, no sandbox (containers), and none of Chromium's own network traffic (the machine is offline). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Debian's Chromium, or an error that says where it comes from. */
export async function launchChromium(): Promise<Browser> {
  try {
    return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  } catch (e) {
    throw new Error(`cannot start ${CHROMIUM} (Debian's chromium package; .ci/run installs it): ${(e as Error).message}`);
  }
}

/** What functions compiled with esbuild's keepNames need in a page or worker that evaluates them. */
const KEEP_NAMES = 'globalThis.__name ??= (f) => f;';

/** A page whose console errors and uncaught exceptions are kept (shown when a test fails). */
export async function newPage(browser: Browser, log: string[] = []): Promise<{ page: Page; log: string[] }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  // tsx compiles the tests with esbuild's keepNames: functions handed to page.evaluate call __name.
  await page.addInitScript(KEEP_NAMES);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('worker', (w) => w.on('console', (m) => m.type() === 'error' && log.push(`worker console.error: ${m.text()}`)));
  return { page, log };
}

/** Counts the WebSocket connections a page opens (its workers' included). */
export function countSockets(page: Page): { count: number; urls: string[] } {
  const seen = { count: 0, urls: [] as string[] };
  page.on('websocket', (ws) => {
    seen.count++;
    seen.urls.push(ws.url());
  });
  return seen;
}

/** A /join tab for client `id` with its shard files chosen; Join is clicked unless `join` is false. */
export async function openJoinTab(
  browser: Browser,
  origin: string,
  id: number,
  token: string,
  files: { images: string; labels: string },
  opts: { initScript?: string; join?: boolean } = {},
): Promise<{ page: Page; log: string[]; sockets: { count: number; urls: string[] } }> {
  const { page, log } = await newPage(browser);
  const sockets = countSockets(page);
  if (opts.initScript) await page.addInitScript(opts.initScript);
  await page.goto(`${origin}/join#client=${id}&token=${encodeURIComponent(token)}`);
  await page.setInputFiles('#data', [files.images, files.labels]);
  if (opts.join !== false) await page.click('#join');
  return { page, log, sockets };
}

/** The text and data-state of the join page's #state box. */
export async function pageState(page: Page): Promise<{ state: string; text: string }> {
  return page.$eval('#state', (e) => ({ state: (e as HTMLElement).dataset.state ?? '', text: e.textContent ?? '' }));
}

/** Waits until #state's data-state is one of `states`; returns it with its text. */
export async function waitForState(page: Page, states: string[], timeoutMs = 30_000): Promise<{ state: string; text: string }> {
  await page.waitForFunction(
    (want) => want.includes(document.getElementById('state')?.dataset.state ?? ''),
    states,
    { timeout: timeoutMs, polling: 50 },
  );
  return pageState(page);
}

// ---------------------------------------------------------------------------------------------------
// Bundles

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A bundle that puts every export of `modules` (paths from the repository root) on `globalThis.baffle`, for
 * page.evaluate / worker.evaluate to call: the project's own code, run by the browser as the join page runs it.
 */
export async function exposeBundle(modules: string[]): Promise<string> {
  const imports = modules.map((m, i) => `import * as m${i} from ${JSON.stringify(join(ROOT, m))};`).join('\n');
  const r = await build({
    stdin: { contents: `${KEEP_NAMES}\n${imports}\nglobalThis.baffle = Object.assign({}, ${modules.map((_, i) => `m${i}`).join(', ')});\n`, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

// ---------------------------------------------------------------------------------------------------
// A test HTTP server: the real pages (WebPages: /join, its bundles, /ort/…), plus routes a test adds, every
// response cross-origin isolated like baffle serve's. Optionally a WebSocket endpoint of the test's own.

const ISOLATED = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

export interface Route {
  type: string;
  body: string | Uint8Array;
}

export class TestServer {
  readonly routes = new Map<string, Route>();
  readonly pages = new WebPages();
  readonly http: Server;
  /** The WebSocket endpoint of the test's own, if asked for (the fake server of another protocol version). */
  readonly wss: WebSocketServer | null = null;
  port = 0;

  private constructor(options: { onSocket?: (ws: WebSocket, req: IncomingMessage) => void; subprotocol?: string }) {
    this.http = createServer((req: IncomingMessage, res: ServerResponse) => {
      const r = this.routes.get((req.url ?? '/').split('?')[0]!);
      if (r) {
        res.writeHead(200, { 'content-type': r.type, 'cache-control': 'no-store', ...ISOLATED });
        res.end(r.body);
        return;
      }
      if (this.pages.handle(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    });
    if (options.onSocket) {
      const want = options.subprotocol;
      this.wss = new WebSocketServer({
        server: this.http,
        perMessageDeflate: false,
        handleProtocols: (offered) => (want !== undefined && offered.has(want) ? want : false),
      });
      this.wss.on('connection', options.onSocket);
    }
  }

  static async start(options: { onSocket?: (ws: WebSocket, req: IncomingMessage) => void; subprotocol?: string } = {}): Promise<TestServer> {
    const s = new TestServer(options);
    await new Promise<void>((resolve) => s.http.listen(0, '127.0.0.1', resolve));
    s.port = (s.http.address() as AddressInfo).port;
    return s;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A blank, cross-origin isolated page at `path` that loads the module at `script` (if given). */
  page(path: string, script?: string): void {
    const tag = script ? `<script type="module" src="${script}"></script>` : '';
    this.routes.set(path, { type: 'text/html; charset=utf-8', body: `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>test</title><body>${tag}</body>` });
  }

  script(path: string, text: string): void {
    this.routes.set(path, { type: 'text/javascript; charset=utf-8', body: text });
  }

  async close(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------
// IDX files

/** An IDX images file (magic 0x803) of `count` images of rows × cols bytes. */
export function idxImages(pixels: Uint8Array, count: number, rows: number, cols: number): Buffer {
  if (pixels.length !== count * rows * cols) throw new Error(`idxImages: ${pixels.length} bytes for ${count} images of ${rows}×${cols}`);
  const b = Buffer.alloc(16 + pixels.length);
  b.writeUInt32BE(0x803, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(rows, 8);
  b.writeUInt32BE(cols, 12);
  b.set(pixels, 16);
  return b;
}

/** An IDX labels file (magic 0x801). */
export function idxLabels(labels: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(8 + labels.length);
  b.writeUInt32BE(0x801, 0);
  b.writeUInt32BE(labels.length, 4);
  for (let i = 0; i < labels.length; i++) b[8 + i] = labels[i]!;
  return b;
}

/** mnist-10k's training split as raw 28×28 bytes, in the order loadMnist10k builds it (class by class, first ⌊0.8 n⌋). */
let trainBytes: RawSplit | null = null;
export function mnist10kTrainBytes(): RawSplit {
  trainBytes ??= mnist10kRawSplits().train;
  return trainBytes;
}

/**
 * Writes client `clientId`'s shard of mnist-10k (under the run configuration `layer`) as two IDX files (gzipped
 * when asked) in
 * shard order, into `dir`; returns their paths. A files-mode client's shard is 0..n−1 in file order and its
 * stream shuffles positions with the same seed as the Node client of that id, so both draw the same minibatches.
 */
export function writeShardIdx(dir: string, layer: Record<string, unknown>, clientId: number, gzip = false): { dir: string; images: string; labels: string; examples: number } {
  const config: RunConfig = resolveConfig([layer]);
  const train = mnist10kTrainBytes();
  const shard = clientShards(config, train.labels, 10)[clientId]!;
  const pixels = new Uint8Array(shard.length * 784);
  const labels = new Uint8Array(shard.length);
  shard.forEach((j, i) => {
    pixels.set(train.pixels.subarray(j * 784, (j + 1) * 784), i * 784);
    labels[i] = train.labels[j]!;
  });
  mkdirSync(dir, { recursive: true });
  const ext = gzip ? '.gz' : '';
  const images = join(dir, `train-images-idx3-ubyte${ext}`);
  const labelsPath = join(dir, `train-labels-idx1-ubyte${ext}`);
  const pack = (b: Buffer) => (gzip ? gzipSync(b) : b);
  writeFileSync(images, pack(idxImages(pixels, shard.length, 28, 28)));
  writeFileSync(labelsPath, pack(idxLabels(labels)));
  return { dir, images, labels: labelsPath, examples: shard.length };
}

// ---------------------------------------------------------------------------------------------------
// onnxruntime-web beside onnxruntime-node: the same weights, batches and directions through both engines

/** One comparison's inputs: weight vectors × minibatches, K directions of σ from `seed`. */
export interface PassPlan {
  model: ClientModel;
  weights: Float32Array[];
  batches: Batch[];
  K: number;
  sigma: number;
  seed: number;
}

/** Per (weights, batch) pair: L(W), L(W + σz_k) for k < K, the K scalars `estimate` sends, the logits at W. */
export interface PassOutput {
  losses: number[][];
  scalars: number[][];
  logits: number[][];
}

/**
 * Runs a plan through a ForwardSession with the task code every client runs (zo/task.ts `estimate`), recording
 * each pass's loss on the way: L(W + σz_k) for k < K, then L(W).
 */
async function runPlan(session: ForwardSession, plan: Omit<PassPlan, 'model'>, estimateFn: typeof estimate): Promise<PassOutput> {
  const out: PassOutput = { losses: [], scalars: [], logits: [] };
  let record: number[] = [];
  const recording: ForwardSession = {
    setBatch: (b) => session.setBatch(b),
    loss: async (w) => {
      const l = await session.loss(w);
      record.push(l);
      return l;
    },
    logits: (w) => session.logits(w),
    dispose: () => session.dispose(),
  };
  for (const w of plan.weights) {
    const scratch = new Float32Array(w.length);
    for (let b = 0; b < plan.batches.length; b++) {
      recording.setBatch(plan.batches[b]!);
      record = [];
      const est = await estimateFn(recording, w, scratch, { seed: (plan.seed + b) >>> 0, K: plan.K, sigma: plan.sigma, scheme: 'forward' });
      out.losses.push(record);
      out.scalars.push(Array.from(est.scalars));
      out.logits.push(Array.from(await session.logits(w)));
    }
  }
  return out;
}

/** The plan on onnxruntime-node (OrtSession, one thread) with the graph asked for; returns the graph it ran too. */
export async function nodePasses(plan: PassPlan, graph: OrtGraph): Promise<{ graph: string; out: PassOutput }> {
  const s = await OrtSession.create(plan.model, { graph });
  try {
    return { graph: s.graph, out: await runPlan(s, plan, estimate) };
  } finally {
    await s.dispose();
  }
}

/**
 * The bundle a page needs for webPasses: the browser's engine door (src/web/ortSession.ts), the generator and
 * the task code, on globalThis.baffle. onnxruntime-web itself comes from /ort/ (WebPages).
 */
export const WEB_PASSES_MODULES = ['src/web/ortSession.ts', 'src/core/zo/task.ts'];

/** runPlan's source, for webPasses. */
export const RUN_PLAN_SOURCE = runPlan.toString();

/** Runs in the page: the plan on onnxruntime-web (wasm, `threads` threads) through WebOrtSession. */
export async function webPasses(arg: { plan: PassPlan; threads: number; runPlan: string }): Promise<PassOutput & { threads: number; isolated: boolean }> {
  const b = (globalThis as any).baffle;
  const ort = await import(/* @vite-ignore */ new URL('/ort/ort.wasm.min.mjs', location.href).href);
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = arg.threads;
  const s = await b.WebOrtSession.create(ort, arg.plan.model, 'wasm');
  try {
    // runPlan lives in Node's context, not the page's: it comes in as source text, with the page's `estimate`.
    const runPlan = new Function(`return ${arg.runPlan}`)() as (s: unknown, p: unknown, e: unknown) => Promise<PassOutput>;
    const out = await runPlan(s, arg.plan, b.estimate);
    return { ...out, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated };
  } finally {
    await s.dispose();
  }
}

/** The float32 spacing at x (one unit in the last place). */
export function ulp32(x: number): number {
  const a = Math.abs(Math.fround(x));
  if (a === 0) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

export interface PassComparison {
  passes: number;
  identicalLosses: number;
  maxDLoss: number;
  /** max |Δloss| in units of the loss's float32 ulp. */
  maxDLossUlp: number;
  /** How many passes differ by d ulps, by d (0, 1, 2, …; signed: web − node). */
  ulpHistogram: Record<string, number>;
  logits: number;
  maxDLogit: number;
  scalars: number;
  identicalScalars: number;
  maxDScalar: number;
  /** Root mean square of the reference's scalars (the scale max |Δa| is relative to). */
  rmsScalar: number;
}

export function comparePasses(web: PassOutput, node: PassOutput): PassComparison {
  const c: PassComparison = {
    passes: 0, identicalLosses: 0, maxDLoss: 0, maxDLossUlp: 0, ulpHistogram: {}, logits: 0, maxDLogit: 0,
    scalars: 0, identicalScalars: 0, maxDScalar: 0, rmsScalar: 0,
  };
  let sq = 0;
  node.losses.forEach((ls, i) =>
    ls.forEach((l, k) => {
      const d = web.losses[i]![k]! - l;
      const u = Math.round(d / ulp32(l));
      c.passes++;
      if (d === 0) c.identicalLosses++;
      c.maxDLoss = Math.max(c.maxDLoss, Math.abs(d));
      c.maxDLossUlp = Math.max(c.maxDLossUlp, Math.abs(u));
      c.ulpHistogram[u] = (c.ulpHistogram[u] ?? 0) + 1;
    }),
  );
  node.logits.forEach((ls, i) =>
    ls.forEach((l, j) => {
      c.logits++;
      c.maxDLogit = Math.max(c.maxDLogit, Math.abs(web.logits[i]![j]! - l));
    }),
  );
  node.scalars.forEach((as, i) =>
    as.forEach((a, k) => {
      const d = web.scalars[i]![k]! - a;
      c.scalars++;
      if (d === 0) c.identicalScalars++;
      c.maxDScalar = Math.max(c.maxDScalar, Math.abs(d));
      sq += a * a;
    }),
  );
  c.rmsScalar = Math.sqrt(sq / Math.max(1, c.scalars));
  return c;
}

/** Mean cross-entropy of logits (count × classes) against labels, in float64. */
function exactCrossEntropy(logits: ArrayLike<number>, y: Uint8Array): number {
  const classes = logits.length / y.length;
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]!);
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(logits[i * classes + c]! - max);
    sum += Math.log(z) + max - logits[i * classes + y[i]!]!;
  }
  return sum / y.length;
}

/**
 * Where the losses part, at W (the pass whose logits the outputs hold, the last loss of each pair): the largest
 * |L(W) − exact cross-entropy of the engine's own logits| in ulps, for each engine, and the largest difference
 * between the exact cross-entropies of the two engines' logits (what the forward passes alone would give).
 */
export function crossEntropyUlps(web: PassOutput, node: PassOutput, batches: Batch[], points: number): { web: number; node: number; between: number } {
  const r = { web: 0, node: 0, between: 0 };
  for (let i = 0; i < points * batches.length; i++) {
    const y = batches[i % batches.length]!.y;
    const u = ulp32(node.losses[i]!.at(-1)!);
    const ceWeb = exactCrossEntropy(web.logits[i]!, y);
    const ceNode = exactCrossEntropy(node.logits[i]!, y);
    r.web = Math.max(r.web, Math.abs(web.losses[i]!.at(-1)! - ceWeb) / u);
    r.node = Math.max(r.node, Math.abs(node.losses[i]!.at(-1)! - ceNode) / u);
    r.between = Math.max(r.between, Math.abs(ceWeb - ceNode) / u);
  }
  return r;
}

/** `count` examples of mnist-10k's training split from `start` at a stride, as a [1, side, side] model takes them. */
export function mnistBatch(count: number, start: number, side = 32): Batch {
  const train = mnist10kTrainBytes();
  const raw = new Uint8Array(count * 784);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const j = (start + Math.floor((i * train.count) / count)) % train.count;
    raw.set(train.pixels.subarray(j * 784, (j + 1) * 784), i * 784);
    y[i] = train.labels[j]!;
  }
  return { x: resizeBatchToUnit(raw, count, 28, 28, side, side), y, count };
}

// ---------------------------------------------------------------------------------------------------
// The federation with onnxruntime-node clients whose losses carry the measured engine difference

/**
 * A client's forward session whose losses are moved by a whole number of float32 ulps drawn from `histogram`
 * (ulps → how often browser.test.ts measured that difference between onnxruntime-web and onnxruntime-node), each
 * pass independently: onnxruntime-node made to differ from itself as much as a browser differs from it.
 */
class UlpNoise implements ForwardSession {
  private readonly cumulative: [number, number][];
  constructor(
    private readonly inner: ForwardSession,
    histogram: Record<string, number>,
    private readonly rng: UniformRng,
  ) {
    const total = Object.values(histogram).reduce((a, b) => a + b, 0);
    let acc = 0;
    this.cumulative = Object.entries(histogram).map(([u, n]) => [Number(u), (acc += n / total)]);
  }
  setBatch(b: Batch): void {
    this.inner.setBatch(b);
  }
  async loss(w: Float32Array): Promise<number> {
    const l = await this.inner.loss(w);
    const r = this.rng.nextFloat();
    const u = (this.cumulative.find(([, c]) => r < c) ?? this.cumulative.at(-1)!)[0];
    return Math.fround(l + u * ulp32(l));
  }
  logits(w: Float32Array): Promise<Float32Array> {
    return this.inner.logits(w);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

/** FedSGD clients in this process, each with its own stream over its shard, on one (optionally noisy) session. */
class LocalClients implements ClientTransport {
  readonly cursors: number[];
  private readonly streams: CursorStream[];
  private readonly gather: BatchGatherer;
  private readonly scratch: Float32Array;
  constructor(
    config: RunConfig,
    readonly batchSize: number,
    train: { x: Float32Array; y: Uint8Array },
    shards: Int32Array[],
    private readonly session: ForwardSession,
    params: number,
    exampleSize: number,
  ) {
    this.streams = shards.map((s, c) => new CursorStream(() => clientStream(config, s, c)));
    this.cursors = shards.map(() => 0);
    this.gather = new BatchGatherer(train, exampleSize);
    this.scratch = new Float32Array(params);
  }
  async estimate(requests: EstimateRequest[], shared: Float32Array): Promise<EstimateReply[]> {
    // The session's weights live in shared memory (its worker pool); onnxruntime-node takes plain buffers only.
    const weights = shared.slice();
    const replies: EstimateReply[] = [];
    for (const r of requests) {
      const indices = this.streams[r.clientId]!.batch(this.cursors[r.clientId]++, this.batchSize);
      this.session.setBatch(this.gather.gather(indices));
      const est = await estimate(this.session, weights, this.scratch, { seed: r.seed, K: r.K, sigma: r.sigma, scheme: r.scheme });
      replies.push({ clientId: r.clientId, examples: indices.length, ...est });
    }
    return replies;
  }
  localTrain(): Promise<never> {
    throw new Error('LocalClients: FedSGD only');
  }
  async close(): Promise<void> {}
}

/**
 * Trains the run `layer` describes with the server's own Session (the code `baffle serve` runs) and clients in
 * this process on onnxruntime-node; with `noise`, every client loss moves by ulps drawn from its histogram
 * (seeded by noise.seed). Without noise it reproduces `baffle run` exactly. Returns the evaluations.
 */
export async function emulatedRun(layer: Record<string, unknown>, noise: { histogram: Record<string, number>; seed: number } | null): Promise<MetricsRecord[]> {
  const config = resolveConfig([layer]);
  const { artifact } = await loadRunModel(config);
  const dataset = loadRunData(config, artifact);
  const shards = clientShards(config, dataset.train.y, dataset.classes);
  const ort = await OrtSession.create(clientModel(artifact));
  const session = noise ? new UlpNoise(ort, noise.histogram, new UniformRng(noise.seed)) : ort;
  const server = Session.open({ config, artifact, dataset, workers: 1, checkpointDir: null, resume: false, runId: 'emulated', remoteClients: true });
  try {
    const clients = new LocalClients(config, config.batchSize, dataset.train, shards, session, artifact.params, exampleSize(artifact));
    const result = await server.train(server.strategy(clients));
    return [...result.metrics];
  } finally {
    await server.close();
    await ort.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------
// PNG files (for image folders): a minimal encoder, 8-bit grayscale or RGB, no interlacing

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG of width × height pixels, `channels` 1 (grayscale) or 3 (RGB), row-major bytes. */
export function png(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  if (pixels.length !== width * height * channels) throw new Error(`png: ${pixels.length} bytes for ${width}×${height}×${channels}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  const rows = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++) rows.set(pixels.subarray(y * width * channels, (y + 1) * width * channels), y * (1 + width * channels) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}
