// Networked federation, end to end: a real `baffle serve` and real `baffle join` processes on loopback train
// exactly what `baffle run` trains with the same configuration and seed (no client drops).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { torchMlp } from './onnxFixtures.ts';
import { baffle, BIN, killAll, readJsonLines, startServer, status, tempDir, withoutWall } from './netHelpers.ts';

after(killAll);

function runSync(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** Runs `baffle run` with the config and returns its run directory. */
function reference(dir: string, cfg: string): Promise<string> {
  const out = join(dir, 'reference');
  const p = baffle(['run', '--config', cfg, '--out', out, '--quiet']);
  return p.exited.then((code) => {
    assert.equal(code, 0, p.output());
    return out;
  });
}

function assertSameRun(served: string, ref: string): void {
  const a = readJsonLines(join(served, 'metrics.jsonl'));
  const b = readJsonLines(join(ref, 'metrics.jsonl'));
  assert.ok(a.length > 0);
  assert.deepEqual(withoutWall(a), withoutWall(b), 'metrics of serve + join equal those of baffle run');
  assert.deepEqual(readFileSync(join(served, 'weights.bin')), readFileSync(join(ref, 'weights.bin')), 'final weights are bit-identical');
  const sa = JSON.parse(readFileSync(join(served, 'summary.json'), 'utf8'));
  const sb = JSON.parse(readFileSync(join(ref, 'summary.json'), 'utf8'));
  for (const k of ['step', 'testAccuracy', 'bestTestAccuracy', 'params', 'totalSteps', 'forwardPasses', 'uplinkBytes']) assert.equal(sa[k], sb[k], k);
}

test('serve + two join processes reproduce baffle run exactly (FedSGD); status endpoint; bad tokens refused', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'tiny.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [8], K: 5, clients: 4, maxSteps: 6, evalEvery: 3, testSubset: 200, seed: 5 }));
  const tokens = join(dir, 'tokens.json');
  const t = runSync(['tokens', '--clients', '4', '--out', tokens, '--parts', '2']);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(statSync(tokens).mode & 0o077, 0, 'the tokens file is readable by its owner only');

  const ref = reference(dir, cfg);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tokens, '--config', cfg, '--out', out, '--port', '0', '--quiet']);
  assert.match(server.url, /^ws:\/\/127\.0\.0\.1:/, 'listens on loopback by default');

  const s = await status(server.port);
  assert.equal(s?.state, 'waiting');
  assert.equal(s?.totalSteps, 6);
  assert.deepEqual(s?.clients, { connected: 0, federation: 4, connections: 0 });

  // A client with somebody else's token file is refused and does not retry.
  const wrong = join(dir, 'wrong.json');
  assert.equal(runSync(['tokens', '--clients', '1', '--out', wrong]).status, 0);
  const intruder = baffle(['join', server.url, '--tokens', wrong]);
  assert.equal(await intruder.exited, 3, intruder.output());
  assert.match(intruder.output(), /authentication failed/);

  const a = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part1.json')]);
  const b = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part2.json'), '--quiet']);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await a.exited, 0, a.output());
  assert.equal(await b.exited, 0, b.output());
  assert.match(a.output(), /2 done/);
  assert.match(server.proc.output(), /refused .*authentication failed for client 0/);

  assertSameRun(out, await ref);
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  for (const r of rounds) assert.deepEqual(r.counted, [0, 1, 2, 3]);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.K, 5);
  assert.equal(config.host, '127.0.0.1');
});

test('FedAvg, central differences and shared seeds over TLS, four virtual clients in one join process', async () => {
  const dir = tempDir();
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  const cfg = join(dir, 'fedavg.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      hidden: [8], K: 4, clients: 4, fedopt: 'fedavg', localSteps: 2, localOptimizer: 'adam', scheme: 'central',
      seedPolicy: 'shared', participation: 0.75, maxSteps: 4, evalEvery: 2, testSubset: 200, seed: 9,
    }),
  );
  const tokens = join(dir, 'tokens.json');
  assert.equal(runSync(['tokens', '--clients', '4', '--out', tokens]).status, 0);
  const ref = reference(dir, cfg);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tokens, '--config', cfg, '--out', out, '--port', '0', '--tls-cert', cert, '--tls-key', key, '--quiet']);
  assert.match(server.url, /^wss:\/\//);

  // Without the certificate the client cannot verify the server and does not get in.
  const untrusting = baffle(['join', server.url, '--tokens', tokens, '--give-up', '1', '--quiet']);
  assert.equal(await untrusting.exited, 4, untrusting.output());

  const j = baffle(['join', server.url, '--tokens', tokens, '--virtual', '4', '--ca', cert]);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await j.exited, 0, j.output());
  assertSameRun(out, await ref);
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  for (const r of rounds) assert.equal(r.participants.length, 3, 'participation 0.75 of 4 clients');
});

test('serve --set model=FILE.onnx: join clients that never see the file train exactly what baffle run trains', async () => {
  const dir = tempDir();
  const model = join(dir, 'model.onnx');
  writeFileSync(model, torchMlp({ hidden: 16 }));
  const cfg = join(dir, 'imported.json');
  writeFileSync(cfg, JSON.stringify({ model, trainable: 'last:1', K: 6, clients: 3, maxSteps: 6, evalEvery: 3, testSubset: 200, seed: 11 }));
  const tokens = join(dir, 'tokens.json');
  assert.equal(runSync(['tokens', '--clients', '3', '--out', tokens]).status, 0);
  const ref = await reference(dir, cfg);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tokens, '--config', cfg, '--out', out, '--port', '0', '--quiet']);
  // The server holds the model now; the clients get it in their welcome: the file can go.
  unlinkSync(model);
  const elsewhere = join(dir, 'client-machine');
  mkdirSync(elsewhere);
  const j = baffle(['join', server.url, '--tokens', tokens, '--virtual', '3'], elsewhere);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await j.exited, 0, j.output());
  assertSameRun(out, ref);
  assert.equal(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).params, 16 * 10 + 10, 'only the head trained');
});

test("a client can train on its own directory of IDX files (--data)", async () => {
  const dir = tempDir();
  const own = join(dir, 'own');
  mkdirSync(own);
  // 40 images of 28×28 bytes with labels 0..9: the client's private data, in the MNIST file format.
  const count = 40;
  const images = Buffer.alloc(16 + count * 784);
  images.writeUInt32BE(0x803, 0);
  images.writeUInt32BE(count, 4);
  images.writeUInt32BE(28, 8);
  images.writeUInt32BE(28, 12);
  for (let i = 16; i < images.length; i++) images[i] = (i * 7919) % 251;
  const labels = Buffer.alloc(8 + count);
  labels.writeUInt32BE(0x801, 0);
  labels.writeUInt32BE(count, 4);
  for (let i = 0; i < count; i++) labels[8 + i] = i % 10;
  writeFileSync(join(own, 'train-images-idx3-ubyte'), images);
  writeFileSync(join(own, 'train-labels-idx1-ubyte'), labels);
  const tokens = join(dir, 'tokens.json');
  assert.equal(runSync(['tokens', '--clients', '2', '--out', tokens, '--parts', '2']).status, 0);
  const out = join(dir, 'served');
  const server = await startServer([
    '--tokens', tokens, '--out', out, '--port', '0', '--quiet',
    '--set', 'hidden=[8]', '--set', 'K=3', '--set', 'clients=2', '--set', 'maxSteps=3', '--set', 'evalEvery=3', '--set', 'testSubset=100',
  ]);
  const a = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part1.json'), '--quiet']);
  const b = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part2.json'), '--data', own, '--quiet']);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await a.exited, 0, a.output());
  assert.equal(await b.exited, 0, b.output());
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => r.counted), [[0, 1], [0, 1], [0, 1]]);
});

test('serve and join refuse bad settings before any work', () => {
  const dir = tempDir();
  const out = join(dir, 'never');
  const noTokens = runSync(['serve', '--out', out]);
  assert.equal(noTokens.status, 2);
  assert.match(noTokens.stderr, /--tokens FILE is required/);
  const tokens = join(dir, 'tokens.json');
  assert.equal(runSync(['tokens', '--clients', '3', '--out', tokens]).status, 0);
  const again = runSync(['tokens', '--clients', '3', '--out', tokens]);
  assert.equal(again.status, 2, 'an existing tokens file is not overwritten');
  const bad = runSync(['serve', '--tokens', tokens, '--out', out, '--set', 'quorum=0', '--set', 'port=70000', '--set', 'K=0', '--set', 'clients=3']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /quorum: got 0/);
  assert.match(bad.stderr, /port: got 70000/);
  assert.match(bad.stderr, /K: got 0/);
  const tooFew = runSync(['serve', '--tokens', tokens, '--out', out, '--set', 'clients=2']);
  assert.equal(tooFew.status, 2);
  assert.match(tooFew.stderr, /names client 2/);
  const url = runSync(['join', 'http://127.0.0.1:1', '--tokens', tokens]);
  assert.equal(url.status, 2);
  assert.match(url.stderr, /ws:\/\/ or wss:\/\//);
  const missing = runSync(['join', 'ws://127.0.0.1:1', '--tokens', tokens, '--client', '2', '--virtual', '2']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no token for client 3/);
  const resume = runSync(['serve', '--resume', join(dir, 'nothing-here')]);
  assert.equal(resume.status, 2);
  assert.match(resume.stderr, /nothing-here: no such directory/);
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const notRun = runSync(['serve', '--resume', empty]);
  assert.equal(notRun.status, 2);
  assert.match(notRun.stderr, /no config\.json there \(not a run directory\)/);
});

test('SIGTERM stops the server cleanly: clients are told 4004, reconnect to the restarted server, and the run ends as baffle run ends', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ hidden: [8], K: 5, clients: 2, maxSteps: 30, evalEvery: 10, testSubset: 200, seed: 9 }));
  const tokens = join(dir, 'tokens.json');
  assert.equal(runSync(['tokens', '--clients', '2', '--out', tokens]).status, 0);
  const ref = reference(dir, cfg);
  // The restarted server must listen where the clients reconnect: a port free a moment ago.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const out = join(dir, 'served');
  const first = await startServer(['--tokens', tokens, '--config', cfg, '--out', out, '--port', String(port), '--quiet']);
  const client = baffle(['join', first.url, '--tokens', tokens, '--give-up', '60']);
  for (;;) {
    const s = await status(port);
    if ((s?.step ?? 0) >= 5) break;
    assert.equal(first.proc.child.exitCode, null, first.proc.output());
    await new Promise((r) => setTimeout(r, 20));
  }
  const t0 = performance.now();
  first.proc.child.kill('SIGTERM');
  assert.equal(await first.proc.exited, 143, first.proc.output());
  const stopMs = performance.now() - t0;
  assert.ok(stopMs < 5000, `stopped in ${stopMs.toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 300));
  assert.match(client.output(), /server stopping; reconnecting/, client.output());
  const second = await startServer(['--resume', out, '--tokens', tokens, '--port', String(port), '--quiet']);
  assert.equal(await second.proc.exited, 0, second.proc.output());
  assert.equal(await client.exited, 0, client.output());
  assertSameRun(out, await ref);
  assert.deepEqual(readJsonLines(join(out, 'rounds.jsonl')).map((r) => r.step), Array.from({ length: 30 }, (_, i) => i + 1), 'every round once');
});
