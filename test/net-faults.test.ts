// Faults and bad input: honest join processes killed at random moments, a hostile client that sends every
// kind of bad frame, and the server killed with SIGKILL once and resumed. The run must finish with every
// round counted once, and the model must be exactly the one the honest results give (replayed in-process).
import { CursorStream } from '../src/core/fl/clientData.ts';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { resolveConfig } from '../src/core/config/index.ts';
import { InProcessTransport } from '../src/node/sim/inProcess.ts';
import { clientShards, clientStream } from '../src/core/fl/setup.ts';
import type { ClientTransport, EstimateRequest, LocalTrainRequest } from '../src/core/fl/transport.ts';
import { loadRunData, loadRunModel } from '../src/node/model/load.ts';
import { Session } from '../src/app/session.ts';
import { decodeServerFrame, encode, helloProof, SUBPROTOCOL, type TaskMsg } from '../src/core/protocol/protocol.ts';
import { readTokens } from '../src/node/net/tokens.ts';
import { baffle, BIN, killAll, readJsonLines, startServer, status, tempDir, waitFor, withoutWall, type Proc } from './netHelpers.ts';

after(killAll);

const RUN = { hidden: [8], K: 5, clients: 4, maxSteps: 40, evalEvery: 5, testSubset: 200, seed: 7 };
const HOSTILE = 3;

/** mulberry32: the kill schedule is random but reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Opens a raw connection, lets `act` talk, resolves with the close code the server chose. */
function probe(url: string, protocols: string[], act: (ws: WebSocket, challenge: Buffer | null) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    let acted = false;
    ws.on('message', (data: Buffer) => {
      if (acted) return;
      acted = true;
      act(ws, data);
    });
    ws.on('close', (code) => resolve(code));
    ws.on('error', (e) => (e.message.includes('Invalid WebSocket frame') ? undefined : reject(e)));
    setTimeout(() => reject(new Error('probe: no close within 20 s')), 20_000).unref();
  });
}

const raw = new Packr({ useRecords: false });

/**
 * A client with a valid token that never sends a valid result: each task it gets is answered with the next
 * kind of bad frame. Frames that break the protocol cost it the connection; it reconnects.
 */
class Hostile {
  static readonly kinds = [
    'nan', 'inf', 'wrong-count', 'wrong-round', 'not-yours', 'stale', 'huge-examples',
    'garbage', 'schema', 'oversize', 'text', 'unknown-type',
  ] as const;
  next = 0;
  sent: string[] = [];
  private stopped = false;
  private ws: WebSocket | null = null;

  constructor(
    private readonly url: () => string,
    private readonly token: string,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(this.url(), SUBPROTOCOL);
        this.ws = ws;
        ws.on('error', () => {});
        ws.on('close', () => resolve());
        ws.on('message', (data: Buffer) => {
          const msg = decodeServerFrame(data);
          if (msg.type === 'challenge') {
            void helloProof(this.token, msg.nonce, HOSTILE).then((proof) =>
              ws.send(encode({ type: 'hello', protocol: 1, clientId: HOSTILE, proof, runId: null, version: null, agent: 'hostile' })),
            );
          } else if (msg.type === 'ping') ws.send(encode({ type: 'pong', time: msg.time }));
          else if (msg.type === 'task') this.attack(ws, msg);
        });
      });
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }

  private attack(ws: WebSocket, task: TaskMsg): void {
    const kind = Hostile.kinds[this.next++ % Hostile.kinds.length];
    this.sent.push(kind);
    const K = task.K;
    const good = new Float32Array(K).fill(0.5);
    const result = (over: Record<string, unknown>) =>
      encode({ type: 'result', task: task.task, round: task.round, examples: 32, loss: 2.3, scalars: good, delta: null, ...over } as never);
    const withValue = (v: number) => {
      const s = good.slice();
      s[K - 1] = v;
      return s;
    };
    switch (kind) {
      case 'nan':
        ws.send(result({ scalars: withValue(NaN) }));
        break;
      case 'inf':
        ws.send(result({ scalars: withValue(Infinity) }));
        break;
      case 'wrong-count':
        ws.send(result({ scalars: new Float32Array(K + 1) }));
        break;
      case 'wrong-round':
        ws.send(result({ round: task.round + 1 }));
        break;
      case 'not-yours':
        ws.send(result({ task: task.task - 1 }));
        break;
      case 'stale':
        // An invalid answer (refused), then a well-formed one for the same task, which is closed by then (late).
        ws.send(result({ loss: -1 }));
        ws.send(result({}));
        break;
      case 'huge-examples':
        ws.send(result({ examples: 1_000_000 }));
        break;
      case 'garbage':
        ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]));
        break;
      case 'schema':
        ws.send(raw.pack({ type: 'result', task: 'seventeen', round: -1 }));
        break;
      case 'oversize':
        ws.send(Buffer.alloc(64 * 1024, 7));
        break;
      case 'text':
        ws.send(JSON.stringify({ type: 'result', task: task.task }));
        break;
      case 'unknown-type':
        ws.send(raw.pack({ type: 'gradient-please', task: task.task }));
        break;
    }
  }
}

/** The honest part of a run, replayed in-process: per round, only the results the server counted. */
async function replay(rounds: Record<string, any>[]) {
  const config = resolveConfig([{ ...RUN, workers: 2 }]);
  const { artifact } = await loadRunModel(config);
  const dataset = loadRunData(config, artifact);
  const streams = clientShards(config, dataset.train.y, dataset.classes).map((s, c) => new CursorStream(() => clientStream(config, s, c)));
  const session = Session.open({ config, artifact, dataset, workers: 2, checkpointDir: null, resume: false, runId: 'replay' });
  try {
    const inner = new InProcessTransport(session.pool, streams, config.batchSize);
    const counted = new Map(rounds.map((r) => [r.step - 1, new Set<number>(r.counted)]));
    const keep = <T extends { clientId: number }>(step: number, replies: T[]) => replies.filter((r) => counted.get(step)?.has(r.clientId));
    const transport: ClientTransport = {
      batchSize: config.batchSize,
      estimate: async (req: EstimateRequest[], w) => keep(req[0]!.step, await inner.estimate(req, w)),
      localTrain: async (req: LocalTrainRequest[], w) => keep(req[0]!.step, await inner.localTrain(req, w)),
      close: async () => {},
    };
    const result = await session.train(session.strategy(transport));
    return { metrics: result.metrics, evalWeights: result.evalWeights };
  } finally {
    await session.close();
  }
}

test('clients killed at random, a hostile client, the server killed -9 and resumed: the run finishes, every honest round counted once', async (t) => {
  const dir = tempDir('baffle-faults-');
  const cfg = join(dir, 'run.json');
  writeFileSync(cfg, JSON.stringify({ ...RUN, roundTimeout: 20, quorum: 0.75, heartbeat: 1, minClients: 3 }));
  const tokensPath = join(dir, 'tokens.json');
  assert.equal(spawnSync(process.execPath, [BIN, 'tokens', '--clients', '4', '--out', tokensPath, '--parts', '2']).status, 0);
  const tokens = readTokens(tokensPath);
  // Honest processes: A hosts clients 0 and 1, B hosts client 2; client 3's token is the hostile's.
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ format: 'baffle-tokens/1', tokens: [0, 1].map((c) => ({ client: c, token: tokens.get(c) })) }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ format: 'baffle-tokens/1', tokens: [{ client: 2, token: tokens.get(2) }] }));
  const out = join(dir, 'served');
  const logs: Proc[] = [];
  let server = await startServer(['--tokens', tokensPath, '--config', cfg, '--out', out, '--port', '0']);
  logs.push(server.proc);
  const port = server.port;
  const url = `ws://127.0.0.1:${port}/`;

  // Connection-level attacks, refused before anything else happens.
  const hostile = new Hostile(() => url, tokens.get(HOSTILE) as string);
  const hello = (id: number, token: string) => (ws: WebSocket, ch: Buffer | null) => {
    const c = decodeServerFrame(ch as Buffer);
    assert.equal(c.type, 'challenge');
    if (c.type === 'challenge') {
      void helloProof(token, c.nonce, id).then((proof) =>
        ws.send(encode({ type: 'hello', protocol: 1, clientId: id, proof, runId: null, version: null, agent: 't' })),
      );
    }
  };
  assert.equal(await probe(url, [], () => {}), 4005, 'no subprotocol: refused');
  assert.equal(await probe(url, [SUBPROTOCOL], hello(HOSTILE, 'not-the-token-of-client-3')), 4001, 'wrong token');
  assert.equal(await probe(url, [SUBPROTOCOL], hello(99, tokens.get(HOSTILE) as string)), 4001, 'client id outside the federation');
  assert.equal(await probe(url, [SUBPROTOCOL], (ws) => ws.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'))), 1002, 'garbage before hello');
  assert.equal(await probe(url, [SUBPROTOCOL], (ws) => ws.send(Buffer.alloc(5000, 1))), 1009, 'oversized frame before hello');
  assert.equal(await probe(url, [SUBPROTOCOL], (ws) => ws.send(encode({ type: 'pong', time: 1 }))), 1002, 'frames before hello');
  // A replayed hello (valid for another connection's nonce) is refused.
  const captured = await new Promise<Uint8Array>((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL);
    let helloBytes: Uint8Array | null = null;
    ws.on('message', async (data: Buffer) => {
      const m = decodeServerFrame(data);
      if (m.type === 'challenge') {
        const proof = await helloProof(tokens.get(HOSTILE) as string, m.nonce, HOSTILE);
        helloBytes = encode({ type: 'hello', protocol: 1, clientId: HOSTILE, proof, runId: null, version: null, agent: 't' });
        ws.send(helloBytes);
      } else if (m.type === 'welcome') {
        ws.close();
        resolve(helloBytes as Uint8Array);
      }
    });
    ws.on('error', reject);
  });
  assert.equal(await probe(url, [SUBPROTOCOL], (ws) => ws.send(captured)), 4001, 'replayed hello');

  const hostileDone = hostile.run();
  const join_ = (name: string) => {
    const p = baffle(['join', url, '--tokens', join(dir, `${name}.json`), '--give-up', '60']);
    logs.push(p);
    return p;
  };
  const procs: Record<string, Proc> = { a: join_('a'), b: join_('b') };

  let lastStep = 0;
  const poller = setInterval(async () => {
    const s = await status(port);
    if (s) lastStep = s.step;
  }, 10);

  // Random kills, keyed to training progress so that they land mid-run.
  const random = rng(20240611);
  const plan: { at: number; what: 'a' | 'b' | 'ab' | 'server' }[] = [
    { at: 3 + Math.floor(random() * 3), what: 'a' },
    { at: 9 + Math.floor(random() * 3), what: 'b' },
    { at: 15 + Math.floor(random() * 5), what: 'server' },
    { at: 24 + Math.floor(random() * 3), what: 'ab' },
    { at: 31 + Math.floor(random() * 3), what: 'a' },
  ];
  const done: string[] = [];
  for (const k of plan) {
    await waitFor(`step ${k.at}`, () => server.proc.child.exitCode !== null || lastStep >= k.at, 90_000, 10);
    if (server.proc.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, random() * 40));
    if (k.what === 'server') {
      server.proc.kill('SIGKILL');
      await server.proc.exited;
      done.push(`server@${lastStep}`);
      await new Promise((r) => setTimeout(r, 300));
      server = await startServer(['--resume', out, '--port', String(port)]);
      logs.push(server.proc);
    } else {
      for (const name of k.what.split('')) {
        procs[name].kill('SIGKILL');
        await procs[name].exited;
      }
      done.push(`${k.what}@${lastStep}`);
      await new Promise((r) => setTimeout(r, 100 + random() * 500));
      for (const name of k.what.split('')) procs[name] = join_(name);
    }
  }
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([server.proc.exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), 90_000)))]);
  clearTimeout(timer);
  clearInterval(poller);
  hostile.stop();
  await hostileDone;
  const output = logs.map((p) => p.output()).join('\n');
  assert.equal(code, 0, output.slice(-4000));
  assert.equal(done.filter((d) => d.startsWith('server@')).length, 1, `the server was killed once: ${done.join(', ')}`);
  assert.ok(done.length >= 3, `kills made: ${done.join(', ')}`);

  t.diagnostic(`kills: ${done.join(', ')}; hostile frames: ${hostile.sent.length}`);
  if (process.env.BAFFLE_NET_LOG) writeFileSync(process.env.BAFFLE_NET_LOG, output);
  // Every round once, in order; the hostile client never counted; every round had its quorum.
  const rounds = readJsonLines(join(out, 'rounds.jsonl'));
  assert.deepEqual(rounds.map((r) => r.step), Array.from({ length: 40 }, (_, i) => i + 1));
  for (const r of rounds) {
    assert.ok(!r.counted.includes(HOSTILE), `round ${r.step} counted the hostile client`);
    // Quorum 0.75 of 4 = 3: every round waits for all three honest clients, whatever was killed meanwhile.
    assert.deepEqual(r.counted, [0, 1, 2], `round ${r.step}: ${JSON.stringify(r)}`);
    assert.equal(r.abandoned, false);
  }
  const metrics = readJsonLines(join(out, 'metrics.jsonl'));
  assert.deepEqual(metrics.map((m) => m.step), [5, 10, 15, 20, 25, 30, 35, 40]);
  const countedResults = rounds.reduce((s, r) => s + r.counted.length, 0);
  assert.equal(metrics.at(-1)?.forwardPasses, countedResults * (RUN.K + 1), 'forward passes = counted results × (K+1)');

  // Each kind of bad input was refused with a logged reason.
  assert.ok(hostile.sent.length >= Hostile.kinds.length, `hostile sent ${hostile.sent.join(', ')}`);
  for (const [kind, pattern] of [
    ['NaN', /dropped client 3: NaN in scalars\[4\]/],
    ['Inf', /dropped client 3: Infinity in scalars\[4\]/],
    ['count', /dropped client 3: 6 values in scalars, expected 5/],
    ['round', /dropped client 3: result names round \d+, task \d+ belongs to round \d+/],
    ['not-yours', /dropped client 3: result for task \d+, which was (given to client [0-2], not to client 3|never given to client 3)/],
    ['late', /late result of client 3 dropped/],
    ['loss', /dropped client 3: loss -1 is not a finite non-negative number/],
    ['examples', /dropped client 3: example count 1000000 outside \[1, 32\]/],
    ['garbage', /dropped client 3: undecodable msgpack/],
    ['schema', /dropped client 3: result\.task must be an unsigned integer/],
    ['oversize', /dropped client 3: frame larger than \d+ bytes/],
    ['text', /dropped client 3: text frame/],
    ['unknown', /dropped client 3: unknown message type "gradient-please"/],
    ['auth', /authentication failed for client 3/],
    ['outsider', /authentication failed for client 99/],
    ['subprotocol', /subprotocol '' instead of 'baffle\.v1'/],
    ['pre-auth', /'pong' before hello/],
  ] as const) {
    assert.match(output, pattern, `no logged refusal for ${kind}`);
  }

  // The model is exactly what the counted honest results give: the hostile client never changed it,
  // and no round was lost or counted twice across the kills and the resume.
  const ref = await replay(rounds);
  assert.deepEqual(withoutWall(metrics), withoutWall(ref.metrics.map((m) => JSON.parse(JSON.stringify(m)))));
  const served = new Float32Array(new Uint8Array(readFileSync(join(out, 'weights.bin'))).buffer);
  assert.deepEqual(served, ref.evalWeights);
  for (const p of Object.values(procs)) p.kill();
});
