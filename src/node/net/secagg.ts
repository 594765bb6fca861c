// The WebSocket server's driver of a secure-aggregation round: it feeds the core state machine
// (src/core/secagg/round.ts) with the clients' frames and disconnects, delivers the frames it returns, and
// closes each phase after the round timeout. Everything the protocol decides lives in the state machine.
//
// Debugging: with BAFFLE_SECAGG_DEBUG=DIR the server appends one JSON line per secure round to DIR/server.jsonl
// — each client's masked vector as the server received it, read as signed fixed point, and the unmasked sum —
// so a test can check that the server's view of a client differs from its input while the sum is right. Off by
// default; never enable it in a real deployment (it writes what the server sees, nothing more, but still).
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dequantize } from '../../core/secagg/quantize.ts';
import { SecAggServerRound, type Action, type SecureSum } from '../../core/secagg/round.ts';
import type { SecAggClientMessage, SecAggServerMessage } from '../../core/secagg/messages.ts';
import { nodeSecAggCrypto } from '../secagg/crypto.ts';

export interface SecAggIo {
  /** Sends a frame to a client; false when it is not connected. */
  send(clientId: number, msg: SecAggServerMessage): boolean;
  /** A client dropped from the round, with the reason (logged, in the round record). */
  dropped(clientId: number, reason: string): void;
  /** A frame or share of a client ignored (logged; the client stays in the round). */
  refused(clientId: number, reason: string): void;
  /** Something changed (wakes the server's waiters). */
  notify(): void;
  connected(clientId: number): boolean;
}

export class SecAggSession {
  readonly machine: SecAggServerRound;
  private readonly masked = new Map<number, Uint32Array>();

  constructor(
    readonly round: number,
    threshold: number,
    dim: number,
    private readonly scale: number,
    private readonly io: SecAggIo,
  ) {
    this.machine = new SecAggServerRound({ round, threshold, dim }, nodeSecAggCrypto);
  }

  receive(clientId: number, msg: SecAggClientMessage): void {
    if (msg.type === 'sa-masked' && debugDir()) this.masked.set(clientId, msg.masked);
    this.apply(this.machine.receive(clientId, msg));
  }

  disconnect(clientId: number, why?: string): void {
    this.apply(this.machine.disconnect(clientId, why));
  }

  /**
   * Runs the phases after advertise: each phase waits for its clients (`until` resolves true when the phase
   * changed) at most `phaseMs`; returns the sum, or null when the round failed (`machine.failure` says why).
   */
  async run(keys: ReadonlyMap<number, { cPk: Uint8Array; sPk: Uint8Array }>, until: (pred: () => boolean, ms: number) => Promise<boolean>, phaseMs: number): Promise<SecureSum | null> {
    const m = this.machine;
    this.apply(m.start(keys));
    while (m.phase === 'share' || m.phase === 'mask' || m.phase === 'unmask') {
      const phase = m.phase;
      if (!(await until(() => m.phase !== phase, phaseMs))) this.apply(m.timeout());
    }
    if (m.phase !== 'reconstruct') return null;
    const before = m.refused.length;
    const sum = await m.finish();
    for (const r of m.refused.slice(before)) this.io.refused(r.client, r.reason);
    const dir = debugDir();
    if (dir && sum) {
      const masked = Object.fromEntries([...this.masked].map(([c, w]) => [c, Array.from(dequantize(w, this.scale))]));
      appendFileSync(join(dir, 'server.jsonl'), `${JSON.stringify({ round: this.round, survivors: sum.survivors, scale: this.scale, masked, sum: Array.from(dequantize(sum.words, this.scale)) })}\n`);
    }
    return sum;
  }

  private apply(actions: Action[]): void {
    const gone: number[] = [];
    for (const a of actions) {
      if (a.kind === 'drop') this.io.dropped(a.client, a.reason);
      else if (a.kind === 'refuse') this.io.refused(a.client, a.reason);
      else if (!this.io.send(a.to, a.msg)) gone.push(a.to);
    }
    // A client that the phase waits for but that is not connected will never answer.
    for (const id of [...gone, ...this.machine.awaiting().filter((c) => !this.io.connected(c))]) {
      if (this.machine.awaiting().includes(id)) this.apply(this.machine.disconnect(id));
    }
    this.io.notify();
  }
}

/** The debug directory (BAFFLE_SECAGG_DEBUG), created on first use; null when unset. */
export function debugDir(): string | null {
  const dir = process.env.BAFFLE_SECAGG_DEBUG;
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  return dir;
}
