// Secure aggregation's pieces without sockets: ChaCha20 against RFC 8439, Shamir sharing, the fixed point and
// its error bound, the pairwise masks, and the server's state machine with honest, vanishing and malformed clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { chachaBlock, chachaXor, keystreamWords, wordBytes } from '../src/core/secagg/chacha20.ts';
import { combine, split } from '../src/core/secagg/shamir.ts';
import { dequantize, fixedPointScale, quantizationBound, quantize, secAggVector, secretNormals } from '../src/core/secagg/quantize.ts';
import { dpSecAggRange, secAggSpec } from '../src/core/secagg/spec.ts';
import { dpNoiseSeed } from '../src/core/privacy/noise.ts';
import { Aggregation } from '../src/core/fl/aggregation.ts';
import { privacyOf } from '../src/core/fl/setup.ts';
import { freshProgress } from '../src/core/fl/federation.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/node/checkpoint.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivacyAccountant } from '../src/core/privacy/index.ts';
import { addWords, maskInput, prg } from '../src/core/secagg/masks.ts';
import { maskSeed } from '../src/core/secagg/crypto.ts';
import { secureSumInProcess, type SimInput } from '../src/core/secagg/simulate.ts';
import type { SecAggTaskSpec } from '../src/core/secagg/messages.ts';
import { nodeSecAggCrypto as crypto } from '../src/node/secagg/crypto.ts';
import { UniformRng } from '../src/core/rng/uniform.ts';
import { ConfigError, resolveConfig } from '../src/core/config/index.ts';
import { decodeClientFrame, decodeServerFrame, encode, ProtocolError } from '../src/core/protocol/protocol.ts';
import { Packr } from 'msgpackr';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const seq = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);

test('ChaCha20: the RFC 8439 test vectors (block function §2.3.2, encryption §2.4.2, A.1 #1) and node:crypto', () => {
  const block = chachaBlock(seq(32), 1, hex('000000090000004a00000000'));
  assert.equal(
    Buffer.from(block).toString('hex'),
    '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' + 'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
  );
  const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const ct = chachaXor(seq(32), 1, hex('000000000000004a00000000'), plain);
  assert.equal(
    Buffer.from(ct).toString('hex'),
    '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b' +
      'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8' +
      '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
      '5af90bbf74a35be6b40b8eedf2785e42874d',
  );
  assert.equal(
    Buffer.from(wordBytes(keystreamWords(new Uint8Array(32), 16))).toString('hex'),
    '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7' + 'da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
  );
  // The keystream words equal node's ChaCha20 (IV = LE counter ‖ nonce) over many blocks.
  const key = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
  const n = 16 * 7 + 5;
  const ours = wordBytes(keystreamWords(key, n));
  const theirs = createCipheriv('chacha20', key, new Uint8Array(16)).update(new Uint8Array(4 * n));
  assert.deepEqual(Buffer.from(ours), theirs);
});

test('Shamir: any t of n shares rebuild the secret, t − 1 do not', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => (255 - i * 7) & 0xff);
  const ids = [0, 3, 4, 9, 12];
  const t = 3;
  const shares = split(secret, ids, t);
  const subsets = (k: number, from: number[]): number[][] =>
    k === 0 ? [[]] : from.flatMap((x, i) => subsets(k - 1, from.slice(i + 1)).map((s) => [x, ...s]));
  for (const s of subsets(t, ids)) assert.deepEqual(combine(new Map(s.map((id) => [id, shares.get(id)!]))), secret, `shares of ${s}`);
  assert.deepEqual(combine(shares), secret, 'all five shares');
  for (const s of subsets(t - 1, ids)) {
    let got: Uint8Array | null = null;
    try {
      got = combine(new Map(s.map((id) => [id, shares.get(id)!])));
    } catch {
      got = null; // not even a 32-byte value: certainly not the secret
    }
    assert.notDeepEqual(got, secret, `t − 1 shares ${s} must not give the secret`);
  }
  // A share changed by one bit rebuilds something else.
  const bad = new Map(subsets(t, ids)[0]!.map((id) => [id, shares.get(id)!.slice()]));
  bad.values().next().value![47] ^= 1;
  let wrong: Uint8Array | null = null;
  try {
    wrong = combine(bad);
  } catch {
    wrong = null;
  }
  assert.notDeepEqual(wrong, secret);
});

test('fixed point: the scale keeps m summands from wrapping, and the sum is within m / S of the clipped sum', () => {
  const rng = new UniformRng(5);
  for (const [m, range] of [[3, 10], [10, 100], [64, 1], [1000, 0.5]] as const) {
    const S = fixedPointScale(m, range);
    assert.ok(m * (range * S + 1) <= 2 ** 31 - 1, `m=${m} R=${range}`);
    assert.ok(m * (range * 2 * S + 1) > 2 ** 31 - 1, 'S is the largest such power of two');
    const d = 257;
    const sum = new Uint32Array(d);
    const exact = new Float64Array(d);
    for (let c = 0; c < m; c++) {
      // Values beyond the range too (clipped), and the extremes.
      const v = Float64Array.from({ length: d }, (_, i) => (i === 0 ? range : i === 1 ? -range : (rng.nextFloat() * 2.4 - 1.2) * range));
      addWords(sum, quantize(v, range, S, 1000 + c));
      for (let i = 0; i < d; i++) exact[i] += Math.max(-range, Math.min(range, v[i]!));
    }
    const got = dequantize(sum, S);
    const bound = quantizationBound(m, S);
    let worst = 0;
    for (let i = 0; i < d; i++) worst = Math.max(worst, Math.abs(got[i]! - exact[i]!));
    assert.ok(worst < bound, `m=${m} R=${range}: error ${worst} ≥ bound ${bound}`);
  }
  // Seeded: the same seed rounds the same way, another seed differently.
  const v = Float64Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
  assert.deepEqual(quantize(v, 4, 1024, 7), quantize(v, 4, 1024, 7));
  assert.notDeepEqual(quantize(v, 4, 1024, 7), quantize(v, 4, 1024, 8));
});

test('pairwise masks from X25519 + HKDF cancel in the sum; the self masks remain', async () => {
  const ids = [2, 5, 7, 11];
  const keys = new Map(await Promise.all(ids.map(async (id) => [id, await crypto.generateKeyPair()] as const)));
  const d = 40;
  const xs = new Map(ids.map((id) => [id, Uint32Array.from({ length: d }, (_, i) => (id * 1000 + i) >>> 0)]));
  const bs = new Map(ids.map((id) => [id, crypto.random(32)]));
  const total = new Uint32Array(d);
  for (const u of ids) {
    const pairwise = new Map<number, Uint8Array>();
    for (const v of ids) if (v !== u) pairwise.set(v, await maskSeed(crypto, keys.get(u)!.privateKey, keys.get(v)!.publicKey));
    const y = maskInput(xs.get(u)!, bs.get(u)!, u, pairwise);
    assert.notDeepEqual(y, xs.get(u), 'a masked input is not the input');
    addWords(total, y);
  }
  for (const u of ids) addWords(total, prg(bs.get(u)!, d), -1);
  const plain = new Uint32Array(d);
  for (const u of ids) addWords(plain, xs.get(u)!);
  assert.deepEqual(total, plain);
});

// ---------------------------------------------------------------------------------------------------
// The state machine, in process

const K = 12;
function inputs(ids: number[], threshold: number, range = 50): { list: SimInput[]; spec: SecAggTaskSpec } {
  const dim = K + 2;
  const scale = fixedPointScale(ids.length, range);
  const list = ids.map((id) => {
    const rng = new UniformRng(100 + id);
    const vector = Float64Array.from({ length: dim }, (_, i) => (i === K ? 1 : (rng.nextFloat() * 2 - 1) * 20));
    return { clientId: id, vector, spec: { threshold, range, scale, roundingSeed: 9000 + id, dim } };
  });
  return { list, spec: list[0]!.spec };
}

function plainSum(list: SimInput[], of: number[]): Float64Array {
  const out = new Float64Array(list[0]!.spec.dim);
  for (const i of list) if (of.includes(i.clientId)) for (let k = 0; k < out.length; k++) out[k] += i.vector[k]!;
  return out;
}

function assertClose(got: Float64Array, want: Float64Array, bound: number): void {
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < bound, `coordinate ${i}: ${got[i]} vs ${want[i]} (bound ${bound})`);
}

test('state machine: with every client the unmasked sum equals the plain sum within m / S, and the server saw only masked vectors', async () => {
  const ids = [0, 1, 2, 3, 4];
  const { list, spec } = inputs(ids, 3);
  const seen = new Map<number, Uint32Array>();
  const out = await secureSumInProcess(4, list, crypto, { observe: (from, m) => m.type === 'sa-masked' && seen.set(from, m.masked) });
  assert.ok(out.ok, out.ok ? '' : out.reason);
  assert.deepEqual(out.survivors, ids);
  assert.deepEqual(out.dropped, []);
  assertClose(out.sum, plainSum(list, ids), quantizationBound(ids.length, spec.scale));
  // One client's masked vector, read as the server would, is nothing like its input.
  const one = dequantize(seen.get(2)!, spec.scale);
  const x = list[2]!.vector;
  assert.ok(one.some((v, i) => Math.abs(v - x[i]!) > 1), 'the masked vector differs from the plain one');
});

test('state machine: a client that vanishes after its masked input is recovered; one that vanishes before is removed', async () => {
  const ids = [1, 3, 4, 6, 8];
  const { list, spec } = inputs(ids, 3);
  const after = await secureSumInProcess(0, list, crypto, { dropAfterMasked: new Set([4]) });
  assert.ok(after.ok, after.ok ? '' : after.reason);
  assert.deepEqual(after.survivors, ids, 'client 4 sent its masked input: it counts');
  assertClose(after.sum, plainSum(list, ids), quantizationBound(ids.length, spec.scale));
  assert.deepEqual(after.dropped.map((d) => d.client), [4]);

  const before = await secureSumInProcess(0, list, crypto, { dropBeforeMasked: new Set([3, 8]) });
  assert.ok(before.ok, before.ok ? '' : before.reason);
  assert.deepEqual(before.survivors, [1, 4, 6]);
  assertClose(before.sum, plainSum(list, [1, 4, 6]), quantizationBound(ids.length, spec.scale));
  assert.match(before.dropped.map((d) => d.reason).join('\n'), /disconnected in phase mask/);

  const both = await secureSumInProcess(0, list, crypto, { dropBeforeMasked: new Set([1]), dropAfterMasked: new Set([6]) });
  assert.ok(both.ok, both.ok ? '' : both.reason);
  assert.deepEqual(both.survivors, [3, 4, 6, 8]);
  assertClose(both.sum, plainSum(list, [3, 4, 6, 8]), quantizationBound(ids.length, spec.scale));
});

test('state machine: malformed shares are dropped with a reason and the round commits', async () => {
  const ids = [0, 1, 2, 3, 4];
  const { list, spec } = inputs(ids, 3);
  // Client 2 sends a truncated ciphertext: it is out (as if it had dropped before its masked input).
  const truncated = await secureSumInProcess(1, list, crypto, {
    tamper: (from, m) => (from === 2 && m.type === 'sa-shares' ? { ...m, shares: m.shares.map((s) => ({ ...s, ct: s.ct.subarray(0, 20) })) } : m),
  });
  assert.ok(truncated.ok, truncated.ok ? '' : truncated.reason);
  assert.deepEqual(truncated.survivors, [0, 1, 3, 4]);
  assert.match(truncated.dropped.find((d) => d.client === 2)?.reason ?? '', /ciphertext for client \d has 20 bytes, expected 124/);
  assertClose(truncated.sum, plainSum(list, [0, 1, 3, 4]), quantizationBound(ids.length, spec.scale));

  // Client 0 reveals a garbage share of the right size: the rebuilt secret fails its check, client 0's share is
  // found by leaving one out, and the sum is still right.
  const garbage = await secureSumInProcess(1, list, crypto, {
    tamper: (from, m) => (from === 0 && m.type === 'sa-reveal' ? { ...m, shares: m.shares.map((s) => (s.of === 3 ? { ...s, share: new Uint8Array(48).fill(7) } : s)) } : m),
  });
  assert.ok(garbage.ok, garbage.ok ? '' : garbage.reason);
  assert.deepEqual(garbage.survivors, ids);
  assert.deepEqual(garbage.dropped, []);
  assert.match(garbage.refused.map((d) => `${d.client}: ${d.reason}`).join('\n'), /0: its share of client 3's self-mask seed b is wrong/);
  assertClose(garbage.sum, plainSum(list, ids), quantizationBound(ids.length, spec.scale));

  // A masked vector of the wrong length is refused.
  const short = await secureSumInProcess(1, list, crypto, { tamper: (from, m) => (from === 4 && m.type === 'sa-masked' ? { ...m, masked: m.masked.subarray(1) } : m) });
  assert.ok(short.ok, short.ok ? '' : short.reason);
  assert.deepEqual(short.survivors, [0, 1, 2, 3]);
  assert.match(short.dropped.find((d) => d.client === 4)?.reason ?? '', /13 words, expected 14/);
});

test('state machine: below the threshold the round fails cleanly, with the reason', async () => {
  const ids = [0, 1, 2, 3];
  const { list } = inputs(ids, 3);
  const out = await secureSumInProcess(2, list, crypto, { dropBeforeMasked: new Set([0, 1]) });
  assert.equal(out.ok, false);
  assert.match(!out.ok ? out.reason : '', /2 clients with masked inputs, fewer than the threshold 3/);
  const late = await secureSumInProcess(2, list, crypto, { dropAfterMasked: new Set([0, 1]) });
  assert.equal(late.ok, false, 'two reveals cannot rebuild secrets shared 3-of-4');
  assert.match(!late.ok ? late.reason : '', /2 clients with revealed shares, fewer than the threshold 3/);
  const keys = await secureSumInProcess(2, list.slice(0, 2), crypto);
  assert.equal(keys.ok, false);
  assert.match(!keys.ok ? keys.reason : '', /2 clients with advertised keys/);
});

test('configuration: secure aggregation is refused, naming the keys, with what it cannot serve', () => {
  const refused = (over: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(
      () => resolveConfig([{ secureAggregation: true, seedPolicy: 'shared', clients: 4, ...over }]),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => pattern.test(p)),
      JSON.stringify(over),
    );
  refused({ seedPolicy: 'per-client' }, /secureAggregation with seedPolicy 'per-client'.*use seedPolicy 'shared'/);
  refused({ aggregator: 'median' }, /secureAggregation with aggregator 'median'.*use aggregator 'mean'/);
  refused({ attack: 'sign-flip', attackFraction: 0.25 }, /secureAggregation with attack 'sign-flip'/);
  refused({ algorithm: 'bp' }, /secureAggregation with algorithm 'bp'/);
  refused({ fedopt: 'fedavg' }, /secureAggregation with fedopt 'fedavg'/);
  refused({ dpClip: 1, noiseMultiplier: 1 }, /secureAggregation with dpClip and dpNoise 'central'.*use dpNoise 'distributed'/);
  refused({ dpClip: 1, noiseMultiplier: 1, dpNoise: 'central' }, /dpNoise 'central'.*server.*sum it sees in the clear/);
  refused({ secAggThreshold: 5 }, /secAggThreshold 5 is more than the 4 participants per round/);
  refused({ participation: 0.5, secAggThreshold: 3 }, /secAggThreshold 3 is more than the 2 participants/);
  refused({ clients: 1 }, /1 participant per round: a sum of one vector is that vector/);
  refused({ secureAggregation: false, secAggThreshold: 2 }, /secAggThreshold without secureAggregation/);
  refused({ secAggRange: 0 }, /secAggRange: got 0/);
  refused({ secAggThreshold: 1 }, /secAggThreshold: got 1/);
  const ok = resolveConfig([{ secureAggregation: true, seedPolicy: 'shared', clients: 4 }]);
  assert.equal(ok.secureAggregation, true);
  // Differential privacy with distributed noise is served (noiseMultiplier or targetEpsilon).
  assert.equal(resolveConfig([{ secureAggregation: true, seedPolicy: 'shared', clients: 4, dpClip: 1, noiseMultiplier: 1, dpNoise: 'distributed' }]).dpClip, 1);
  resolveConfig([{ secureAggregation: true, seedPolicy: 'shared', clients: 4, dpClip: 1, targetEpsilon: 8, dpNoise: 'distributed' }]);
  assert.equal(resolveConfig([{}]).secureAggregation, false, 'off by default');
});

test('secure-aggregation frames are schema-checked like every other frame', () => {
  const raw = new Packr({ useRecords: false });
  const bad = (m: Record<string, unknown>, pattern: RegExp, server = false) =>
    assert.throws(() => (server ? decodeServerFrame : decodeClientFrame)(raw.pack(m)), (e: unknown) => e instanceof ProtocolError && pattern.test(e.message), JSON.stringify(m));
  const key = Buffer.alloc(32, 1);
  bad({ type: 'sa-advertise', task: 1, round: 0, cPk: Buffer.alloc(31), sPk: key }, /sa-advertise\.cPk must be 32 bytes/);
  bad({ type: 'sa-shares', round: 0, commit: key, shares: [{ to: -1, ct: Buffer.alloc(124) }] }, /sa-shares\.shares must be an array/);
  bad({ type: 'sa-shares', round: 0, commit: key, shares: 'all of them' }, /sa-shares\.shares/);
  bad({ type: 'sa-shares', round: 0, commit: key, shares: [{ to: 1, ct: Buffer.alloc(5000) }] }, /sa-shares\.shares/);
  bad({ type: 'sa-masked', round: 0, masked: Buffer.alloc(6) }, /sa-masked\.masked must be bin of uint32/);
  bad({ type: 'sa-reveal', round: 'one', shares: [] }, /sa-reveal\.round/);
  bad({ type: 'sa-reveal', round: 0, shares: [{ of: 1 }] }, /sa-reveal\.shares/);
  bad({ type: 'sa-roster', round: 0, keys: [{ client: 0, cPk: key }] }, /sa-roster\.keys/, true);
  bad({ type: 'sa-unmask', round: 0, survivors: [0, 1.5], dropped: [] }, /sa-unmask\.survivors/, true);
  bad({ type: 'task', kind: 'estimate', task: 1, round: 0, version: 0, seed: 1, K: 5, sigma: 1e-4, scheme: 'forward', cursor: 0, batches: 1, batchSize: 32, deadlineMs: 10, secagg: { threshold: 2, range: -1, scale: 1, roundingSeed: 0, dim: 7 } }, /task\.secagg\.range must be a positive number/, true);
  const dpTask = (dp: unknown) => ({ type: 'task', kind: 'estimate', task: 1, round: 0, version: 0, seed: 1, K: 5, sigma: 1e-4, scheme: 'forward', cursor: 0, batches: 1, batchSize: 32, deadlineMs: 10, secagg: { threshold: 2, range: 100, scale: 1024, roundingSeed: 0, dim: 7, dp } });
  bad(dpTask({ clip: 0, noiseMultiplier: 1, participants: 4, noiseSeed: null }), /task\.secagg\.dp\.clip must be a positive number/, true);
  bad(dpTask({ clip: 1, noiseMultiplier: 1, participants: 4, noiseSeed: -1 }), /task\.secagg\.dp\.noiseSeed/, true);
  bad(dpTask([1, 2]), /task\.secagg\.dp must be a map or nil/, true);
  const t = decodeServerFrame(raw.pack(dpTask({ clip: 2, noiseMultiplier: 1.5, participants: 4, noiseSeed: null })));
  assert.deepEqual(t.type === 'task' && t.kind === 'estimate' && t.secagg?.dp, { clip: 2, noiseMultiplier: 1.5, participants: 4, noiseSeed: null });
  const plainTask = decodeServerFrame(raw.pack(dpTask(null)));
  assert.equal(plainTask.type === 'task' && plainTask.kind === 'estimate' && plainTask.secagg && 'dp' in plainTask.secagg, false, 'no dp: none');
  // Well-formed frames round-trip, the masked vector as little-endian uint32 words.
  const masked = Uint32Array.from([0, 1, 0xffffffff, 0x80000000]);
  const m = decodeClientFrame(encode({ type: 'sa-masked', round: 3, masked }));
  assert.deepEqual(m.type === 'sa-masked' && m.masked, masked);
  assert.deepEqual(Buffer.from(encode({ type: 'sa-masked', round: 3, masked })).subarray(-16), Buffer.from('0000000001000000ffffffff00000080', 'hex'));
});

test('a client refuses server frames that contradict the protocol or what it saw before', async () => {
  const { SecAggClient, SecAggRefusal } = await import('../src/core/secagg/client.ts');
  const { list } = inputs([0, 1, 2], 2);
  const cs = await Promise.all(list.map((i) => SecAggClient.create(i.clientId, 5, i.spec, i.vector, crypto)));
  const roster = { type: 'sa-roster' as const, round: 5, keys: cs.map((c) => ({ client: c.id, ...c.publicKeys })) };
  const refuses = (p: Promise<unknown> | (() => unknown), pattern: RegExp) =>
    assert.rejects(async () => (typeof p === 'function' ? p() : p), (e: unknown) => e instanceof SecAggRefusal && pattern.test(e.message));
  await refuses(cs[0]!.onRoster({ ...roster, round: 6 }), /for round 6, this client is in round 5/);
  await refuses(cs[0]!.onRoster({ ...roster, keys: roster.keys.slice(1) }), /does not hold this client/);
  await refuses(cs[0]!.onRoster({ ...roster, keys: [roster.keys[0]!, roster.keys[0]!] }), /names a client twice/);
  const shares = await Promise.all(cs.map((c) => c.onRoster(roster)));
  await refuses(cs[0]!.onRoster(roster), /out of order/);
  const inbox = (to: number) => ({ type: 'sa-inbox' as const, round: 5, shares: shares.flatMap((m, u) => m.shares.filter((s) => s.to === to).map((s) => ({ from: u, ct: s.ct }))) });
  await refuses(cs[0]!.onInbox({ ...inbox(0), shares: [...inbox(0).shares, { from: 0, ct: new Uint8Array(124) }] }), /not a peer of the roster/);
  await Promise.all(cs.map((c) => c.onInbox(inbox(c.id))));
  const unmask = { type: 'sa-unmask' as const, round: 5, survivors: [0, 1], dropped: [2] };
  await refuses(() => cs[0]!.onUnmask({ ...unmask, survivors: [0, 1, 2] }), /both a survivor and dropped/);
  await refuses(() => cs[0]!.onUnmask({ ...unmask, dropped: [] }), /does not account for every client/);
  await refuses(() => cs[0]!.onUnmask({ ...unmask, survivors: [1], dropped: [0, 2] }), /not count this client as a survivor/);
  const reveal = cs[0]!.onUnmask(unmask);
  assert.deepEqual(reveal.shares.map((s) => s.of), [0, 1, 2]);
  await refuses(() => cs[0]!.onUnmask(unmask), /out of order/);
});

test('the WebCrypto implementation (browsers) interoperates with node:crypto, primitive by primitive and in a round', async () => {
  const { webSecAggCrypto, webCryptoSecAgg } = await import('../src/core/secagg/webcrypto.ts');
  const web = webSecAggCrypto();
  assert.ok(await webCryptoSecAgg(), 'Node 20+ WebCrypto has X25519');
  const a = await web.generateKeyPair();
  const b = await crypto.generateKeyPair();
  assert.deepEqual(await web.agree(a.privateKey, b.publicKey), await crypto.agree(b.privateKey, a.publicKey));
  assert.deepEqual(await web.publicKeyOf(a.privateKey), a.publicKey);
  assert.deepEqual(await web.publicKeyOf(b.privateKey), await crypto.publicKeyOf(b.privateKey));
  // RFC 7748 §6.1: Alice's private key gives her public key, with both implementations.
  const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePub = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  assert.equal(Buffer.from(await web.publicKeyOf(alice)).toString('hex'), alicePub);
  assert.equal(Buffer.from(await crypto.publicKeyOf(alice)).toString('hex'), alicePub);
  const bobPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(Buffer.from(await web.agree(alice, bobPub)).toString('hex'), shared);
  assert.equal(Buffer.from(await crypto.agree(alice, bobPub)).toString('hex'), shared);
  // HKDF-SHA256 with an empty salt (RFC 5869 test case 3), SHA-256 and AES-256-GCM across implementations.
  const ikm = new Uint8Array(22).fill(0x0b);
  const okm = '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8';
  assert.equal(Buffer.from(await web.hkdf(ikm, new Uint8Array(0), 42)).toString('hex'), okm);
  assert.equal(Buffer.from(await crypto.hkdf(ikm, new Uint8Array(0), 42)).toString('hex'), okm);
  assert.deepEqual(await web.sha256(seq(100)), await crypto.sha256(seq(100)));
  const key = seq(32);
  const nonce = seq(12);
  const aad = seq(31);
  const sealed = await web.seal(key, nonce, seq(96), aad);
  assert.deepEqual(sealed, await crypto.seal(key, nonce, seq(96), aad));
  assert.deepEqual(await crypto.open(key, nonce, sealed, aad), seq(96));
  sealed[5]! ^= 1;
  assert.equal(await web.open(key, nonce, sealed, aad), null);
  assert.equal(await crypto.open(key, nonce, sealed, aad), null);
  // A whole round on WebCrypto.
  const { list, spec } = inputs([0, 1, 2, 3], 3);
  const out = await secureSumInProcess(0, list, web, { dropAfterMasked: new Set([1]) });
  assert.ok(out.ok, out.ok ? '' : out.reason);
  assertClose(out.sum, plainSum(list, [0, 1, 2, 3]), quantizationBound(4, spec.scale));
});

test('differential privacy under secure aggregation: the secure sum of noised shares is the plain distributed-DP aggregate within m / S', async () => {
  const m = 5;
  const Kd = 20;
  const ids = [0, 1, 2, 3, 4];
  const config = { secAggThreshold: null, participation: 1, clients: m, secAggRange: 5, seed: 7, K: Kd, dpClip: 2 };
  const sigma = 1.5;
  const step = 3;
  // K-vectors, some longer than C (clipped), some shorter.
  const scalars = ids.map((id) => {
    const rng = new UniformRng(300 + id);
    return Float32Array.from({ length: Kd }, () => (rng.nextFloat() * 2 - 1) * (id % 2 === 0 ? 3 : 0.1));
  });
  const list = ids.map((id) => {
    const spec = secAggSpec(config, step, id, m, { noiseMultiplier: sigma, seeded: true });
    return { clientId: id, spec, vector: secAggVector(scalars[id]!, 17, 32, 2.3, spec) };
  });
  const spec = list[0]!.spec;
  assert.equal(spec.range, dpSecAggRange(5, 2, sigma, m), 'the range widened for the noise');
  assert.equal(spec.range, 2 + (10 * sigma * 2) / Math.sqrt(m));
  assert.deepEqual(spec.dp, { clip: 2, noiseMultiplier: sigma, participants: m, noiseSeed: dpNoiseSeed(7, step, 0) });
  for (const i of list) {
    assert.equal(i.vector[Kd], 1, 'weight 1, not the example count');
    assert.equal(i.vector[Kd + 1], 0, 'no loss reading');
  }
  const out = await secureSumInProcess(step, list, crypto);
  assert.ok(out.ok, out.ok ? '' : out.reason);
  assert.equal(out.sum[Kd], m);
  // ĝ's coefficients as the secure round computes them (strategy.ts), against the plain distributed path.
  const secure = Float64Array.from({ length: Kd }, (_, k) => out.sum[k]! / out.sum[Kd]! / Kd);
  const dp = { dpClip: 2, noiseMultiplier: sigma, dpNoise: 'distributed' as const };
  const base = { aggregator: 'mean' as const, trimFraction: 0.1, byzantine: 0, krumSelect: null, centeredClipTau: null, centeredClipIterations: 3, screenFactor: 3, attack: 'none' as const, attackFraction: 0, attackScale: -10, attackNoise: 200, seed: 7 };
  const plain = new Aggregation({ ...base, ...dp }, m).combine(ids.map((id) => ({ clientId: id, values: scalars[id]!, examples: 17 })), step, Kd);
  assert.equal(plain.clipped, 3);
  const bound = quantizationBound(m, spec.scale) / m / Kd;
  for (let k = 0; k < Kd; k++) assert.ok(Math.abs(secure[k]! - plain.values[k]!) < bound, `coefficient ${k}: ${secure[k]} vs ${plain.values[k]} (bound ${bound})`);
  // The noise is there: the noiseless clipped mean differs by about σC/m/K per coefficient.
  const noiseless = new Aggregation({ ...base, ...dp, noiseMultiplier: 0 }, m).combine(ids.map((id) => ({ clientId: id, values: scalars[id]!, examples: 17 })), step, Kd);
  const rms = Math.sqrt(noiseless.values.reduce((s, v, k) => s + (v - plain.values[k]!) ** 2, 0) / Kd);
  assert.ok(rms > 0.2 * ((sigma * 2) / m / Kd) && rms < 3 * ((sigma * 2) / m / Kd), `noise rms ${rms}`);
  // A client that drops before its masked input takes its noise share with it: the sum holds m − 1 shares.
  const dropped = await secureSumInProcess(step, list, crypto, { dropBeforeMasked: new Set([2]) });
  assert.ok(dropped.ok);
  assert.equal(dropped.sum[Kd], m - 1);
});

test('differential privacy under secure aggregation: a round with fewer noise shares is charged more (ε with a dropout ≥ ε without)', () => {
  const cfg = resolveConfig([{ secureAggregation: true, seedPolicy: 'shared', clients: 4, dpClip: 1, noiseMultiplier: 1.2, dpNoise: 'distributed' }]);
  const p = privacyOf(cfg, 100)!;
  assert.equal(p.reduction(4, 4), null, 'every share: full noise');
  assert.equal(p.reduction(0, 4), null, 'nothing released: charged as a full round');
  assert.equal(p.reduction(3, 4), '3/4');
  const full = p.epsilon(50);
  const one = p.epsilon(50, { '3/4': 1 });
  const many = p.epsilon(50, { '3/4': 10, '2/4': 2 });
  assert.ok(one > full && many > one, `${full} < ${one} < ${many}`);
  // The charge is σ·√(m′/m): 50 rounds of which 10 at σ√(3/4), by the accountant.
  const acct = new PrivacyAccountant({ noiseMultiplier: 1.2, sampleRate: 1 });
  acct.step(40);
  acct.step(10, { noiseMultiplier: 1.2 * Math.sqrt(3 / 4) });
  assert.ok(Math.abs(p.epsilon(50, { '3/4': 10 }) - acct.epsilon(1e-5)) < 1e-9);
  assert.equal(p.epsilon(50, {}), full, 'no reductions: the closed form, unchanged');
  // The reduced rounds survive a checkpoint (resume charges them too).
  const dir = mkdtempSync(join(tmpdir(), 'baffle-dp-ck-'));
  try {
    const progress = { ...freshProgress(cfg), step: 50, dpReduced: { '3/4': 10 } };
    saveCheckpoint(dir, { runId: 'r', config: cfg, progress, weights: new Float32Array(3), optimizer: null, ema: null, extra: {} }, 0);
    assert.deepEqual(loadCheckpoint(dir).progress.dpReduced, { '3/4': 10 });
    saveCheckpoint(dir, { runId: 'r', config: cfg, progress: { ...progress, step: 51, dpReduced: undefined }, weights: new Float32Array(3), optimizer: null, ema: null, extra: {} }, 0);
    assert.equal('dpReduced' in loadCheckpoint(dir).progress, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Central noise and plain distributed noise (no secure sum) always carry the full noise.
  const plain = privacyOf(resolveConfig([{ seedPolicy: 'shared', clients: 4, dpClip: 1, noiseMultiplier: 1.2, dpNoise: 'distributed' }]), 100)!;
  assert.equal(plain.reduction(3, 4), null);
});

test('secret noise (the network): N(0, 1) from a ChaCha20 key nobody else holds; a secure DP vector without a seed needs a random source', () => {
  const n = secretNormals(crypto.random(32), 20000);
  const xs = Array.from({ length: 20000 }, () => n());
  const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(sd - 1) < 0.03, `mean ${mean}, sd ${sd}`);
  assert.throws(() => n(), /exhausted/);
  const spec = { dp: { clip: 1, noiseMultiplier: 1, participants: 4, noiseSeed: null } };
  assert.throws(() => secAggVector(new Float32Array(5), 32, 32, 1, spec), /random source/);
  const a = secAggVector(new Float32Array(5), 32, 32, 1, spec, (k) => crypto.random(k));
  const b = secAggVector(new Float32Array(5), 32, 32, 1, spec, (k) => crypto.random(k));
  assert.notDeepEqual(a, b, 'fresh noise every time');
});
