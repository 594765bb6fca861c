// The documentation's screenshots, made by a real federation rather than by hand:
//
//   node --import tsx scripts/screenshots.ts [--out docs/images]
//
// starts `baffle serve` (a small MLP run on mnist-10k, two clients), opens the dashboard, opens /join in a
// second tab as client 1 with IDX files this script writes (digits of the embedded set), starts `baffle join`
// as client 0, and in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) takes, at
// 1200×900, full page:
//
//   dashboard.png       the dashboard mid-run (state training, the curves so far, both clients, the ETA)
//   join.png            the browser client's page mid-run
//   dashboard-done.png  the dashboard at the end of the run
//
// It refuses to write anything unless the run ends with every result of both clients counted.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Page } from 'playwright-core';
import { readMnistDigits } from '../src/node/data/mnist10k.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'baffle.js');
const VIEWPORT = { width: 1200, height: 900 };
const CONFIG = { hidden: [64], K: 50, clients: 2, maxSteps: 150, evalEvery: 10, emaEvery: 'step', testSubset: 1000, seed: 1 };
/** Digits of the browser client (from the train part of each class: the first 80 %). */
const BROWSER_DIGITS = 2000;

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const outDir = resolve(values.out ?? join(ROOT, 'docs', 'images'));

const procs: ChildProcess[] = [];
function baffle(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((r) => child.on('exit', (code) => r(code))) };
}

async function until<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** IDX files (images 0x803, labels 0x801) of `count` digits, the classes interleaved. */
function writeIdx(dir: string, count: number): { images: string; labels: string } {
  const classes = readMnistDigits();
  const picked: { label: number; pixels: Uint8Array }[] = [];
  for (let i = 0; picked.length < count; i++) {
    for (const c of classes) {
      // Every other train digit of the class: the test split (the last 20 %) is never given to a client.
      const index = 2 * i + 1;
      if (index < Math.floor(0.8 * c.count) && picked.length < count) picked.push({ label: c.label, pixels: c.pixels.subarray(784 * index, 784 * (index + 1)) });
    }
  }
  const header = (magic: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const images = join(dir, 'train-images-idx3-ubyte');
  const labels = join(dir, 'train-labels-idx1-ubyte');
  writeFileSync(images, Buffer.concat([header(0x803, [picked.length, 28, 28]), ...picked.map((p) => p.pixels)]));
  writeFileSync(labels, Buffer.concat([header(0x801, [picked.length]), Buffer.from(picked.map((p) => p.label))]));
  return { images, labels };
}

const dashboardState = (page: Page) =>
  page.evaluate(() => ({
    state: (document.querySelector('#dash-state') as HTMLElement).dataset.state ?? '',
    round: Number((document.querySelector('#dash-round') as HTMLElement).dataset.round),
    points: Number((document.querySelector('#dash-curve') as HTMLElement).dataset.points),
  }));

const work = mkdtempSync(join(tmpdir(), 'baffle-screenshots-'));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const cfg = join(work, 'run.json');
  writeFileSync(cfg, JSON.stringify(CONFIG));
  const tokensFile = join(work, 'tokens.json');
  const t = baffle(['tokens', '--clients', '2', '--out', tokensFile]);
  if ((await t.exited) !== 0) throw new Error(t.output());
  const tokens = (JSON.parse(readFileSync(tokensFile, 'utf8')) as { tokens: { client: number; token: string }[] }).tokens;
  const data = writeIdx(work, BROWSER_DIGITS);

  const runDir = join(work, 'run');
  const server = baffle(['serve', '--tokens', tokensFile, '--config', cfg, '--out', runDir, '--port', '0', '--quiet']);
  const port = Number(
    (await until('the server to listen', () => {
      if (server.child.exitCode !== null) throw new Error(`serve exited:\n${server.output()}`);
      return /listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(server.output());
    }))[1],
  );
  const base = `http://127.0.0.1:${port}`;
  console.log(`server on ${base}; run directory ${runDir}`);

  const dash = await browser.newPage({ viewport: VIEWPORT });
  await dash.goto(`${base}/dashboard`);
  await dash.waitForSelector('#dash-state[data-state=waiting]');

  // Client 1: a browser tab on /join with its own IDX files.
  const joinPage = await browser.newPage({ viewport: VIEWPORT });
  await joinPage.goto(`${base}/join`);
  await joinPage.fill('#client', '1');
  await joinPage.fill('#token', tokens.find((x) => x.client === 1)!.token);
  await joinPage.setInputFiles('#data', [data.images, data.labels]);
  await joinPage.click('#join');
  await joinPage.waitForSelector('#state[data-state=connected], #state[data-state=training]', { timeout: 60_000 });
  console.log('browser client 1 connected');

  // Client 0: `baffle join` (the run's own partition of mnist-10k).
  const node = baffle(['join', `ws://127.0.0.1:${port}/`, '--tokens', tokensFile, '--client', '0', '--quiet']);

  // Mid-run: past half of the rounds, with a few evaluations on the curve.
  await until('the middle of the run', async () => {
    const s = await dashboardState(dash);
    if (s.state === 'done') throw new Error('the run ended before the mid-run screenshot');
    return s.state === 'training' && s.round >= CONFIG.maxSteps * 0.55 && s.points >= 5;
  });
  mkdirSync(outDir, { recursive: true });
  await dash.screenshot({ path: join(work, 'dashboard.png'), fullPage: true });
  await joinPage.screenshot({ path: join(work, 'join.png'), fullPage: true });

  // The end: the dashboard says done, the tab says done, and every result of both clients was counted.
  await until('the dashboard to show done', async () => (await dashboardState(dash)).state === 'done', 300_000);
  await joinPage.waitForSelector('#state[data-state=done]', { timeout: 30_000 });
  if ((await server.exited) !== 0) throw new Error(`serve failed:\n${server.output()}`);
  if ((await node.exited) !== 0) throw new Error(`baffle join failed:\n${node.output()}`);
  const rounds = readFileSync(join(runDir, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { counted: number[] });
  const incomplete = rounds.filter((r) => r.counted.length !== 2).length;
  if (rounds.length !== CONFIG.maxSteps || incomplete > 0) throw new Error(`${rounds.length} rounds, ${incomplete} without both clients' results`);
  await dash.waitForSelector('#dash-conn[data-conn=closed]');
  await dash.screenshot({ path: join(work, 'dashboard-done.png'), fullPage: true });

  for (const name of ['dashboard.png', 'join.png', 'dashboard-done.png']) writeFileSync(join(outDir, name), readFileSync(join(work, name)));
  const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as { testAccuracy: number; step: number };
  console.log(
    `${rounds.length} rounds, every result of both clients counted (the browser's included); test accuracy ${(summary.testAccuracy * 100).toFixed(2)} % at step ${summary.step}`,
  );
  console.log(`wrote ${['dashboard.png', 'join.png', 'dashboard-done.png'].map((n) => join(outDir, n)).join(', ')}`);
} finally {
  await browser.close();
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
