// Messages between the join page and its worker. The page sends what the person chose; the worker reports what
// happens. Both sides check what they receive: a message is data from another context.
import type { ClientEvent } from '../core/protocol/client.ts';
import type { PageData } from './data.ts';

export interface StartMessage {
  type: 'start';
  url: string;
  clientId: number;
  token: string;
  data: PageData;
}

export type ToWorker = StartMessage | { type: 'stop' };

export interface WorkerStats {
  tasks: number;
  forwardPasses: number;
  busyMs: number;
  bytesIn: number;
  bytesOut: number;
  lastLoss: number | null;
  lastRound: number | null;
}

export type FromWorker =
  | { type: 'event'; event: ClientEvent }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'backend'; backend: string; threads: number }
  | { type: 'error'; message: string };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

export function parseToWorker(v: unknown): ToWorker {
  if (!isRecord(v)) throw new Error('worker: a message must be an object');
  if (v.type === 'stop') return { type: 'stop' };
  if (v.type !== 'start') throw new Error(`worker: unknown message type ${JSON.stringify(v.type)}`);
  if (typeof v.url !== 'string' || !/^wss?:\/\//.test(v.url)) throw new Error('worker: start.url must be a ws:// or wss:// URL');
  if (typeof v.clientId !== 'number' || !Number.isInteger(v.clientId) || v.clientId < 0) throw new Error('worker: start.clientId must be a client id');
  if (typeof v.token !== 'string' || v.token.length === 0) throw new Error('worker: start.token must be a token');
  const d = v.data;
  if (!isRecord(d) || (d.kind !== 'idx' && d.kind !== 'images')) throw new Error('worker: start.data must be IDX files or images');
  return { type: 'start', url: v.url, clientId: v.clientId, token: v.token, data: d as unknown as PageData };
}

export function parseFromWorker(v: unknown): FromWorker {
  if (!isRecord(v) || !['event', 'stats', 'backend', 'error'].includes(v.type as string)) throw new Error('page: unknown message from the worker');
  return v as unknown as FromWorker;
}
