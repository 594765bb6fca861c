// Secure aggregation with browser clients, in real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): a `baffle serve` with secureAggregation=true whose federation is two join-page tabs (their
// workers on WebCrypto's X25519, HKDF, AES-GCM: src/core/secagg/webcrypto.ts) and one `baffle join` process (on
// node:crypto), so that every pair of the protocol — tab ↔ tab, tab ↔ Node — exchanges shares and masks. Its rounds
// commit with all three counted, the server sees masked vectors only, and its run lies within the browser tolerance
// of `baffle run` with the same keys. Before it, a tab whose WebCrypto lacks X25519 (emulated) refuses the server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../src/core/protocol/protocol.ts';
import { formatTokens, makeTokens } from '../src/node/net/tokens.ts';
import { countSockets, launchChromium, newPage, openJoinTab, TestServer, waitForState, writeShardIdx } from './browserHelpers.ts';
import { baffle, killAll, readJsonLines, startServer, status, tempDir } from './netHelpers.ts';

let browser: Browser | null = null;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  killAll();
});

/**
 * The browser federation test's run (test/browser.test.ts: MLP 1024-16-10, K = 10, 3 clients, lr 0.03, EMA off)
 * with shared directions and secure aggregation, 24 steps: m = 3, threshold 2, S = 2²².
 */
const SECURE = {
  dataset: 'mnist-10k',
  hidden: [16],
  K: 10,
  clients: 3,
  maxSteps: 24,
  evalEvery: 6,
  testSubset: 200,
  seed: 7,
  lr: 0.03,
  ema: false,
  seedPolicy: 'shared',
  secureAggregation: true,
};

/**
 * The tolerance of test/browser.test.ts, for the same reason (docs/browser.md): onnxruntime-web's losses differ
 * from onnxruntime-node's by 0–3 float32 ulps, so a browser's scalars a_k differ by up to ≈ 0.01 from a Node
 * client's, and the run drifts by at most ≈ 0.013 in test loss and 0.025 in accuracy over 24 steps (emulated).
 * Secure aggregation adds nothing to that: the quantization error of the sum is below m/S = 3/2²² ≈ 7e-7 per
 * coordinate — four orders of magnitude below one ulp of the loss divided by σ (2.4e-3, the quantum of a_k) — and
 * serve + join with Node clients only equals `baffle run` bit for bit (test/net-secagg.test.ts).
 */
const ACCURACY_TOLERANCE = 0.03;
const LOSS_TOLERANCE = 0.03;

function writeTokens(path: string, entries: { client: number; token: string }[]): void {
  writeFileSync(path, formatTokens(entries), { mode: 0o600 });
}

/**
 * Makes the worker's WebCrypto lack X25519, as Chromium before 133 (and other browsers before their support) does:
 * generateKey, importKey and deriveBits reject the algorithm with NotSupportedError; everything else (the token's
 * HMAC proof) works. The worker is a module bundle without imports: the stub prepended to it runs first.
 */
const NO_X25519 = `{
  const s = crypto.subtle;
  const named = (a) => String(typeof a === 'string' ? a : a && a.name).toUpperCase() === 'X25519';
  const refuse = () => Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
  const g = s.generateKey.bind(s), i = s.importKey.bind(s), d = s.deriveBits.bind(s);
  s.generateKey = (alg, ...r) => (named(alg) ? refuse() : g(alg, ...r));
  s.importKey = (f, k, alg, ...r) => (named(alg) ? refuse() : i(f, k, alg, ...r));
  s.deriveBits = (alg, ...r) => (named(alg) ? refuse() : d(alg, ...r));
  globalThis.__noX25519 = true;
}
`;

/**
 * The join page of `origin`'s `baffle serve`, its worker stubbed with NO_X25519, served by a test server that
 * relays its WebSocket to the real server (the page's socket goes to location.host). A page.route of the worker
 * script would be simpler, but with it Chromium's worker opened no WebSocket at all (every attempt a
 * "connection error"), so the stub is served instead.
 */
async function withoutX25519(origin: string, upstream: string): Promise<{ server: TestServer; relayed: { connections: number; up: number; down: number } }> {
  const worker = await (await fetch(`${origin}/join/worker.js`)).text();
  const relayed = { connections: 0, up: 0, down: 0 };
  const server = await TestServer.start({
    subprotocol: SUBPROTOCOL,
    onSocket: (ws) => {
      relayed.connections++;
      const up = new WebSocket(upstream, SUBPROTOCOL, { perMessageDeflate: false });
      const pending: [Buffer, boolean][] = [];
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        relayed.up++;
        if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
        else pending.push([data, isBinary]);
      });
      up.on('open', () => {
        for (const [d, b] of pending.splice(0)) up.send(d, { binary: b });
      });
      up.on('message', (data: Buffer, isBinary: boolean) => {
        relayed.down++;
        ws.send(data, { binary: isBinary });
      });
      const closeBoth = (code: number, reason: Buffer) => {
        for (const s of [ws, up]) {
          if (s.readyState !== WebSocket.OPEN) continue;
          if (code >= 3000 || code === 1000) s.close(code, reason);
          else s.terminate();
        }
      };
      ws.on('close', closeBoth);
      up.on('close', closeBoth);
      ws.on('error', () => up.terminate());
      up.on('error', () => ws.terminate());
    },
  });
  server.script('/join/worker.js', NO_X25519 + worker);
  return { server, relayed };
}

test('two browser tabs and a baffle join process aggregate securely; the run matches baffle run within the browser tolerance', { timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const dir = tempDir('baffle-browser-secagg-');
  const cfg = join(dir, 'secure.json');
  writeFileSync(cfg, JSON.stringify(SECURE));
  const entries = makeTokens(3);
  const tokens = new Map(entries.map((e) => [e.client, e.token]));
  const tokensPath = join(dir, 'tokens.json');
  writeTokens(tokensPath, entries);
  const joinTokens = join(dir, 'tokens-2.json');
  writeTokens(joinTokens, entries.filter((e) => e.client === 2));
  const debug = join(dir, 'debug');
  const refDir = join(dir, 'reference');
  const ref = baffle(['run', '--config', cfg, '--out', refDir, '--quiet', '--set', 'workers=1']);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tokensPath, '--config', cfg, '--out', out, '--port', '0', '--quiet'], { ...process.env, BAFFLE_SECAGG_DEBUG: debug });
  const origin = `http://127.0.0.1:${server.port}`;
  const shardFiles = [0, 1].map((id) => writeShardIdx(join(dir, `client${id}`), SECURE, id));

  // The refusal first (the server does not train before its three clients are connected): a tab without X25519.
  {
    const stub = await withoutX25519(origin, server.url);
    const { page, log } = await newPage(browser!);
    const sockets = countSockets(page);
    await page.goto(`${stub.server.origin}/join#client=0&token=${encodeURIComponent(tokens.get(0)!)}`);
    await page.setInputFiles('#data', [shardFiles[0]!.images, shardFiles[0]!.labels]);
    await page.click('#join');
    const s = await waitForState(page, ['error', 'refused', 'done', 'training'], 30_000);
    await new Promise((r) => setTimeout(r, 400)); // a client that wrongly retried would show it within its first backoff
    assert.equal(await page.evaluate(() => (globalThis as any).__noX25519 ?? false), false, 'the stub is the worker\'s, not the page\'s');
    assert.equal(s.state, 'refused', `#state: ${s.text}\n${log.join('\n')}`);
    assert.match(s.text, /^error: Refused: the server aggregates securely \(secureAggregation = true\), which this client does not support: its platform lacks X25519 key agreement/);
    assert.equal(sockets.count, 1, 'one connection, no retry');
    assert.deepEqual(log.filter((l) => l.startsWith('pageerror')), [], 'no uncaught error in the page');
    await page.close();
    await stub.server.close();
    assert.equal(stub.relayed.connections, 1);
    const st = await status(server.port);
    assert.equal(st?.step, 0, 'no round ran');
    assert.match(server.proc.output(), /client 0 reports "client-setup": "the server aggregates securely/);
  }
  const tRefusal = Date.now();

  const pages = [];
  for (const id of [0, 1]) pages.push({ ...(await openJoinTab(browser!, origin, id, tokens.get(id)!, shardFiles[id]!)), id });
  const joiner = baffle(['join', server.url, '--tokens', joinTokens, '--quiet'], undefined, { ...process.env, BAFFLE_SECAGG_DEBUG: debug });
  for (const p of pages) {
    const s = await waitForState(p.page, ['done', 'error', 'refused'], 90_000);
    assert.equal(s.state, 'done', `page of client ${p.id}: ${s.text}\n${p.log.join('\n')}`);
    assert.equal(await p.page.textContent('#round'), String(SECURE.maxSteps), 'the last round it answered');
    assert.equal(p.sockets.count, 1, `client ${p.id} connected once (no reconnection)`);
    assert.deepEqual(p.log.filter((l) => l.startsWith('pageerror') || l.startsWith('worker')), [], `client ${p.id}: no error in the page or worker`);
  }
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await joiner.exited, 0, joiner.output());
  assert.equal(await ref.exited, 0, ref.output());
  const tRun = Date.now();

  // Every round was a secure round that committed with all three clients.
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => r.step), Array.from({ length: SECURE.maxSteps }, (_, i) => i + 1));
  for (const r of rounds) {
    assert.equal(r.abandoned, false, `round ${r.step} committed`);
    assert.deepEqual(r.counted, [0, 1, 2], `round ${r.step}: the browsers' inputs counted`);
    assert.deepEqual(r.dropped, [], `round ${r.step}: nothing dropped`);
  }
  assert.doesNotMatch(server.proc.output(), /secure aggregation (failed|dropped)|did not decrypt|secagg-refused/);

  // What the server saw: masked vectors, and a sum whose weight coordinate is exactly the three full batches.
  const seen = readJsonLines(join(debug, 'server.jsonl'));
  assert.deepEqual(seen.map((r) => r.round), Array.from({ length: SECURE.maxSteps }, (_, i) => i));
  const joined = new Map(readJsonLines(join(debug, 'client-2.jsonl')).map((r) => [r.round, r.vector as number[]]));
  const dim = SECURE.K + 2;
  let maxLossGap = 0;
  for (const r of seen) {
    assert.deepEqual(r.survivors, [0, 1, 2]);
    for (const c of [0, 1, 2]) assert.equal((r.masked[String(c)] as number[]).length, dim);
    assert.equal(r.sum[SECURE.K], 3, `round ${r.round}: Σ w = 3`);
    // The browsers' part of the sum (the sum less the Node client's plain vector): finite scalars of the size a
    // client sends, and two losses near the Node client's (same weights, other minibatches).
    const mine = joined.get(r.round)!;
    const browsers = r.sum.map((v: number, i: number) => v - mine[i]!);
    assert.ok(browsers.slice(0, SECURE.K).every((v: number) => Number.isFinite(v) && Math.abs(v) < 2 * 50), `round ${r.round}: ${browsers}`);
    maxLossGap = Math.max(maxLossGap, Math.abs(browsers[SECURE.K + 1] / 2 - mine[SECURE.K + 1]!));
    const maskedOf2 = r.masked['2'] as number[];
    assert.ok(maskedOf2.some((v, i) => Math.abs(v - mine[i]!) > 1), `round ${r.round}: the server saw the Node client's vector masked`);
  }
  // A loose plausibility bound (the minibatches differ): a browser's loss is the loss of this model, not garbage.
  assert.ok(maxLossGap < 1, `the browsers' mean loss reading stays near the Node client's (max gap ${maxLossGap})`);

  // Against `baffle run` with the same keys (which serve + join with Node clients only equals bit for bit): the
  // counters equal, the metrics within the browser tolerance.
  const served = readJsonLines(join(out, 'metrics.jsonl'));
  const reference = readJsonLines(join(refDir, 'metrics.jsonl'));
  const counters = (m: Record<string, any>) => ({ step: m.step, epoch: m.epoch, forwardPasses: m.forwardPasses, uplinkBytes: m.uplinkBytes, downlinkBytes: m.downlinkBytes, directions: m.directions, lr: m.lr });
  assert.deepEqual(served.map(counters), reference.map(counters));
  const gaps = { accuracy: 0, testLoss: 0, trainLoss: 0 };
  for (const [i, m] of served.entries()) {
    const r = reference[i]!;
    const what = `step ${m.step}: served ${m.testAccuracy} / ${m.testLoss} / ${m.trainLoss}, baffle run ${r.testAccuracy} / ${r.testLoss} / ${r.trainLoss}`;
    gaps.accuracy = Math.max(gaps.accuracy, Math.abs(m.testAccuracy - r.testAccuracy));
    gaps.testLoss = Math.max(gaps.testLoss, Math.abs(m.testLoss - r.testLoss));
    gaps.trainLoss = Math.max(gaps.trainLoss, Math.abs(m.trainLoss - r.trainLoss));
    assert.ok(Math.abs(m.testAccuracy - r.testAccuracy) <= ACCURACY_TOLERANCE + 1e-12, `test accuracy, ${what}`);
    assert.ok(Math.abs(m.testLoss - r.testLoss) <= LOSS_TOLERANCE, `test loss, ${what}`);
    assert.ok(Math.abs(m.trainLoss - r.trainLoss) <= LOSS_TOLERANCE, `train loss, ${what}`);
  }
  const last = served.at(-1)!;
  const refLast = reference.at(-1)!;
  console.log(
    `browser secure federation, ${SECURE.maxSteps} steps: final accuracy ${last.testAccuracy} (baffle run ${refLast.testAccuracy}), ` +
      `test loss ${last.testLoss.toFixed(4)} (${refLast.testLoss.toFixed(4)}), train loss ${last.trainLoss.toFixed(4)} (${refLast.trainLoss.toFixed(4)}); ` +
      `max gaps over the evaluations: accuracy ${gaps.accuracy.toFixed(3)}, test loss ${gaps.testLoss.toFixed(4)}, train loss ${gaps.trainLoss.toFixed(4)}; ` +
      `browsers' mean loss reading vs the Node client's: max ${maxLossGap.toFixed(4)}; uplink per client and step ${last.uplinkBytes / (3 * SECURE.maxSteps)} B; ` +
      `refusal ${((tRefusal - t0) / 1000).toFixed(1)} s, run ${((tRun - tRefusal) / 1000).toFixed(1)} s`,
  );
  assert.ok(last.testAccuracy > 0.3, `the run learns (final accuracy ${last.testAccuracy})`);
});
