// Secure aggregation over the network: real `baffle serve` and `baffle join` processes (and, where a test needs
// to act at an exact protocol moment, protocol clients in this process). The server's view of a client is its
// masked vector; the unmasked sum equals the plain one within the quantization bound; clients that vanish after
// sending their masked vector are recovered; a client that sends malformed shares is dropped with its reason;
// and a secure run trains as well as a plain one (bit for bit as `baffle run` with the same key).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ClientEngine, FederatedClient, ModelCache, type SocketOpener } from '../src/core/protocol/client.ts';
import { decodeClientFrame, decodeServerFrame, encode, helloProof, SUBPROTOCOL } from '../src/core/protocol/protocol.ts';
import { nodePlatform, wsOpener } from '../src/node/net/client.ts';
import { readTokens } from '../src/node/net/tokens.ts';
import { nodeSecAggCrypto } from '../src/node/secagg/crypto.ts';
import { baffle, BIN, killAll, readJsonLines, startServer, tempDir, withoutWall } from './netHelpers.ts';

after(killAll);

const TINY = { hidden: [8], K: 5, clients: 4, evalEvery: 2, testSubset: 200, seed: 21, seedPolicy: 'shared', secureAggregation: true };

function tokensFor(dir: string, clients: number, parts?: number): string {
  const path = join(dir, 'tokens.json');
  const r = spawnSync(process.execPath, [BIN, 'tokens', '--clients', String(clients), '--out', path, ...(parts ? ['--parts', String(parts)] : [])]);
  assert.equal(r.status, 0, String(r.stderr));
  return path;
}

function writeTokens(path: string, tokens: Map<number, string>, ids: number[]): string {
  writeFileSync(path, JSON.stringify({ format: 'baffle-tokens/1', tokens: ids.map((c) => ({ client: c, token: tokens.get(c) })) }));
  return path;
}

const env = (debug: string) => ({ ...process.env, BAFFLE_SECAGG_DEBUG: debug });

test('the server sees masked vectors only; the unmasked sum equals the plain sum within m / S', async () => {
  const dir = tempDir('baffle-secagg-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ ...TINY, maxSteps: 4 }));
  const tokens = tokensFor(dir, 4, 2);
  const debug = join(dir, 'debug');
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', tokens, '--config', cfg, '--out', out, '--port', '0', '--quiet'], env(debug));
  // The same configuration in `baffle run`, whose simulation runs the same secure rounds in process.
  const sim = baffle(['run', '--config', cfg, '--out', join(dir, 'sim'), '--quiet', '--set', 'workers=1']);
  const a = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part1.json'), '--quiet'], undefined, env(debug));
  const b = baffle(['join', server.url, '--tokens', join(dir, 'tokens-part2.json'), '--quiet'], undefined, env(debug));
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await a.exited, 0, a.output());
  assert.equal(await b.exited, 0, b.output());
  assert.equal(await sim.exited, 0, sim.output());
  // Masks cancel exactly and the rounding is seeded: serve + join and the simulation agree bit for bit.
  assert.deepEqual(withoutWall(readJsonLines(join(out, 'metrics.jsonl'))), withoutWall(readJsonLines(join(dir, 'sim', 'metrics.jsonl'))));
  assert.deepEqual(readFileSync(join(out, 'weights.bin')), readFileSync(join(dir, 'sim', 'weights.bin')));

  const seen = readJsonLines(join(debug, 'server.jsonl'));
  assert.deepEqual(seen.map((r) => r.round), [0, 1, 2, 3]);
  const plain = new Map<string, number[]>();
  for (const f of readdirSync(debug).filter((n) => n.startsWith('client-'))) {
    for (const r of readJsonLines(join(debug, f))) plain.set(`${r.round}:${r.client}`, r.vector);
  }
  for (const r of seen) {
    assert.deepEqual(r.survivors, [0, 1, 2, 3]);
    const bound = 4 / r.scale;
    const dim = TINY.K + 2;
    const want = new Array(dim).fill(0);
    for (const c of r.survivors) {
      const x = plain.get(`${r.round}:${c}`)!;
      const masked = r.masked[String(c)] as number[];
      assert.equal(masked.length, dim);
      // Masked words are uniform over Z_2^32: read as fixed point they are far from the client's input.
      assert.ok(masked.some((v, i) => Math.abs(v - x[i]!) > 1), `round ${r.round}: client ${c}'s masked vector differs from its input`);
      x.forEach((v, i) => (want[i] += v));
    }
    r.sum.forEach((v: number, i: number) => assert.ok(Math.abs(v - want[i]) < bound, `round ${r.round}, coordinate ${i}: ${v} vs ${want[i]} (bound ${bound})`));
    assert.equal(r.sum[TINY.K], 4, 'Σ w = the four clients of full batches');
  }
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  for (const r of rounds) assert.deepEqual(r.counted, [0, 1, 2, 3]);
  // The uplink of a secure round, measured: every byte the clients sent.
  const perClient = rounds.map((r) => r.bytesIn / 4);
  console.log(`secure aggregation, 4 clients, K = 5: ${perClient.join(', ')} bytes in per client and round`);
});

/** A socket opener that kills its client (no further frame, no reconnect) right after it sent `sa-masked` in `round`. */
function killAfterMasked(round: number, onKill: () => void): SocketOpener {
  const open = wsOpener(undefined);
  return (url, sub, events) => {
    const ws = open(url, sub, events);
    return {
      get isOpen() {
        return ws.isOpen;
      },
      close: () => ws.close(),
      terminate: () => ws.terminate(),
      send(frame) {
        ws.send(frame);
        const m = decodeClientFrame(frame);
        if (m.type === 'sa-masked' && m.round === round) onKill();
      },
    };
  };
}

test('clients killed right after sending their masked vector are recovered, and the round commits', async () => {
  const dir = tempDir('baffle-secagg-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ ...TINY, maxSteps: 4, secAggThreshold: 2, heartbeat: 1 }));
  const path = tokensFor(dir, 4);
  const tokens = readTokens(path);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', path, '--config', cfg, '--out', out, '--port', '0']);
  const honest = baffle(['join', server.url, '--tokens', writeTokens(join(dir, 'a.json'), tokens, [0, 1]), '--quiet']);
  // Clients 2 and 3 run here, on the same protocol client as `baffle join`, and die after their masked input of round 2.
  const engine = new ClientEngine(nodePlatform({ kind: 'dataset', dataDir: null }));
  const models = new ModelCache();
  const doomed = [2, 3].map((id) => {
    const c: FederatedClient = new FederatedClient(id, tokens.get(id)!, engine, models, {
      url: server.url,
      agent: 'baffle-test (node)',
      open: killAfterMasked(1, () => setImmediate(() => c.stop())),
      secAggCrypto: nodeSecAggCrypto,
    });
    return c.run();
  });
  assert.deepEqual(await Promise.all(doomed), ['stopped', 'stopped']);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await honest.exited, 0, honest.output());
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => r.abandoned), [false, false, false, false]);
  assert.deepEqual(rounds[1].counted, [0, 1, 2, 3], 'the two killed clients sent their masked vectors: their inputs count');
  assert.deepEqual(
    rounds[1].dropped.map((d: { client: number }) => d.client).sort(),
    [2, 3],
  );
  for (const d of rounds[1].dropped) assert.match(d.reason, /secure aggregation: disconnected in phase unmask/);
  assert.deepEqual(rounds[2].counted, [0, 1]);
  assert.deepEqual(rounds[3].counted, [0, 1]);
  assert.match(server.proc.output(), /round 2: secure aggregation dropped client [23]: disconnected in phase unmask/);
});

/** Client `id` authenticates, answers its tasks with real keys, then sends garbage where its shares belong. */
function garbageShares(url: string, HOSTILE: number, token: string): { ws: WebSocket; rounds(): number } {
  const ws = new WebSocket(url, SUBPROTOCOL);
  ws.on('error', () => {});
  let garbage = 0;
  ws.on('message', async (data: Buffer) => {
    const msg = decodeServerFrame(data);
    if (msg.type === 'challenge') {
      const proof = await helloProof(token, msg.nonce, HOSTILE);
      ws.send(encode({ type: 'hello', protocol: 1, clientId: HOSTILE, proof, runId: null, version: null, agent: 'garbage-shares' }));
    } else if (msg.type === 'ping') ws.send(encode({ type: 'pong', time: msg.time }));
    else if (msg.type === 'task') {
      const [c, s] = [await nodeSecAggCrypto.generateKeyPair(), await nodeSecAggCrypto.generateKeyPair()];
      ws.send(encode({ type: 'sa-advertise', task: msg.task, round: msg.round, cPk: c.publicKey, sPk: s.publicKey }));
    } else if (msg.type === 'sa-roster') {
      garbage++;
      const shares = msg.keys.filter((k) => k.client !== HOSTILE).map((k) => ({ to: k.client, ct: new Uint8Array(7).fill(0xee) }));
      ws.send(encode({ type: 'sa-shares', round: msg.round, commit: new Uint8Array(32), shares }));
    }
  });
  return { ws, rounds: () => garbage };
}

test('a client that sends malformed shares is dropped with the reason, and every round still commits', async () => {
  const dir = tempDir('baffle-secagg-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ ...TINY, maxSteps: 3 }));
  const path = tokensFor(dir, 4);
  const tokens = readTokens(path);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', path, '--config', cfg, '--out', out, '--port', '0']);
  // A client without secure aggregation (as the browser client is today) refuses the server at its welcome.
  const plainOnly = new FederatedClient(3, tokens.get(3)!, new ClientEngine(nodePlatform({ kind: 'dataset', dataDir: null })), new ModelCache(), {
    url: server.url,
    agent: 'no-secagg (node)',
    open: wsOpener(undefined),
  });
  assert.equal(await plainOnly.run(), 'refused');
  assert.match(plainOnly.why ?? '', /the server aggregates securely \(secureAggregation = true\), which this client does not support: its platform lacks X25519/);
  const honest = baffle(['join', server.url, '--tokens', writeTokens(join(dir, 'a.json'), tokens, [0, 1, 2]), '--quiet']);
  const hostile = garbageShares(server.url, 3, tokens.get(3)!);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await honest.exited, 0, honest.output());
  hostile.ws.terminate();
  assert.equal(hostile.rounds(), 3, 'the hostile client took part in every round');
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  for (const r of rounds) {
    assert.equal(r.abandoned, false);
    assert.deepEqual(r.counted, [0, 1, 2]);
    assert.deepEqual(r.dropped, [{ client: 3, reason: 'secure aggregation: sa-shares: the ciphertext for client 0 has 7 bytes, expected 124' }]);
  }
  assert.match(server.proc.output(), /round 1: secure aggregation dropped client 3: sa-shares: the ciphertext for client 0 has 7 bytes, expected 124/);
});

test('below the threshold a secure round fails cleanly: logged, abandoned, and the run goes on', async () => {
  const dir = tempDir('baffle-secagg-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ ...TINY, maxSteps: 2, secAggThreshold: 4 }));
  const path = tokensFor(dir, 4);
  const tokens = readTokens(path);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', path, '--config', cfg, '--out', out, '--port', '0']);
  const honest = baffle(['join', server.url, '--tokens', writeTokens(join(dir, 'a.json'), tokens, [0, 1, 2]), '--quiet']);
  const hostile = garbageShares(server.url, 3, tokens.get(3)!);
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await honest.exited, 0, honest.output());
  hostile.ws.terminate();
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => [r.abandoned, r.counted]), [[true, []], [true, []]]);
  assert.match(server.proc.output(), /round 1: secure aggregation failed: 3 clients with shares sent, fewer than the threshold 4; the step passes without an update/);
  const metrics = readJsonLines(join(out, 'metrics.jsonl'));
  assert.ok(Number.isNaN(metrics.at(-1)!.trainLoss ?? NaN), 'no round counted a loss');
});

test('secure aggregation trains as well as plain aggregation (the default MLP, mnist-10k, 4 clients, 30 steps)', async () => {
  const dir = tempDir('baffle-secagg-');
  const base = { clients: 4, seedPolicy: 'shared', maxSteps: 30, evalEvery: 30, ema: false, seed: 3 };
  const plainCfg = join(dir, 'plain.json');
  const secureCfg = join(dir, 'secure.json');
  writeFileSync(plainCfg, JSON.stringify(base));
  writeFileSync(secureCfg, JSON.stringify({ ...base, secureAggregation: true }));
  const run = (cfg: string, name: string) => {
    const p = baffle(['run', '--config', cfg, '--out', join(dir, name), '--quiet', '--set', 'workers=1']);
    return p.exited.then((code) => assert.equal(code, 0, p.output()));
  };
  const path = tokensFor(dir, 4);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', path, '--config', secureCfg, '--out', out, '--port', '0', '--quiet']);
  const j = baffle(['join', server.url, '--tokens', path, '--quiet']);
  await run(plainCfg, 'plain');
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await j.exited, 0, j.output());
  const metrics = (name: string) => readJsonLines(join(dir, name, 'metrics.jsonl'));
  const plain = metrics('plain');
  const secure = metrics('served');
  assert.equal(secure.length, 1);
  // The secure run did aggregate securely (its loss readings went through the fixed point, its bytes are the
  // secure protocol's); its model may still equal the plain one: the quantization error (< 4/S ≈ 1e-6 per
  // coordinate of the sum) is below what float32 ĝ and Adam resolve.
  assert.notEqual(secure.at(-1)!.trainLoss, plain.at(-1)!.trainLoss);
  assert.ok(secure.at(-1)!.uplinkBytes > plain.at(-1)!.uplinkBytes);
  const gap = Math.abs(secure.at(-1)!.testAccuracy - plain.at(-1)!.testAccuracy);
  console.log(
    `accuracy after 30 steps: plain ${(100 * plain.at(-1)!.testAccuracy).toFixed(2)}%, secure ${(100 * secure.at(-1)!.testAccuracy).toFixed(2)}% ` +
      `(test loss ${plain.at(-1)!.testLoss.toFixed(5)} / ${secure.at(-1)!.testLoss.toFixed(5)}) ` +
      `(gap ${(100 * gap).toFixed(2)} points); uplink per client-step: plain ${plain.at(-1)!.uplinkBytes / 120} B, secure ${secure.at(-1)!.uplinkBytes / 120} B`,
  );
  assert.ok(gap < 0.005, `accuracy gap ${gap}`);
  assert.ok(plain.at(-1)!.testAccuracy > 0.5, 'the runs learned something');
});

test('differential privacy under secure aggregation (distributed noise): serve + join and baffle run report ε and δ in summary.json', async () => {
  const dir = tempDir('baffle-secagg-dp-');
  const cfg = join(dir, 'dp.json');
  writeFileSync(cfg, JSON.stringify({ ...TINY, maxSteps: 8, evalEvery: 4, dpClip: 1, noiseMultiplier: 1, dpNoise: 'distributed' }));
  const path = tokensFor(dir, 4);
  const out = join(dir, 'served');
  const server = await startServer(['--tokens', path, '--config', cfg, '--out', out, '--port', '0', '--quiet']);
  const j = baffle(['join', server.url, '--tokens', path, '--quiet']);
  const sim = baffle(['run', '--config', cfg, '--out', join(dir, 'sim'), '--quiet', '--set', 'workers=1']);
  assert.equal(await sim.exited, 0, sim.output());
  assert.equal(await server.proc.exited, 0, server.proc.output());
  assert.equal(await j.exited, 0, j.output());
  const summary = (name: string) => JSON.parse(readFileSync(join(dir, name, 'summary.json'), 'utf8'));
  const served = summary('served');
  const simulated = summary('sim');
  for (const s of [served, simulated]) {
    assert.equal(s.delta, 1e-5);
    assert.equal(s.noiseMultiplier, 1);
    assert.ok(typeof s.epsilon === 'number' && s.epsilon > 0 && Number.isFinite(s.epsilon), JSON.stringify(s));
    assert.equal(s.trainLoss, null, 'a DP secure sum carries no loss reading');
  }
  // Every round committed with all four shares: the same charge, so the same ε.
  assert.equal(served.epsilon, simulated.epsilon);
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.ok(rounds.every((r) => !r.abandoned), JSON.stringify(rounds));
  // The network's noise is each client's secret: the served run is not the simulated one bit for bit.
  assert.notEqual(served.testLoss, simulated.testLoss);
});
