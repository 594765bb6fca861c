// The pieces of the networked federation that need no process: frame schema checks, authentication proofs,
// tokens files, server settings and checkpoints.
import { test } from 'node:test';
import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { ConfigError, DEFAULT_SERVER_CONFIG, resolveConfig, resolveServeConfig } from '../src/core/config/index.ts';
import { loadCheckpoint, saveCheckpoint, writeDurable } from '../src/node/checkpoint.ts';
import { Ema } from '../src/core/fl/ema.ts';
import { freshProgress } from '../src/core/fl/federation.ts';
import { Adam } from '../src/core/fl/optimizer.ts';
import {
  bytesFloat32,
  decodeClientFrame,
  decodeServerFrame,
  encode,
  float32Bytes,
  helloProof,
  proofMatches,
  ProtocolError,
} from '../src/core/protocol/protocol.ts';
import { formatTokens, makeTokens, readTokens } from '../src/node/net/tokens.ts';

const raw = new Packr({ useRecords: false });

function refused(frame: Uint8Array, pattern: RegExp, isBinary = true): void {
  assert.throws(
    () => decodeClientFrame(frame, isBinary),
    (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
  );
}

test('frames round-trip; float vectors travel as little-endian float32 bin', () => {
  const scalars = new Float32Array([1.5, -2, 3e-8, 0]);
  const frame = encode({ type: 'result', task: 7, round: 3, examples: 32, loss: 2.25, scalars, delta: null });
  const m = decodeClientFrame(frame);
  assert.equal(m.type, 'result');
  if (m.type === 'result') {
    assert.deepEqual(m.scalars, scalars);
    assert.equal(m.delta, null);
    assert.equal(m.task, 7);
  }
  // Any msgpack encoder that writes a map with a bin of LE float32 is understood.
  const foreign = raw.pack({ type: 'result', task: 7, round: 3, examples: 32, loss: 2.25, scalars: Buffer.from([0, 0, 0xc0, 0x3f]), extra: 'ignored' });
  const f = decodeClientFrame(foreign);
  assert.deepEqual(f.type === 'result' && f.scalars, new Float32Array([1.5]));
  assert.deepEqual(bytesFloat32(float32Bytes(scalars)), scalars);
  const task = decodeServerFrame(
    encode({ type: 'task', kind: 'estimate', task: 1, round: 0, version: 0, seed: 42, K: 4, sigma: 1e-4, scheme: 'forward', cursor: 0, batches: 1, batchSize: 32, deadlineMs: 1000 }),
  );
  assert.equal(task.type === 'task' && task.sigma, 1e-4);
});

test('every malformed client frame is refused with a reason', () => {
  refused(encode({ type: 'pong', time: 1 }), /text frame/, false);
  refused(Buffer.from([0xc1, 0xff, 0x00]), /undecodable msgpack/);
  refused(Buffer.from('definitely not msgpack'), /undecodable msgpack/);
  refused(raw.pack([1, 2, 3]), /must be a msgpack map/);
  refused(raw.pack('result'), /must be a msgpack map/);
  refused(raw.pack({ type: 'gimme' }), /unknown message type "gimme"/);
  refused(raw.pack({ type: 'result', task: -1, round: 0 }), /result\.task must be an unsigned integer/);
  refused(raw.pack({ type: 'result', task: 1, round: 0, examples: 1, loss: 1 }), /exactly one of scalars, delta/);
  refused(raw.pack({ type: 'result', task: 1, round: 0, examples: 1, loss: 1, scalars: Buffer.alloc(6) }), /bin of float32/);
  refused(raw.pack({ type: 'result', task: 1, round: 0, examples: 1.5, loss: 1, scalars: Buffer.alloc(4) }), /examples/);
  refused(raw.pack({ type: 'hello', protocol: 1, clientId: 0, proof: Buffer.alloc(31) }), /proof must be 32 bytes/);
  refused(raw.pack({ type: 'hello', protocol: 1, clientId: 'zero', proof: Buffer.alloc(32) }), /clientId/);
  refused(raw.pack({ type: 'error', code: 'x', message: 'y'.repeat(2000) }), /message/);
  // Values that are well-formed but wrong (NaN, Inf, wrong length) pass the schema: the server's round check drops them.
  const nan = decodeClientFrame(encode({ type: 'result', task: 1, round: 0, examples: 1, loss: NaN, scalars: new Float32Array([NaN]), delta: null }));
  assert.ok(nan.type === 'result' && Number.isNaN(nan.scalars?.[0]));
});

test('hello proofs bind the token, the connection nonce and the client id', async () => {
  const nonce = Buffer.alloc(32, 1);
  const proof = await helloProof('token-of-client-3-xxxxxxxx', nonce, 3);
  assert.equal(proof.byteLength, 32);
  // The WebCrypto proof is the HMAC the protocol document defines (checked against node:crypto's).
  const id = Buffer.alloc(4);
  id.writeUInt32BE(3);
  assert.deepEqual(Buffer.from(proof), createHmac('sha256', 'token-of-client-3-xxxxxxxx').update(nonce).update(id).digest());
  assert.ok(await proofMatches('token-of-client-3-xxxxxxxx', nonce, 3, proof));
  assert.ok(!(await proofMatches('token-of-client-3-xxxxxxxx', Buffer.alloc(32, 2), 3, proof)), 'replayed on another nonce');
  assert.ok(!(await proofMatches('token-of-client-3-xxxxxxxx', nonce, 4, proof)), 'claimed for another client');
  assert.ok(!(await proofMatches('another-token-xxxxxxxxxxxx', nonce, 3, proof)), 'wrong token');
  assert.ok(!(await proofMatches('token-of-client-3-xxxxxxxx', nonce, 3, proof.subarray(0, 16))));
});

test('tokens files: fresh tokens, checked on read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-tokens-'));
  const entries = makeTokens(5);
  assert.equal(new Set(entries.map((e) => e.token)).size, 5);
  assert.ok(entries.every((e) => /^[A-Za-z0-9_-]{43}$/.test(e.token)));
  const good = join(dir, 'good.json');
  writeFileSync(good, formatTokens(entries));
  assert.deepEqual([...readTokens(good).keys()], [0, 1, 2, 3, 4]);
  const bad = (content: unknown, pattern: RegExp) => {
    const p = join(dir, 'bad.json');
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    assert.throws(() => readTokens(p), pattern);
  };
  bad('{', /tokens file/);
  bad({ tokens: [] }, /baffle-tokens\/1/);
  bad({ format: 'baffle-tokens/1', tokens: [{ client: 0, token: 'short' }] }, /≥ 16 characters/);
  bad({ format: 'baffle-tokens/1', tokens: [entries[0], entries[0]] }, /appears twice/);
  bad({ format: 'baffle-tokens/1', tokens: [entries[0], { client: 1, token: entries[0].token }] }, /share one token/);
});

test('server settings: defaults, validation next to the run keys, run keeps refusing them', () => {
  const { run, server } = resolveServeConfig([{ K: 7, port: 0, quorum: 1 }]);
  assert.equal(run.K, 7);
  assert.deepEqual(server, { ...DEFAULT_SERVER_CONFIG, port: 0, quorum: 1 });
  assert.equal(server.host, '127.0.0.1', 'loopback unless told otherwise');
  assert.throws(
    () => resolveServeConfig([{ K: 0, roundTimeout: 0, minClients: 0, heartbeat: 'often' }]),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 4,
  );
  assert.throws(() => resolveServeConfig([{ clients: 3, minClients: 5 }]), /minClients: 5 is more than the 3 clients/);
  assert.throws(() => resolveConfig([{ port: 7100 }]), /unknown key 'port'/);
});

test('checkpoints: exact round trip; the manifest is the commit point', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-ckpt-'));
  const config = resolveConfig([{ hidden: [4], K: 3 }]);
  const weights = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) / 3);
  const adam = new Adam(50, { beta2: 0.99 });
  adam.step(weights, Float32Array.from({ length: 50 }, (_, i) => Math.cos(i)), 0.01);
  const ema = new Ema(weights, 0.995);
  ema.update(weights.map((w) => w + 0.1));
  const progress = freshProgress(config);
  progress.sampleRng.nextUint32();
  progress.step = 3;
  progress.counters.forwardPasses = 36;
  progress.lossSinceEval = 2.3025850929940455;
  progress.stepsSinceEval = 1;
  progress.metrics.push({
    epoch: 0.1, step: 2, testAccuracy: 0.1, testLoss: 2.3, trainLoss: NaN, forwardPasses: 24,
    uplinkBytes: 1, downlinkBytes: 2, directions: 3, lr: 0.01, wallMs: 5,
  });
  const extra = { cursors: [3, 3, 2], rounds: [{ step: 1 }] };
  saveCheckpoint(dir, { runId: 'r1', config, progress, weights, optimizer: adam.state(), ema: ema.state(), extra }, 1234);

  const ck = loadCheckpoint(dir);
  assert.equal(ck.runId, 'r1');
  assert.deepEqual(ck.config, config);
  assert.deepEqual(ck.weights, weights);
  assert.deepEqual(ck.optimizer, adam.state());
  assert.deepEqual(ck.ema, ema.state());
  assert.deepEqual(ck.extra, extra);
  assert.equal(ck.progress.step, 3);
  assert.equal(ck.progress.lossSinceEval, progress.lossSinceEval);
  assert.equal(ck.progress.wallOffsetMs, 1234);
  assert.ok(Number.isNaN(ck.progress.metrics[0].trainLoss));
  assert.equal(ck.progress.sampleRng.nextUint32(), progress.sampleRng.nextUint32(), 'the sampling RNG continues where it was');
  const restored = new Adam(50, { beta2: 0.99 });
  restored.loadState(ck.optimizer as never);
  assert.deepEqual(restored.state(), adam.state());

  // A crash after writing the next step's data file but before its manifest leaves the previous checkpoint.
  writeDurable(join(dir, 'checkpoint-00000004.bin'), new Uint8Array(8), dir);
  writeFileSync(join(dir, 'checkpoint.json.999.tmp'), '{"half":');
  assert.equal(loadCheckpoint(dir).progress.step, 3);
  // The next save cleans up older data files.
  progress.step = 5;
  saveCheckpoint(dir, { runId: 'r1', config, progress, weights, optimizer: null, ema: null, extra }, 2000);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.bin')), ['checkpoint-00000005.bin']);
  assert.equal(loadCheckpoint(dir).progress.step, 5);
  // A damaged data file is detected.
  writeFileSync(join(dir, 'checkpoint-00000005.bin'), new Uint8Array(200));
  assert.throws(() => loadCheckpoint(dir), /does not match its manifest/);
  assert.ok(existsSync(join(dir, 'checkpoint.json')));
});
