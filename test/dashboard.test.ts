// The live dashboard in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, never a
// downloaded browser): during a `baffle serve` + `baffle join` run the page shows the round advancing, the
// curve gaining points and the connected clients, and at the end the state is done; beyond loopback the
// dashboard's data (/events) and /status answer only with the dashboard token.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { baffle, BIN, killAll, readJsonLines, startServer, tempDir, waitFor } from './netHelpers.ts';

let browser: Browser | null = null;
after(async () => {
  killAll();
  await browser?.close();
});

async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return browser;
}

function tokens(dir: string, clients: number): string {
  const file = join(dir, 'tokens.json');
  const t = spawnSync(process.execPath, [BIN, 'tokens', '--clients', String(clients), '--out', file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(t.status, 0, t.stderr);
  return file;
}

interface Sample {
  state: string;
  round: number;
  points: number;
  clients: { id: string; connected: string; kind: string; counted: number }[];
}

const sample = (page: Page): Promise<Sample> =>
  // (No named function inside: tsx would wrap it in a helper the page does not have.)
  page.evaluate(() => {
    return {
      state: (document.querySelector('#dash-state') as HTMLElement).dataset.state ?? '',
      round: Number((document.querySelector('#dash-round') as HTMLElement).dataset.round),
      points: Number((document.querySelector('#dash-curve') as HTMLElement).dataset.points),
      clients: [...document.querySelectorAll<HTMLElement>('#dash-clients tr[data-client]')].map((tr) => ({
        id: tr.dataset.client!,
        connected: tr.dataset.connected!,
        kind: tr.dataset.kind!,
        counted: Number(tr.dataset.counted),
      })),
    };
  });

test('dashboard: round, curve and clients update live during a run; done at the end', async (t) => {
  const dir = tempDir('baffle-dash-');
  const cfg = join(dir, 'run.json');
  // 40 rounds, an evaluation every 4: slow enough to watch (about 10 s), small enough for the suite.
  writeFileSync(cfg, JSON.stringify({ hidden: [16], K: 40, clients: 2, maxSteps: 40, evalEvery: 4, emaEvery: 'step', testSubset: 200, seed: 3 }));
  const tok = tokens(dir, 2);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tok, '--config', cfg, '--out', out, '--port', '0', '--quiet']);
  assert.match(server.proc.output(), new RegExp(`dashboard: http://127\\.0\\.0\\.1:${server.port}/dashboard\\n`), 'on loopback the dashboard needs no token');

  const page = await (await launch()).newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${server.port}/dashboard`);
  await page.waitForSelector('#dash-state[data-state=waiting]', { timeout: 30_000 });
  const before = await sample(page);
  assert.equal(before.round, 0);
  assert.equal(before.points, 0);
  assert.deepEqual(before.clients, [], 'no client has connected yet');
  assert.equal(await page.textContent('#dash-round'), '0 / 40');

  // The client starts once the page is open: everything after this comes through the event stream.
  const client = baffle(['join', server.url, '--tokens', tok, '--quiet']);
  const during: Sample[] = [];
  let final: Sample | null = null;
  const t0 = Date.now();
  while (!final) {
    if (Date.now() - t0 > 90_000) assert.fail(`the dashboard never showed 'done'\nserver:\n${server.proc.output()}\nclient:\n${client.output()}`);
    const s = await sample(page);
    if (s.state === 'done') final = s;
    else if (s.state === 'training') during.push(s);
    await new Promise((r) => setTimeout(r, 40));
  }
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await client.exited, 0, client.output());
  assert.deepEqual(errors, [], 'no script error in the page');

  // During the run: the round advanced through intermediate values, never backwards.
  const rounds = during.map((s) => s.round);
  assert.ok(rounds.length > 0, 'the page showed the training state');
  assert.deepEqual(rounds, rounds.slice().sort((a, b) => a - b), `the round never goes back: ${rounds.join(' ')}`);
  const middle = new Set(rounds.filter((r) => r > 0 && r < 40));
  assert.ok(middle.size >= 3, `at least three rounds seen before the end: ${[...middle].join(' ')}`);
  // … and the curve gained points while it ran.
  const points = during.map((s) => s.points);
  assert.deepEqual(points, points.slice().sort((a, b) => a - b), `points only grow: ${points.join(' ')}`);
  const growing = new Set(points.filter((p) => p > 0 && p < 10));
  t.diagnostic(`rounds seen: ${[...new Set(rounds)].join(' ')}; points seen: ${[...new Set(points)].join(' ')}`);
  assert.ok(growing.size >= 2, `the curve gained points during the run: ${[...growing].join(' ')}`);
  // The clients table listed the connected clients, both of the Node client.
  const listed = during.find((s) => s.clients.length === 2 && s.clients.every((c) => c.connected === 'true'));
  assert.ok(listed, 'both clients listed as connected during the run');
  assert.deepEqual(listed.clients.map((c) => [c.id, c.kind]), [['0', 'node'], ['1', 'node']]);
  assert.ok(during.some((s) => s.clients.some((c) => c.counted > 0 && c.counted < 40)), 'the counted results grow');

  // At the end: done, the last round, every evaluation plotted, every result counted.
  const metrics = readJsonLines(join(out, 'metrics.jsonl'));
  assert.equal(metrics.length, 10);
  assert.equal(final.round, 40);
  assert.equal(final.points, metrics.length, 'one point per evaluation of metrics.jsonl');
  assert.deepEqual(final.clients.map((c) => c.counted), [40, 40], 'all 40 results of each client counted (rounds.jsonl)');
  assert.equal(await page.textContent('#dash-state'), 'done');
  assert.equal(await page.textContent('#dash-eta'), 'done');
  assert.equal(await page.getAttribute('#dash-dropped', 'data-count'), '0');
  assert.equal(await page.locator('#dash-rounds tr').count(), 12, 'the recent rounds table');
  assert.match((await page.textContent('#dash-accuracy')) ?? '', /^\d+\.\d\d %$/);
  const last = metrics.at(-1)!;
  assert.equal(await page.textContent('#dash-accuracy'), `${(last.testAccuracy * 100).toFixed(2)} %`, 'the last evaluation shown');
  assert.ok((await page.locator('#dash-curve svg').count()) === 1, 'the curves are an SVG drawn in the page');
  // The stream ended with the run and the page does not try to reconnect to a server that is gone.
  assert.equal(await page.getAttribute('#dash-conn', 'data-conn'), 'closed');
  await page.close();
});

async function read(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const ctl = new AbortController();
  const r = await fetch(url, { headers, signal: ctl.signal });
  let body = '';
  if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    // An event stream does not end by itself: read until the first status event, then hang up.
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    while (!/event: status\ndata: .*\n\n/.test(body)) {
      const { value, done } = await reader.read();
      if (done) break;
      body += value;
    }
    ctl.abort();
  } else body = await r.text();
  return { status: r.status, type: r.headers.get('content-type') ?? '', body };
}

test('dashboard beyond loopback: /events and /status refuse without the token (401, JSON) and answer with it', async () => {
  const dir = tempDir('baffle-dash-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [8], K: 5, clients: 2, maxSteps: 4, testSubset: 100 }));
  const tok = tokens(dir, 2);

  // A token too short to be one is refused before any work.
  const short = spawnSync(process.execPath, [BIN, 'serve', '--tokens', tok, '--config', cfg, '--out', join(dir, 'x'), '--dashboard-token', 'abc'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(short.status, 2, short.stderr);
  assert.match(short.stderr, /--dashboard-token: give 16 to 200 characters/);

  const server = await startServer(['--tokens', tok, '--config', cfg, '--out', join(dir, 'served'), '--host', '0.0.0.0', '--port', '0', '--quiet']);
  // Generated at start and printed once, in the dashboard's address.
  const m = await waitFor('the dashboard address', () => /dashboard: (http:\/\/0\.0\.0\.0:\d+\/dashboard)#token=([A-Za-z0-9_-]+) /.exec(server.proc.output()));
  const token = m[2]!;
  assert.ok(token.length >= 32);
  const base = `http://127.0.0.1:${server.port}`;

  for (const [what, headers] of [
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer not-the-token-at-all' }],
    ['the token as Basic credentials', { authorization: `Basic ${token}` }],
  ] as const) {
    for (const path of ['/events', '/status']) {
      const r = await read(base + path, headers);
      assert.equal(r.status, 401, `${path} with ${what}`);
      assert.match(r.type, /^application\/json/);
      const body = JSON.parse(r.body);
      assert.deepEqual(Object.keys(body), ['error'], `${path} with ${what}: an error and nothing else`);
      assert.match(body.error, /token/);
    }
  }
  const auth = { authorization: `Bearer ${token}` };
  const status = await read(`${base}/status`, auth);
  assert.equal(status.status, 200);
  const runId = JSON.parse(status.body).runId as string;
  assert.equal(JSON.parse(status.body).state, 'waiting');
  const events = await read(`${base}/events`, auth);
  assert.equal(events.status, 200);
  assert.match(events.type, /^text\/event-stream/);
  const first = JSON.parse(/event: status\ndata: (.*)\n/.exec(events.body)![1]!);
  assert.equal(first.runId, runId);
  assert.equal(first.state, 'waiting');

  // The page: without the token it shows the refusal and no data; with the fragment it shows the run.
  const page = await (await launch()).newPage();
  await page.goto(`${base}/dashboard`);
  await page.waitForSelector('#dash-state[data-state=error]');
  assert.match((await page.textContent('#dash-state')) ?? '', /^error: dashboard token required/);
  assert.equal(await page.getAttribute('#dash-auth', 'data-show'), 'true');
  assert.equal(await page.textContent('#dash-run'), '—');
  assert.equal(await page.locator('#dash-clients tr').count(), 0);

  await page.goto(`${base}/dashboard#token=not-the-token-at-all`);
  await page.reload();
  await page.waitForSelector('#dash-state[data-state=error]');
  assert.match((await page.textContent('#dash-state')) ?? '', /^error: wrong dashboard token/);

  // Typed into the page's form: the page keeps it in the fragment.
  await page.fill('#dash-token', token);
  await page.click('#dash-token-go');
  await page.waitForSelector('#dash-state[data-state=waiting]');
  assert.equal(await page.textContent('#dash-run'), runId);
  assert.equal(await page.getAttribute('#dash-auth', 'data-show'), 'false');
  assert.equal(new URL(page.url()).hash, `#token=${token}`);

  // Opened from the printed address (host swapped for the loopback one this machine reaches).
  const fresh = await (await launch()).newPage();
  await fresh.goto(`${base}/dashboard#token=${token}`);
  await fresh.waitForSelector('#dash-state[data-state=waiting]');
  assert.equal(await fresh.getAttribute('#dash-conn', 'data-conn'), 'live');
  assert.equal(await fresh.textContent('#dash-round'), '0 / 4');
  await fresh.close();
  await page.close();

  server.proc.kill('SIGTERM');
  await server.proc.exited;
});

test('dashboard on loopback: /events answers loopback host names only; drops, reasons and browser clients shown', async () => {
  // Without a token the stream is open to this machine; a page of another site reaching it through a
  // rebound DNS name sends its own Host header and is refused.
  const dir = tempDir('baffle-dash-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [8], K: 5, clients: 1, maxSteps: 2, testSubset: 100 }));
  const server = await startServer(['--tokens', tokens(dir, 1), '--config', cfg, '--out', join(dir, 'served'), '--port', '0', '--quiet']);
  const ok = await read(`http://127.0.0.1:${server.port}/events`);
  assert.equal(ok.status, 200);
  const { request } = await import('node:http');
  const code = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: '/events', headers: { host: `evil.example:${server.port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(code, 403);
  const s = await read(`http://127.0.0.1:${server.port}/status`);
  assert.equal(s.status, 200, '/status on loopback is as before');

  // What a run with drops looks like, from a stream of the server's event format (the page as served).
  const page = await (await launch()).newPage();
  const status = {
    state: 'training', runId: 'feedc0de', step: 3, totalSteps: 10, lastRound: 3,
    round: { step: 4, attempt: 2, participants: 2, answered: 1, quorum: 1, deadlineInMs: 5000 },
    clients: {
      federation: 2, connected: 1, connections: 1, omitted: 0,
      list: [
        { id: 0, kind: 'node', agent: 'baffle-join/0.1 (node)', connected: true, lastSeenAgoMs: 200, connections: 1, counted: 3, dropped: 0, inRound: 'answered' },
        { id: 1, kind: 'browser', agent: 'baffle-web/0.1 (<b>Mozilla/5.0</b>)', connected: false, lastSeenAgoMs: 65_000, connections: 2, counted: 1, dropped: 2, inRound: 'idle' },
      ],
    },
    bytes: { in: 1234, out: 5_600_000 },
    timing: { stepMs: 2000, roundMs: 1500, etaS: 14, uptimeS: 30 },
    totals: { rounds: 3, dropped: 2, abandoned: 0, refusals: {} },
  };
  const round = (step: number, dropped: { client: number; reason: string }[]) => ({
    step, attempts: dropped.length + 1, participants: [0, 1], counted: dropped.length ? [0] : [0, 1], dropped, abandoned: false, bytesIn: 300, bytesOut: 9000, ms: 1200,
  });
  const stream = [
    `event: rounds\ndata: ${JSON.stringify([round(1, []), round(2, [{ client: 1, reason: 'missed the deadline' }]), round(3, [{ client: 1, reason: 'disconnected mid-round' }])])}\n\n`,
    `event: metrics\ndata: ${JSON.stringify([{ epoch: 0, step: 2, testAccuracy: 0.5, testLoss: 1.5, trainLoss: 1.6, wallMs: 1 }])}\n\n`,
    `event: status\ndata: ${JSON.stringify(status)}\n\n`,
  ].join('');
  await page.route('**/events', (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: stream }));
  await page.goto(`http://127.0.0.1:${server.port}/dashboard`);
  await page.waitForSelector('#dash-state[data-state=training]');
  await page.waitForSelector('#dash-curve[data-points="1"]');
  assert.equal(await page.getAttribute('#dash-dropped', 'data-count'), '2');
  assert.deepEqual(await page.locator('#dash-dropped li').allTextContents(), ['round 3, client 1: disconnected mid-round', 'round 2, client 1: missed the deadline']);
  assert.equal(await page.getAttribute('#dash-round', 'data-round'), '4');
  assert.equal(await page.textContent('#dash-attempt'), 'attempt 2 · 1 of 2 results (quorum 1)');
  assert.equal(await page.textContent('#dash-eta'), '≈ 14 s');
  const browserRow = page.locator('#dash-clients tr[data-client="1"]');
  assert.equal(await browserRow.getAttribute('data-kind'), 'browser');
  assert.equal(await browserRow.getAttribute('data-connected'), 'false');
  assert.deepEqual((await browserRow.locator('td').allTextContents()).slice(1), ['browser', 'disconnected', 'idle', '1 min 5 s ago', '1', '2']);
  assert.equal(await page.locator('#dash-clients b').count(), 0, 'what clients send is shown as text, never as markup');
  assert.deepEqual(await page.locator('#dash-rounds tr').first().locator('td').allTextContents(), ['3', '2', '1 / 2', '1', '300 B', '9.0 KB', '1.20 s']);
  assert.equal(await page.getAttribute('#dash-times', 'data-points'), '3');
  await page.close();

  server.proc.kill('SIGTERM');
  await server.proc.exited;
});
