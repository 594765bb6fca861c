// The networked client (`baffle join`): one or more federated clients in one process, each with its own
// WebSocket connection and token, sharing one forward engine. The protocol client itself is platform-free
// (src/core/protocol/client.ts, which the browser client runs too); here are Node's parts: onnxruntime-node,
// the data on disk, `ws` sockets, signals.
import { clientShards } from '../../core/fl/setup.ts';
import {
  ClientEngine,
  FederatedClient,
  ModelCache,
  type ClientData,
  type ClientOutcome,
  type EnginePlatform,
  type SocketOpener,
} from '../../core/protocol/client.ts';
import { OrtSession } from '../engine/ort.ts';
import { checkDataFits, loadRunData } from '../model/load.ts';
import WebSocket from 'ws';
import { loadLocalIdx } from './localData.ts';
import { nodeSecAggCrypto } from '../secagg/crypto.ts';
import { debugDir } from './secagg.ts';
import { appendFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';


export interface JoinOptions {
  url: string;
  /** The federated clients this process hosts. */
  clients: { id: number; token: string }[];
  /** Where the training data comes from: the run's data set (partitioned like the server does), or own IDX files. */
  data: { kind: 'dataset'; dataDir: string | null } | { kind: 'files'; dir: string };
  /** Extra CA certificate(s) to trust for wss:// (a self-signed server certificate). */
  ca?: Buffer;
  log(line: string): void;
  /** Log every connection event of every client (default: only with a few clients). */
  verbose?: boolean;
  /** Stop reconnecting after this many ms without a successful connection; 0 = never. */
  giveUpMs?: number;
}

export type { ClientOutcome } from '../../core/protocol/client.ts';

export interface JoinResult {
  outcomes: Map<number, ClientOutcome>;
  /** Why a client was refused or gave up (the server's reason, or the last connection error). */
  reasons: Map<number, string>;
  tasks: number;
}

// ---------------------------------------------------------------------------------------------------
// Node's parts of a client: onnxruntime-node, data from the disk, and `ws` sockets.

export function nodePlatform(data: JoinOptions['data']): EnginePlatform {
  return {
    createSession: (model) => OrtSession.create(model),
    loadData(config, model): ClientData {
      if (data.kind === 'files') {
        const local = loadLocalIdx(data.dir, model.preprocess, model.classes);
        const all = Int32Array.from({ length: local.count }, (_, i) => i);
        return { x: local.x, y: local.y, shardOf: () => all };
      }
      checkDataFits(model, config);
      const dataset = loadRunData({ ...config, dataDir: data.dataDir ?? config.dataDir }, model);
      // Every client's shard is a pure function of (labels, config): the same split the server's run uses.
      const shards = clientShards(config, dataset.train.y, dataset.classes);
      return { x: dataset.train.x, y: dataset.train.y, shardOf: (c) => shards[c]! };
    },
  };
}

export function wsOpener(ca: Buffer | undefined): SocketOpener {
  return (url, subprotocol, events) => {
    const ws = new WebSocket(url, subprotocol, { ca, perMessageDeflate: false, handshakeTimeout: 10_000, maxPayload: 1 << 30 });
    ws.on('error', (e) => events.error(e.message));
    ws.on('close', (code, why) => events.close(code, why.toString()));
    ws.on('message', (data: Buffer, isBinary: boolean) => events.message(data, isBinary));
    return {
      send: (frame) => ws.send(frame),
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
      close: () => ws.close(),
      terminate: () => ws.terminate(),
    };
  };
}

/** Runs the given clients until the server says training is done (or they are refused or give up). */
export async function join(opts: JoinOptions): Promise<JoinResult> {
  const engine = new ClientEngine(nodePlatform(opts.data));
  const models = new ModelCache();
  const verbose = opts.verbose ?? opts.clients.length <= 8;
  const say = verbose ? opts.log : () => {};
  const open = wsOpener(opts.ca);
  const clients = opts.clients.map(
    (c) =>
      new FederatedClient(c.id, c.token, engine, models, {
        url: opts.url,
        agent: 'baffle-join/0.1 (node)',
        open,
        giveUpMs: opts.giveUpMs ?? 0,
        secAggCrypto: nodeSecAggCrypto,
        // BAFFLE_SECAGG_DEBUG=DIR: the plain vector of each secure round, for the tests' comparison (never sent).
        onSecAggInput: debugDir()
          ? (round, vector) => appendFileSync(joinPath(debugDir()!, `client-${c.id}.jsonl`), `${JSON.stringify({ round, client: c.id, vector: Array.from(vector) })}\n`)
          : undefined,
        onEvent: (e) => {
          switch (e.kind) {
            case 'connected':
              return say(`client ${c.id}: connected (run ${e.runId})`);
            case 'disconnected':
              return say(`client ${c.id}: ${e.reason}; reconnecting in ${(e.retryInMs / 1000).toFixed(1)}s`);
            case 'refused-frame':
              return say(`client ${c.id}: server refused a frame (${e.message})`);
            case 'secagg':
              return opts.log(`client ${c.id}: round ${e.round + 1}: secure aggregation: ${e.message}`);
            case 'finished':
              if (e.outcome === 'refused') opts.log(`client ${c.id}: ${e.reason}; not reconnecting`);
              if (e.outcome === 'gave-up') opts.log(`client ${c.id}: no connection for ${Math.round((opts.giveUpMs ?? 0) / 1000)}s, giving up`);
              return;
            default:
              return;
          }
        },
      }),
  );
  const stop = () => clients.forEach((c) => c.stop());
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    const outcomes = await Promise.all(clients.map((c) => c.run()));
    const reasons = new Map<number, string>();
    clients.forEach((c, i) => c.why !== null && reasons.set(opts.clients[i]!.id, c.why));
    return { outcomes: new Map(opts.clients.map((c, i) => [c.id, outcomes[i]])), reasons, tasks: engine.stats.tasks };
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}
