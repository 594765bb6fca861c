// Secure aggregation in one process: the clients of secagg/client.ts and the server's state machine of
// secagg/round.ts, frames handed over directly. `baffle run` uses it for `secureAggregation` (the same rounds as
// over the network, minus the sockets), and the tests use it with faults: clients that vanish before or after
// their masked input, and frames replaced by malformed ones.
import { SecAggClient, SecAggRefusal } from './client.ts';
import type { SecAggCrypto } from './crypto.ts';
import type { SecAggClientMessage, SecAggServerMessage, SecAggTaskSpec } from './messages.ts';
import { dequantize } from './quantize.ts';
import { SecAggServerRound, type Action } from './round.ts';

export interface SimFaults {
  /** Clients that vanish after sharing keys, before sending their masked input. */
  dropBeforeMasked?: ReadonlySet<number>;
  /** Clients that vanish right after sending their masked input. */
  dropAfterMasked?: ReadonlySet<number>;
  /** Replaces a client's frame (malformed shares in the tests). */
  tamper?(from: number, msg: SecAggClientMessage): SecAggClientMessage;
  /** Sees every frame the server would send and every client's masked input (the tests' view of the server). */
  observe?(from: number, msg: SecAggClientMessage): void;
}

export interface SimInput {
  clientId: number;
  vector: ArrayLike<number>;
  spec: SecAggTaskSpec;
}

export type SimOutcome =
  | { ok: true; survivors: number[]; sum: Float64Array; words: Uint32Array; dropped: Note[]; refused: Note[] }
  | { ok: false; reason: string; dropped: Note[]; refused: Note[] };

type Note = { client: number; reason: string };

/** One round of secure aggregation over `inputs` (each with the task's spec); the server learns only the sum. */
export async function secureSumInProcess(round: number, inputs: readonly SimInput[], crypto: SecAggCrypto, faults: SimFaults = {}): Promise<SimOutcome> {
  const spec = inputs[0]!.spec;
  const server = new SecAggServerRound({ round, threshold: spec.threshold, dim: spec.dim }, crypto);
  const clients = new Map<number, SecAggClient>();
  for (const i of inputs) clients.set(i.clientId, await SecAggClient.create(i.clientId, round, i.spec, i.vector, crypto));
  const gone = new Set<number>();
  const deliver = (from: number, msg: SecAggClientMessage): Action[] => {
    const m = faults.tamper ? faults.tamper(from, msg) : msg;
    faults.observe?.(from, m);
    return server.receive(from, m);
  };
  const advertised = new Map<number, { cPk: Uint8Array; sPk: Uint8Array }>();
  for (const [id, c] of clients) {
    const m = faults.tamper ? faults.tamper(id, { type: 'sa-advertise', task: 0, round, ...c.publicKeys }) : { type: 'sa-advertise' as const, task: 0, round, ...c.publicKeys };
    if (m.type === 'sa-advertise') advertised.set(id, { cPk: m.cPk, sPk: m.sPk });
  }
  const queue: Action[] = server.start(advertised);
  while (queue.length > 0) {
    const a = queue.shift()!;
    if (a.kind !== 'send') continue;
    const c = clients.get(a.to);
    if (!c || gone.has(a.to)) {
      queue.push(...server.disconnect(a.to));
      continue;
    }
    const msg: SecAggServerMessage = a.msg;
    let reply: SecAggClientMessage;
    try {
      if (msg.type === 'sa-roster') reply = await c.onRoster(msg);
      else if (msg.type === 'sa-inbox') {
        if (faults.dropBeforeMasked?.has(a.to)) {
          gone.add(a.to);
          queue.push(...server.disconnect(a.to));
          continue;
        }
        reply = await c.onInbox(msg);
      } else {
        if (faults.dropAfterMasked?.has(a.to)) {
          gone.add(a.to);
          queue.push(...server.disconnect(a.to));
          continue;
        }
        reply = c.onUnmask(msg);
      }
    } catch (e) {
      if (!(e instanceof SecAggRefusal)) throw e;
      gone.add(a.to);
      queue.push(...server.disconnect(a.to));
      continue;
    }
    queue.push(...deliver(a.to, reply));
  }
  if (server.awaiting().length > 0) server.timeout();
  if (server.phase === 'reconstruct') {
    const sum = await server.finish();
    if (sum) return { ok: true, survivors: sum.survivors, words: sum.words, sum: dequantize(sum.words, spec.scale), dropped: server.dropped, refused: server.refused };
  }
  return { ok: false, reason: server.failure ?? `round ended in phase ${server.phase}`, dropped: server.dropped, refused: server.refused };
}
