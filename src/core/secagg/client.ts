// A client's side of one secure-aggregation round (the counterpart of round.ts), platform-free: it holds the
// client's vector, its fresh keys and secrets, and answers the server's three frames. It checks each frame
// against what it saw before (a server that contradicts itself gets nothing), and never reveals both secrets
// of one peer: one unmasking per round.
import { decryptShares, encryptShares, KEY_BYTES, maskSeed, shareAad, shareKey, type KeyPair, type SecAggCrypto } from './crypto.ts';
import { maskInput } from './masks.ts';
import type { SaInboxMsg, SaMaskedMsg, SaRevealMsg, SaRosterMsg, SaSharesMsg, SaUnmaskMsg, SecAggTaskSpec } from './messages.ts';
import { quantize } from './quantize.ts';
import { SECRET_BYTES, SHARE_BYTES, split } from './shamir.ts';

/** A frame the client will not answer (the server contradicts the protocol or itself). */
export class SecAggRefusal extends Error {
  override name = 'SecAggRefusal';
}

export class SecAggClient {
  private phase: 'advertised' | 'shared' | 'masked' | 'revealed' = 'advertised';
  private roster = new Map<number, { cPk: Uint8Array; sPk: Uint8Array }>();
  private b: Uint8Array | null = null;
  /** Shares this client holds: peer → its shares of (s_sk, b); its own included. */
  private readonly held = new Map<number, { s: Uint8Array; b: Uint8Array }>();
  private u2: number[] = [];
  /** Share keys by peer (k_uv = k_vu: the one that encrypts to v also decrypts from v). */
  private readonly shareKeys = new Map<number, Uint8Array>();
  /** Peers whose shares did not decrypt (logged by the host). */
  readonly undecryptable: number[] = [];

  private constructor(
    readonly id: number,
    readonly round: number,
    readonly spec: SecAggTaskSpec,
    /** x quantized: what the sum adds (kept for debugging hooks). */
    readonly words: Uint32Array,
    private readonly c: KeyPair,
    private readonly s: KeyPair,
    private readonly crypto: SecAggCrypto,
  ) {}

  /** Quantizes the client's vector and makes the round's two key pairs. */
  static async create(id: number, round: number, spec: SecAggTaskSpec, vector: ArrayLike<number>, crypto: SecAggCrypto): Promise<SecAggClient> {
    if (vector.length !== spec.dim) throw new SecAggRefusal(`the vector has ${vector.length} values, the task says ${spec.dim}`);
    const words = quantize(vector, spec.range, spec.scale, spec.roundingSeed);
    const [c, s] = [await crypto.generateKeyPair(), await crypto.generateKeyPair()];
    return new SecAggClient(id, round, spec, words, c, s, crypto);
  }

  /** Phase 0: the public keys to advertise. */
  get publicKeys(): { cPk: Uint8Array; sPk: Uint8Array } {
    return { cPk: this.c.publicKey, sPk: this.s.publicKey };
  }

  /** Phase 1: the roster → encrypted shares of b and s_sk for every peer. */
  async onRoster(msg: SaRosterMsg): Promise<SaSharesMsg> {
    this.expect('advertised', msg.type, msg.round);
    const ids = msg.keys.map((k) => k.client);
    if (new Set(ids).size !== ids.length) throw new SecAggRefusal('the roster names a client twice');
    const me = msg.keys.find((k) => k.client === this.id);
    if (!me || !bytesEqual(me.cPk, this.c.publicKey) || !bytesEqual(me.sPk, this.s.publicKey)) throw new SecAggRefusal('the roster does not hold this client with its keys');
    if (msg.keys.length < this.spec.threshold) throw new SecAggRefusal(`the roster has ${msg.keys.length} clients, fewer than the threshold ${this.spec.threshold}`);
    for (const k of msg.keys) {
      if (k.cPk.byteLength !== KEY_BYTES || k.sPk.byteLength !== KEY_BYTES) throw new SecAggRefusal(`client ${k.client}'s keys are not 32 bytes`);
      this.roster.set(k.client, { cPk: k.cPk, sPk: k.sPk });
    }
    this.b = this.crypto.random(SECRET_BYTES);
    const sShares = split(this.s.privateKey, ids, this.spec.threshold, (n) => this.crypto.random(n));
    const bShares = split(this.b, ids, this.spec.threshold, (n) => this.crypto.random(n));
    this.held.set(this.id, { s: sShares.get(this.id)!, b: bShares.get(this.id)! });
    const shares: SaSharesMsg['shares'] = [];
    for (const v of ids) {
      if (v === this.id) continue;
      const key = await shareKey(this.crypto, this.c.privateKey, this.roster.get(v)!.cPk);
      this.shareKeys.set(v, key);
      const plain = new Uint8Array(2 * SHARE_BYTES);
      plain.set(sShares.get(v)!);
      plain.set(bShares.get(v)!, SHARE_BYTES);
      shares.push({ to: v, ct: await encryptShares(this.crypto, key, plain, shareAad(this.round, this.id, v)) });
    }
    this.phase = 'shared';
    return { type: 'sa-shares', round: this.round, commit: await this.crypto.sha256(this.b), shares };
  }

  /** Phase 2: the shares addressed to this client → its masked input (over U2 = the senders and itself). */
  async onInbox(msg: SaInboxMsg): Promise<SaMaskedMsg> {
    this.expect('shared', msg.type, msg.round);
    const from = new Set<number>();
    for (const s of msg.shares) {
      if (s.from === this.id || !this.roster.has(s.from) || from.has(s.from)) throw new SecAggRefusal(`the inbox holds shares from client ${s.from}, not a peer of the roster (or twice)`);
      from.add(s.from);
    }
    if (from.size + 1 < this.spec.threshold) throw new SecAggRefusal(`shares from ${from.size} peers: fewer than the threshold ${this.spec.threshold} clients are left`);
    const pairwise = new Map<number, Uint8Array>();
    for (const s of msg.shares) {
      const peer = this.roster.get(s.from)!;
      const key = this.shareKeys.get(s.from) ?? (await shareKey(this.crypto, this.c.privateKey, peer.cPk));
      const plain = await decryptShares(this.crypto, key, s.ct, shareAad(this.round, s.from, this.id));
      if (plain && plain.byteLength === 2 * SHARE_BYTES) this.held.set(s.from, { s: plain.slice(0, SHARE_BYTES), b: plain.slice(SHARE_BYTES) });
      else this.undecryptable.push(s.from);
      // The mask with every client of U2, whether or not its shares decrypted: the server's sum needs it.
      pairwise.set(s.from, await maskSeed(this.crypto, this.s.privateKey, peer.sPk));
    }
    this.u2 = [this.id, ...from].sort((a, b) => a - b);
    this.phase = 'masked';
    return { type: 'sa-masked', round: this.round, masked: maskInput(this.words, this.b!, this.id, pairwise) };
  }

  /** Phase 3: survivors and dropped → the shares the server needs (b of survivors, s_sk of the dropped). */
  onUnmask(msg: SaUnmaskMsg): SaRevealMsg {
    this.expect('masked', msg.type, msg.round);
    const survivors = new Set(msg.survivors);
    const dropped = new Set(msg.dropped);
    const u2 = new Set(this.u2);
    if (survivors.size !== msg.survivors.length || dropped.size !== msg.dropped.length) throw new SecAggRefusal('sa-unmask names a client twice');
    for (const v of [...survivors, ...dropped]) if (!u2.has(v)) throw new SecAggRefusal(`sa-unmask names client ${v}, which did not share with this client`);
    for (const v of survivors) if (dropped.has(v)) throw new SecAggRefusal(`sa-unmask names client ${v} both a survivor and dropped`);
    if (survivors.size + dropped.size !== u2.size) throw new SecAggRefusal('sa-unmask does not account for every client that shared');
    if (!survivors.has(this.id)) throw new SecAggRefusal('sa-unmask does not count this client as a survivor');
    if (survivors.size < this.spec.threshold) throw new SecAggRefusal(`${survivors.size} survivors, fewer than the threshold ${this.spec.threshold}`);
    this.phase = 'revealed';
    const shares: SaRevealMsg['shares'] = [];
    for (const v of this.u2) {
      const h = this.held.get(v);
      if (!h) continue;
      shares.push({ of: v, share: survivors.has(v) ? h.b : h.s });
    }
    return { type: 'sa-reveal', round: this.round, shares };
  }

  private expect(phase: SecAggClient['phase'], type: string, round: number): void {
    if (round !== this.round) throw new SecAggRefusal(`${type} for round ${round}, this client is in round ${this.round}`);
    if (this.phase !== phase) throw new SecAggRefusal(`${type} out of order (the client has ${this.phase})`);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}
