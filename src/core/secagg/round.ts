// The server's side of one secure-aggregation round, as a state machine without sockets (Bonawitz et al. 2017,
// semi-honest server, no signatures). It takes events — the clients' keys, their frames, disconnects, the end
// of a phase's time — and returns actions: frames to send and clients dropped with their reason. The platform
// (the WebSocket server, or the in-process driver of simulate.ts) delivers them and keeps the time.
//
//   advertise   clients answer their task with two public keys (c for encryption, s for masks)  → U1
//   share       every client of U1 sends encrypted Shamir shares of b_u and s_u^SK for each peer  → U2
//   mask        every client of U2 sends its masked input y_u                                      → U3
//   unmask      every client of U3 sends shares: of b_v for v ∈ U3, of s_v^SK for v ∈ U2 \ U3     → U4
//   reconstruct the server rebuilds each secret from ≥ t shares and removes the masks from Σ y_u
//
// A phase ends when every client it waits for has answered or been dropped, or when `timeout()` is called.
// Whenever fewer than t clients remain the round fails: `phase` becomes 'failed' with the reason in `failure`.
import { combine, SHARE_BYTES } from './shamir.ts';
import { equalBytes, KEY_BYTES, maskSeed, NONCE_BYTES, TAG_BYTES, type SecAggCrypto } from './crypto.ts';
import { addWords, pairSign, prg } from './masks.ts';
import type { PeerKeys, SecAggClientMessage, SecAggServerMessage } from './messages.ts';

/** Bytes of one encrypted share pair: nonce ‖ AES-GCM(s-share ‖ b-share) ‖ tag. */
export const SHARE_CT_BYTES = NONCE_BYTES + 2 * SHARE_BYTES + TAG_BYTES;

export type Phase = 'advertise' | 'share' | 'mask' | 'unmask' | 'reconstruct' | 'done' | 'failed';

/**
 * `send`: deliver a frame; `drop`: the client is out of the round (reason for the log); `refuse`: a frame or a
 * share of the client was ignored, the client stays where it is (its input may still count).
 */
export type Action =
  | { kind: 'send'; to: number; msg: SecAggServerMessage }
  | { kind: 'drop'; client: number; reason: string }
  | { kind: 'refuse'; client: number; reason: string };

export interface RoundParams {
  round: number;
  threshold: number;
  /** Words per masked vector. */
  dim: number;
}

export interface SecureSum {
  /** U3: the clients whose inputs the sum holds, ascending. */
  survivors: number[];
  /** Σ_{u ∈ U3} x_u mod 2^32. */
  words: Uint32Array;
}

const isKey = (b: Uint8Array) => b.byteLength === KEY_BYTES && b.some((x) => x !== 0);

export class SecAggServerRound {
  phase: Phase = 'advertise';
  failure: string | null = null;
  private readonly keys = new Map<number, PeerKeys>();
  private u1: number[] = [];
  private u2: number[] = [];
  private u3: number[] = [];
  /** Who the current phase still waits for. */
  private readonly waiting = new Set<number>();
  private readonly cts = new Map<number, Map<number, Uint8Array>>(); // from → to → ct
  private readonly commits = new Map<number, Uint8Array>();
  private readonly masked = new Map<number, Uint32Array>();
  private readonly reveals = new Map<number, Map<number, Uint8Array>>(); // holder → of → share
  /** Every client dropped in this round, with the reason (for the round log). */
  readonly dropped: { client: number; reason: string }[] = [];
  /** Frames and shares ignored without dropping their sender, with the reason. */
  readonly refused: { client: number; reason: string }[] = [];

  constructor(
    readonly params: RoundParams,
    private readonly crypto: SecAggCrypto,
  ) {}

  get survivors(): readonly number[] {
    return this.u3;
  }

  /** The clients the current phase still waits for. */
  awaiting(): number[] {
    return [...this.waiting];
  }

  /** Phase advertise → share: the keys the clients answered their tasks with (U1 = the valid ones). */
  start(advertised: ReadonlyMap<number, { cPk: Uint8Array; sPk: Uint8Array }>): Action[] {
    if (this.phase !== 'advertise') throw new Error(`start() in phase ${this.phase}`);
    const actions: Action[] = [];
    const seen = new Set<string>();
    for (const [client, k] of [...advertised].sort((a, b) => a[0] - b[0])) {
      const sig = `${hex(k.cPk)}${hex(k.sPk)}`;
      if (!isKey(k.cPk) || !isKey(k.sPk)) this.drop(actions, client, `advertised keys are not two 32-byte X25519 public keys`);
      else if (equalBytes(k.cPk, k.sPk) || seen.has(sig)) this.drop(actions, client, 'advertised keys repeat keys already advertised');
      else {
        seen.add(sig);
        this.keys.set(client, { client, cPk: k.cPk, sPk: k.sPk });
      }
    }
    this.u1 = [...this.keys.keys()];
    if (!this.enough(this.u1.length, 'advertised keys')) return actions;
    const roster = this.u1.map((c) => this.keys.get(c)!);
    for (const c of this.u1) actions.push({ kind: 'send', to: c, msg: { type: 'sa-roster', round: this.params.round, keys: roster } });
    this.enter('share', this.u1);
    return actions;
  }

  /** A frame of client `from` (already schema-checked). */
  receive(from: number, msg: SecAggClientMessage): Action[] {
    const actions: Action[] = [];
    if (msg.type === 'sa-advertise') {
      this.drop(actions, from, 'keys advertised after the roster was sent');
      return this.settle(actions);
    }
    if (msg.round !== this.params.round) {
      this.drop(actions, from, `${msg.type} names round ${msg.round}, the open round is ${this.params.round}`);
      return this.settle(actions);
    }
    const expected = { share: 'sa-shares', mask: 'sa-masked', unmask: 'sa-reveal' }[this.phase as 'share'];
    if (!this.waiting.has(from) || msg.type !== expected) {
      const why = this.waiting.has(from) ? `expected ${expected}` : 'not expected from this client now';
      this.drop(actions, from, `${msg.type} in phase ${this.phase}: ${why}`);
      return this.settle(actions);
    }
    const problem = this.check(from, msg);
    if (problem) this.drop(actions, from, problem);
    else {
      this.waiting.delete(from);
      if (msg.type === 'sa-shares') {
        this.cts.set(from, new Map(msg.shares.map((s) => [s.to, s.ct])));
        this.commits.set(from, msg.commit);
      } else if (msg.type === 'sa-masked') this.masked.set(from, msg.masked);
      else if (msg.type === 'sa-reveal') this.reveals.set(from, new Map(msg.shares.map((s) => [s.of, s.share])));
    }
    return this.settle(actions);
  }

  /** Client `id` is gone (its connection closed, or it refused the round: `why`): it answers nothing more this round. */
  disconnect(id: number, why = 'disconnected'): Action[] {
    const actions: Action[] = [];
    if (this.waiting.has(id)) this.drop(actions, id, `${why} in phase ${this.phase}`);
    return this.settle(actions);
  }

  /** The current phase's time is up: whoever has not answered is dropped. */
  timeout(): Action[] {
    const actions: Action[] = [];
    for (const id of [...this.waiting]) this.drop(actions, id, `no ${this.phase} message before the phase deadline`);
    return this.settle(actions);
  }

  /** Phase reconstruct: rebuilds the secrets and returns the unmasked sum (phase → 'done', or 'failed'). */
  async finish(): Promise<SecureSum | null> {
    if (this.phase !== 'reconstruct') throw new Error(`finish() in phase ${this.phase}`);
    const { dim } = this.params;
    const sum = new Uint32Array(dim);
    for (const u of this.u3) addWords(sum, this.masked.get(u)!);
    const survivors = new Set(this.u3);
    try {
      for (const v of this.u2) {
        if (survivors.has(v)) {
          const commit = this.commits.get(v)!;
          const b = await this.rebuild(v, async (secret) => equalBytes(await this.crypto.sha256(secret), commit));
          addWords(sum, prg(b, dim), -1);
        } else {
          const sPk = this.keys.get(v)!.sPk;
          const sk = await this.rebuild(v, async (secret) => equalBytes(await this.crypto.publicKeyOf(secret).catch(() => new Uint8Array(0)), sPk));
          for (const u of this.u3) {
            const seed = await maskSeed(this.crypto, sk, this.keys.get(u)!.sPk);
            addWords(sum, prg(seed, dim), pairSign(u, v) === 1 ? -1 : 1);
          }
        }
      }
    } catch (e) {
      this.fail((e as Error).message);
      return null;
    }
    this.phase = 'done';
    return { survivors: this.u3.slice(), words: sum };
  }

  // ---------------------------------------------------------------------------------------------------

  /**
   * The secret of client v from the shares the holders revealed (b_v for survivors, s_v^SK for the dropped),
   * checked against its commitment (SHA-256(b_v)) or advertised public key. A share that does not fit is found
   * by leaving one holder out at a time; that holder is logged. Throws when no secret passes the check.
   */
  private async rebuild(v: number, valid: (secret: Uint8Array) => Promise<boolean>): Promise<Uint8Array> {
    const t = this.params.threshold;
    const shares = new Map<number, Uint8Array>();
    for (const [holder, m] of this.reveals) {
      const s = m.get(v);
      if (s) shares.set(holder, s);
    }
    const what = this.u3.includes(v) ? 'self-mask seed b' : 'mask key s_sk';
    if (shares.size < t) throw new Error(`only ${shares.size} shares of client ${v}'s ${what}, threshold ${t}`);
    const attempt = async (m: Map<number, Uint8Array>): Promise<Uint8Array | null> => {
      try {
        const s = combine(m);
        return (await valid(s)) ? s : null;
      } catch {
        return null;
      }
    };
    const all = await attempt(shares);
    if (all) return all;
    if (shares.size > t) {
      for (const holder of shares.keys()) {
        const rest = new Map(shares);
        rest.delete(holder);
        const s = await attempt(rest);
        if (s) {
          this.refused.push({ client: holder, reason: `its share of client ${v}'s ${what} is wrong (ignored)` });
          return s;
        }
      }
    }
    throw new Error(`the ${shares.size} shares of client ${v}'s ${what} do not rebuild it (a share is wrong)`);
  }

  /** What is wrong with a message of the current phase, or null. */
  private check(from: number, msg: SecAggClientMessage): string | null {
    const { dim } = this.params;
    switch (msg.type) {
      case 'sa-shares': {
        if (msg.commit.byteLength !== 32) return `sa-shares.commit has ${msg.commit.byteLength} bytes, expected 32`;
        const want = new Set(this.u1.filter((c) => c !== from));
        const got = new Set<number>();
        for (const s of msg.shares) {
          if (!want.has(s.to)) return `sa-shares addresses client ${s.to}, which is not a peer in the roster`;
          if (got.has(s.to)) return `sa-shares addresses client ${s.to} twice`;
          if (s.ct.byteLength !== SHARE_CT_BYTES) return `sa-shares: the ciphertext for client ${s.to} has ${s.ct.byteLength} bytes, expected ${SHARE_CT_BYTES}`;
          got.add(s.to);
        }
        if (got.size !== want.size) return `sa-shares holds ${got.size} ciphertexts, the roster has ${want.size} peers`;
        return null;
      }
      case 'sa-masked':
        return msg.masked.length === dim ? null : `sa-masked holds ${msg.masked.length} words, expected ${dim}`;
      case 'sa-reveal': {
        const allowed = new Set(this.u2);
        const got = new Set<number>();
        for (const s of msg.shares) {
          if (!allowed.has(s.of)) return `sa-reveal holds a share of client ${s.of}, which did not share keys this round`;
          if (got.has(s.of)) return `sa-reveal holds two shares of client ${s.of}`;
          if (s.share.byteLength !== SHARE_BYTES) return `sa-reveal: the share of client ${s.of} has ${s.share.byteLength} bytes, expected ${SHARE_BYTES}`;
          got.add(s.of);
        }
        return null;
      }
      default:
        return `unexpected ${msg.type}`;
    }
  }

  private drop(actions: Action[], client: number, reason: string): void {
    if (!this.waiting.delete(client) && this.phase !== 'advertise') {
      // Not awaited (already answered or already dropped): the message is refused, the client stays as it is.
      this.refused.push({ client, reason });
      actions.push({ kind: 'refuse', client, reason });
      return;
    }
    this.dropped.push({ client, reason });
    actions.push({ kind: 'drop', client, reason });
  }

  private enter(phase: Phase, waitFor: readonly number[]): void {
    this.phase = phase;
    this.waiting.clear();
    for (const c of waitFor) this.waiting.add(c);
  }

  private enough(n: number, what: string): boolean {
    if (n >= this.params.threshold) return true;
    this.fail(`${n} clients with ${what}, fewer than the threshold ${this.params.threshold}`);
    return false;
  }

  private fail(reason: string): void {
    this.phase = 'failed';
    this.failure = reason;
    this.waiting.clear();
  }

  /** Moves to the next phase when the current one has heard from everyone it waits for. */
  private settle(actions: Action[]): Action[] {
    if (this.waiting.size > 0) return actions;
    const { round } = this.params;
    switch (this.phase) {
      case 'share': {
        this.u2 = this.u1.filter((c) => this.cts.has(c));
        if (!this.enough(this.u2.length, 'shares sent')) break;
        for (const v of this.u2) {
          const shares = this.u2.filter((u) => u !== v).map((u) => ({ from: u, ct: this.cts.get(u)!.get(v)! }));
          actions.push({ kind: 'send', to: v, msg: { type: 'sa-inbox', round, shares } });
        }
        this.enter('mask', this.u2);
        break;
      }
      case 'mask': {
        this.u3 = this.u2.filter((c) => this.masked.has(c));
        if (!this.enough(this.u3.length, 'masked inputs')) break;
        const dropped = this.u2.filter((c) => !this.masked.has(c));
        for (const u of this.u3) actions.push({ kind: 'send', to: u, msg: { type: 'sa-unmask', round, survivors: this.u3, dropped } });
        this.enter('unmask', this.u3);
        break;
      }
      case 'unmask':
        if (!this.enough(this.reveals.size, 'revealed shares')) break;
        this.phase = 'reconstruct';
        break;
      default:
        break;
    }
    return actions;
  }
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
