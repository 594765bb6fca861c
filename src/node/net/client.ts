// The networked client (`baffle join`): one or more federated clients in one process, each with its own
// WebSocket connection and token, sharing one forward engine. Clients run forward passes only: they take
// the model and a task (seed, K, σ, scheme, minibatch cursor), regenerate the directions from the seed and
// send back K scalars. They reconnect with exponential backoff when the server goes away.
import { resolveConfig, type RunConfig } from '../../core/config/index.ts';
import { BatchGatherer } from '../../core/data/batch.ts';
import { CursorStream } from '../../core/fl/clientData.ts';
import { localTrain } from '../../core/fl/localTrain.ts';
import { clientShards, clientStream } from '../../core/fl/setup.ts';
import { exampleSize, type ClientModel } from '../../core/model/artifact.ts';
import { estimate } from '../../core/zo/task.ts';
import { OrtSession } from '../engine/ort.ts';
import { checkDataFits, loadRunData } from '../model/load.ts';
import WebSocket from 'ws';
import { loadLocalIdx } from './localData.ts';
import {
  CloseCode,
  decodeServerFrame,
  encode,
  helloProof,
  PROTOCOL_VERSION,
  ProtocolError,
  SUBPROTOCOL,
  type ClientMessage,
  type ServerMessage,
  type TaskMsg,
  type WelcomeMsg,
} from '../../core/protocol/protocol.ts';

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

export type ClientOutcome = 'done' | 'refused' | 'gave-up' | 'stopped';

export interface JoinResult {
  outcomes: Map<number, ClientOutcome>;
  /** Why a client was refused or gave up (the server's reason, or the last connection error). */
  reasons: Map<number, string>;
  tasks: number;
}

// ---------------------------------------------------------------------------------------------------
// The shared engine: data, model, one ORT session, and a queue that runs one task at a time.

interface Prepared {
  runId: string;
  config: RunConfig;
  model: ClientModel;
  session: OrtSession;
  train: BatchGatherer;
  shardOf(clientId: number): Int32Array;
  streams: Map<number, CursorStream>;
  scratch: Float32Array;
}

class Engine {
  private prepared: { runId: string; ready: Promise<Prepared> } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  tasks = 0;

  constructor(private readonly opts: JoinOptions) {}

  prepare(welcome: WelcomeMsg): Promise<Prepared> {
    if (this.prepared?.runId !== welcome.runId) {
      this.prepared = { runId: welcome.runId, ready: this.build(welcome) };
      this.prepared.ready.catch(() => {});
    }
    return this.prepared.ready;
  }

  /** The engine from the server's model artifact, and this client's data prepared as that model takes it. */
  private async build(welcome: WelcomeMsg): Promise<Prepared> {
    let config: RunConfig;
    try {
      config = resolveConfig([welcome.config], ['the server']);
    } catch (e) {
      throw new Error(`the server's run configuration is not one this client understands: ${(e as Error).message}`);
    }
    const { model } = welcome;
    let x: Float32Array;
    let y: Uint8Array;
    let shardOf: (c: number) => Int32Array;
    const data = this.opts.data;
    if (data.kind === 'files') {
      const local = loadLocalIdx(data.dir, model.preprocess, model.classes);
      x = local.x;
      y = local.y;
      const all = Int32Array.from({ length: local.count }, (_, i) => i);
      shardOf = () => all;
    } else {
      checkDataFits(model, config);
      const dataset = loadRunData({ ...config, dataDir: data.dataDir ?? config.dataDir }, model);
      x = dataset.train.x;
      y = dataset.train.y;
      // Every client's shard is a pure function of (labels, config): the same split the server's run uses.
      const shards = clientShards(config, dataset.train.y, dataset.classes);
      shardOf = (c) => shards[c]!;
    }
    const session = await OrtSession.create(model);
    return {
      runId: welcome.runId,
      config,
      model,
      session,
      train: new BatchGatherer({ x, y }, exampleSize(model)),
      shardOf,
      streams: new Map(),
      scratch: new Float32Array(model.params),
    };
  }

  /** Runs `fn` after every task queued before it (one forward engine, one task at a time). */
  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Computes one task exactly as the in-process simulation does (same minibatches, same arithmetic). */
  async compute(prep: Prepared, clientId: number, task: TaskMsg, weights: Float32Array): Promise<ClientMessage> {
    this.tasks++;
    let stream = prep.streams.get(clientId);
    if (!stream) {
      const shard = prep.shardOf(clientId);
      stream = new CursorStream(() => clientStream(prep.config, shard, clientId));
      prep.streams.set(clientId, stream);
    }
    const { session, scratch } = prep;
    const base = { type: 'result' as const, task: task.task, round: task.round };
    if (task.kind === 'estimate') {
      const indices = stream.batch(task.cursor, task.batchSize);
      session.setBatch(prep.train.gather(indices));
      const est = await estimate(session, weights, scratch, { seed: task.seed, K: task.K, sigma: task.sigma, scheme: task.scheme });
      return { ...base, examples: indices.length, loss: est.loss, scalars: est.scalars, delta: null };
    }
    const batches = Array.from({ length: task.batches }, (_, j) => stream.batch(task.cursor + j, task.batchSize));
    const plan = { batches, seeds: task.seeds, K: task.K, sigma: task.sigma, scheme: task.scheme, lr: task.lr, optimizer: task.optimizer, clip: task.clip };
    const out = await localTrain(session, weights, plan, (indices) => prep.train.gather(indices));
    const examples = batches.reduce((s, b) => s + b.length, 0);
    return { ...base, examples, loss: out.meanLoss, scalars: null, delta: out.delta };
  }
}

/** Model versions received, shared by the clients of the process (FedSGD sends the same model to all). */
class ModelCache {
  private readonly map = new Map<string, Float32Array>();
  put(runId: string, version: number, weights: Float32Array): Float32Array {
    const key = `${runId}:${version}`;
    const have = this.map.get(key);
    if (have) return have;
    this.map.set(key, weights);
    while (this.map.size > 3) this.map.delete(this.map.keys().next().value as string);
    return weights;
  }
}

// ---------------------------------------------------------------------------------------------------
// One federated client: a connection loop with backoff.

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class VirtualClient {
  private model: { runId: string; version: number; weights: Float32Array } | null = null;
  private stopped = false;
  private current: WebSocket | null = null;
  /** Why run() returned 'refused' or 'gave-up'. */
  why: string | null = null;

  constructor(
    private readonly id: number,
    private readonly token: string,
    private readonly engine: Engine,
    private readonly models: ModelCache,
    private readonly opts: JoinOptions,
    private readonly say: (line: string) => void,
  ) {}

  stop(): void {
    this.stopped = true;
    this.current?.terminate();
  }

  async run(): Promise<ClientOutcome> {
    const giveUpMs = this.opts.giveUpMs ?? 0;
    let delay = 250;
    let lastGood = Date.now();
    for (;;) {
      const s = await this.session();
      if (s.done) return 'done';
      if (this.stopped) return 'stopped';
      if (s.fatal) {
        this.opts.log(`client ${this.id}: ${s.fatal}; not reconnecting`);
        this.why = s.fatal;
        return 'refused';
      }
      if (s.authenticated) {
        delay = 250;
        lastGood = Date.now();
      }
      if (giveUpMs > 0 && Date.now() - lastGood > giveUpMs) {
        this.opts.log(`client ${this.id}: no connection for ${Math.round(giveUpMs / 1000)}s, giving up`);
        this.why = s.reason;
        return 'gave-up';
      }
      const wait = Math.round(delay * (0.5 + Math.random()));
      this.say(`client ${this.id}: ${s.reason}; reconnecting in ${(wait / 1000).toFixed(1)}s`);
      await sleep(wait);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** One connection, from dial to close. */
  private session(): Promise<{ authenticated: boolean; done: boolean; fatal: string | null; reason: string }> {
    return new Promise((resolve) => {
      let authenticated = false;
      let done = false;
      let fatal: string | null = null;
      let reason = 'connection closed';
      let heartbeatMs = 5000;
      let lastFrame = Date.now();
      let prep: Promise<Prepared> | null = null;
      const cancelled = new Set<number>();
      const ws = new WebSocket(this.opts.url, SUBPROTOCOL, {
        ca: this.opts.ca,
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
        maxPayload: 1 << 30,
      });
      this.current = ws;
      const watchdog = setInterval(() => {
        if (Date.now() - lastFrame > 3 * heartbeatMs) {
          reason = `server silent for ${Math.round((Date.now() - lastFrame) / 1000)}s`;
          ws.terminate();
        }
      }, 1000);
      const send = (m: ClientMessage) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(encode(m));
      };
      ws.on('error', (e) => {
        reason = e.message || 'connection error';
      });
      ws.on('close', (code, why) => {
        clearInterval(watchdog);
        this.current = null;
        if (code === CloseCode.done) done = true;
        if (code === CloseCode.auth || code === CloseCode.replaced || code === CloseCode.incompatible) {
          fatal = fatal ?? `server closed the connection (${code} ${why.toString() || ''})`.trim();
        }
        if (code !== 1006 && why.length > 0) reason = `server closed the connection: ${why.toString()}`;
        resolve({ authenticated, done, fatal, reason });
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        lastFrame = Date.now();
        let msg: ServerMessage;
        try {
          msg = decodeServerFrame(data, isBinary);
        } catch (e) {
          reason = e instanceof ProtocolError ? `bad frame from the server: ${e.message}` : String(e);
          ws.terminate();
          return;
        }
        switch (msg.type) {
          case 'challenge': {
            if (msg.protocol !== PROTOCOL_VERSION) {
              fatal = `server speaks protocol ${msg.protocol}, this client ${PROTOCOL_VERSION}`;
              ws.close();
              return;
            }
            const held = this.model;
            void helloProof(this.token, msg.nonce, this.id).then((proof) =>
              send({
                type: 'hello',
                protocol: PROTOCOL_VERSION,
                clientId: this.id,
                proof,
                runId: held?.runId ?? null,
                version: held?.version ?? null,
                agent: 'baffle-join/0.1 (node)',
              }),
            );
            return;
          }
          case 'welcome':
            if (msg.clientId !== this.id) {
              fatal = `server welcomed client ${msg.clientId}, expected ${this.id}`;
              ws.close();
              return;
            }
            authenticated = true;
            heartbeatMs = Math.max(100, msg.heartbeatMs);
            if (this.model && this.model.runId !== msg.runId) this.model = null;
            this.say(`client ${this.id}: connected (run ${msg.runId})`);
            prep = this.engine.prepare(msg);
            prep.catch((e) => {
              fatal = `cannot prepare the local data and model: ${(e as Error).message}`;
              send({ type: 'error', code: 'client-setup', message: (fatal as string).slice(0, 900), task: null });
              ws.close();
            });
            return;
          case 'model':
            this.model = { runId: msg.runId, version: msg.version, weights: this.models.put(msg.runId, msg.version, msg.weights) };
            return;
          case 'task': {
            const task = msg;
            const received = Date.now();
            const model = this.model;
            const ready = prep;
            if (!ready || !model || model.version !== task.version) {
              send({ type: 'error', code: 'missing-model', message: `no model version ${task.version}`, task: task.task });
              return;
            }
            void this.engine
              .enqueue(async () => {
                if (ws.readyState !== WebSocket.OPEN || cancelled.has(task.task)) return;
                if (Date.now() - received > task.deadlineMs) return;
                const p = await ready;
                if (model.weights.length !== p.model.params) throw new Error(`model of ${model.weights.length} values, expected ${p.model.params}`);
                const result = await this.engine.compute(p, this.id, task, model.weights);
                if (!cancelled.has(task.task)) send(result);
              })
              .catch((e) => {
                send({ type: 'error', code: 'task-failed', message: String((e as Error).message).slice(0, 900), task: task.task });
              });
            return;
          }
          case 'cancel':
            cancelled.add(msg.task);
            return;
          case 'ping':
            send({ type: 'pong', time: msg.time });
            return;
          case 'error':
            if (msg.fatal) fatal = `server error ${msg.code}: ${msg.message}`;
            else this.say(`client ${this.id}: server refused a frame (${msg.code}: ${msg.message})`);
            return;
          case 'done':
            done = true;
            return;
        }
      });
    });
  }
}

/** Runs the given clients until the server says training is done (or they are refused or give up). */
export async function join(opts: JoinOptions): Promise<JoinResult> {
  const engine = new Engine(opts);
  const models = new ModelCache();
  const verbose = opts.verbose ?? opts.clients.length <= 8;
  const say = verbose ? opts.log : () => {};
  const clients = opts.clients.map((c) => new VirtualClient(c.id, c.token, engine, models, opts, say));
  const stop = () => clients.forEach((c) => c.stop());
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    const outcomes = await Promise.all(clients.map((c) => c.run()));
    const reasons = new Map<number, string>();
    clients.forEach((c, i) => c.why !== null && reasons.set(opts.clients[i]!.id, c.why));
    return { outcomes: new Map(opts.clients.map((c, i) => [c.id, outcomes[i]])), reasons, tasks: engine.tasks };
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}
