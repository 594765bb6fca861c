// Section 'browser': a client step in Chromium (Debian's /usr/bin/chromium, headless, driven by playwright-core)
// on onnxruntime-web — forward passes per second at batch 32 for the MLP and LeNet, one thread and all threads
// (the page is cross-origin isolated) — next to onnxruntime-node on the same model (one single-threaded
// session, the engine's optimised graph), and the direction generator's ns per element in the page and in Node.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { build } from 'esbuild';
import { pack } from 'msgpackr';
import { chromium } from 'playwright-core';
import { clientModel } from '../src/core/model/artifact.ts';
import { seededZooArtifact } from '../src/core/model/zooArtifact.ts';
import { directionBackend, perturbInto } from '../src/core/rng/directions.ts';
import { OrtSession } from '../src/node/engine/ort.ts';
import { WebPages } from '../src/node/net/web.ts';
import { fmtNum, syntheticBatch, zooEntry, type Table } from './lib.ts';

export interface BrowserPassResult {
  model: string;
  label: string;
  params: number;
  threads: number;
  browserPassesPerSec: number;
  nodePassesPerSec: number;
}

export interface BrowserResult {
  chromium: string;
  passes: BrowserPassResult[];
  rng: { browserNs: number; browserBackend: string; nodeNs: number; nodeBackend: string };
}

const ISOLATED = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

async function nodePassesPerSec(model: ReturnType<typeof seededZooArtifact>, inputShape: readonly number[], classes: number, seconds: number): Promise<number> {
  const s = await OrtSession.create(model);
  s.setBatch(syntheticBatch(inputShape, 32, classes));
  const weights = model.initial;
  const scratch = new Float32Array(weights.length);
  for (let k = 0; k < 3; k++) {
    perturbInto(scratch, weights, 1e-4, 1, k);
    await s.loss(scratch);
  }
  let passes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    perturbInto(scratch, weights, 1e-4, 1, passes++);
    await s.loss(scratch);
  }
  await s.dispose();
  return passes / ((performance.now() - t0) / 1000);
}

function nodePerturbNs(seconds: number): number {
  const n = 1_000_000;
  const weights = new Float32Array(n).fill(0.5);
  const out = new Float32Array(n);
  perturbInto(out, weights, 1e-4, 7, 0);
  let k = 1;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) perturbInto(out, weights, 1e-4, 7, k++);
  return ((performance.now() - t0) * 1e6) / ((k - 1) * n);
}

export async function benchBrowser(opts: { quick?: boolean } = {}): Promise<BrowserResult> {
  const seconds = opts.quick ? 1.5 : 4;
  const ids = ['mlp', 'lenet'];
  const artifacts = new Map(ids.map((id) => [id, seededZooArtifact(zooEntry(id).config, 1)]));
  const entry = await build({
    entryPoints: [new URL('./browserEntry.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = entry.outputFiles[0]!.contents;
  const pages = new WebPages();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (pages.handle(req, res)) return;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html', ...ISOLATED });
      res.end('<!doctype html><title>bench</title><script type="module" src="/entry.js"></script>');
    } else if (path === '/entry.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', ...ISOLATED });
      res.end(script);
    } else if (path.startsWith('/model/') && artifacts.has(path.slice(7))) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...ISOLATED });
      res.end(pack(clientModel(artifacts.get(path.slice(7))!)));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const inPage = async (query: string): Promise<Record<string, number | string>> => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}?${query}`);
      const r = await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result, null, { timeout: 120_000 });
      const v = (await r.jsonValue()) as Record<string, number | string>;
      if (v.error) throw new Error(`browser bench (${query}): ${v.error}`);
      return v;
    } finally {
      await page.close();
    }
  };
  try {
    const passes: BrowserPassResult[] = [];
    for (const id of ids) {
      const a = artifacts.get(id)!;
      const e = zooEntry(id);
      const node = await nodePassesPerSec(a, e.config.inputShape, e.config.classes, seconds);
      for (const threads of [...new Set([1, os.availableParallelism()])]) {
        const r = await inPage(`model=${id}&threads=${threads}&seconds=${seconds}`);
        passes.push({ model: id, label: e.label, params: a.params, threads: Number(r.threads), browserPassesPerSec: Number(r.passesPerSec), nodePassesPerSec: node });
      }
    }
    const rng = await inPage(`what=rng&seconds=${seconds}`);
    return {
      chromium: browser.version(),
      passes,
      rng: { browserNs: Number(rng.perturbNsPerElement), browserBackend: String(rng.backend), nodeNs: nodePerturbNs(seconds), nodeBackend: directionBackend() },
    };
  } finally {
    await browser.close();
    server.close();
  }
}

const rate = (x: number) => x.toFixed(x < 100 ? 1 : 0);

export function browserTable(r: BrowserResult): Table {
  return {
    title: `Browser client (Chromium ${r.chromium}, onnxruntime-web wasm): forward passes per second of a client step at batch 32`,
    head: ['model', 'params', 'threads (page)', 'Chromium passes/s', 'onnxruntime-node passes/s (1 thread)', 'browser / node'],
    rows: [
      ...r.passes.map((p) => [p.label, fmtNum(p.params), String(p.threads), rate(p.browserPassesPerSec), rate(p.nodePassesPerSec), `${(p.browserPassesPerSec / p.nodePassesPerSec).toFixed(2)}×`]),
      ['direction generator (perturb, ns/element)', '', '', `${r.rng.browserNs.toFixed(2)} (${r.rng.browserBackend})`, `${r.rng.nodeNs.toFixed(2)} (${r.rng.nodeBackend})`, `${(r.rng.nodeNs / r.rng.browserNs).toFixed(2)}×`],
    ],
    notes: [
      'Each pass perturbs the weights (w + σz_k) and runs one minibatch loss, as a client does; the page is cross-origin isolated, so onnxruntime-web may use threads.',
      'The last row is the time per element of perturbInto (n = 1e6) in the page and in Node; "browser / node" there is node ns ÷ browser ns.',
    ],
  };
}
