// A federated client of the protocol, written once for every platform (`baffle join` in Node, a browser tab):
// the connection loop with backoff, the authentication, the model versions, and the tasks handed to one
// training engine that runs them one at a time. The platform brings a socket (Node's `ws`, the browser's
// WebSocket) and the engine's two platform parts: a forward session and the client's data.
import { resolveConfig, type RunConfig } from '../config/index.ts';
import { BatchGatherer } from '../data/batch.ts';
import type { ForwardSession } from '../engine/types.ts';
import { CursorStream } from '../fl/clientData.ts';
import { localTrain } from '../fl/localTrain.ts';
import { clientStream } from '../fl/setup.ts';
import { exampleSize, type ClientModel } from '../model/artifact.ts';
import { estimate } from '../zo/task.ts';
import { SecAggClient } from '../secagg/client.ts';
import type { SecAggCrypto } from '../secagg/crypto.ts';
import { secAggVector } from '../secagg/quantize.ts';
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
} from './protocol.ts';

// ---------------------------------------------------------------------------------------------------
// What a platform provides

/** An open (or opening) WebSocket connection. */
export interface ClientSocket {
  send(frame: Uint8Array): void;
  readonly isOpen: boolean;
  close(): void;
  /** Drops the connection at once (no closing handshake). */
  terminate(): void;
}

export interface SocketEvents {
  message(data: Uint8Array, isBinary: boolean): void;
  /** `reason` is the server's close reason ('' when none); code 1006 = the connection broke. */
  close(code: number, reason: string): void;
  error(message: string): void;
}

/** Opens a connection to `url` offering `subprotocol`. */
export type SocketOpener = (url: string, subprotocol: string, events: SocketEvents) => ClientSocket;

/** A client's training data: examples (prepared as the model takes them), labels, and a client's shard. */
export interface ClientData {
  x: Float32Array;
  y: Uint8Array;
  shardOf(clientId: number): Int32Array;
}

/** The platform parts of the engine, built once per run from the server's welcome. */
export interface EnginePlatform {
  createSession(model: ClientModel): Promise<ForwardSession>;
  /** The data this process trains on, for the run's configuration and model (may refuse: a clear Error). */
  loadData(config: RunConfig, model: ClientModel): ClientData | Promise<ClientData>;
}

// ---------------------------------------------------------------------------------------------------
// The engine: data, model, one forward session, and a queue that runs one task at a time.

interface Prepared {
  runId: string;
  config: RunConfig;
  model: ClientModel;
  session: ForwardSession;
  train: BatchGatherer;
  shardOf(clientId: number): Int32Array;
  streams: Map<number, CursorStream>;
  scratch: Float32Array;
}

/** Counters a page or a log shows. */
export interface EngineStats {
  tasks: number;
  forwardPasses: number;
  /** Milliseconds spent computing tasks. */
  busyMs: number;
  lastLoss: number | null;
}

export class ClientEngine {
  private prepared: { runId: string; ready: Promise<Prepared> } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  readonly stats: EngineStats = { tasks: 0, forwardPasses: 0, busyMs: 0, lastLoss: null };

  constructor(private readonly platform: EnginePlatform) {}

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
    const data = await this.platform.loadData(config, model);
    const session = await this.platform.createSession(model);
    return {
      runId: welcome.runId,
      config,
      model,
      session,
      train: new BatchGatherer(data, exampleSize(model)),
      shardOf: data.shardOf,
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
    const t0 = Date.now();
    this.stats.tasks++;
    let stream = prep.streams.get(clientId);
    if (!stream) {
      const shard = prep.shardOf(clientId);
      stream = new CursorStream(() => clientStream(prep.config, shard, clientId));
      prep.streams.set(clientId, stream);
    }
    const { session, scratch } = prep;
    const base = { type: 'result' as const, task: task.task, round: task.round };
    let result: ClientMessage & { type: 'result' };
    if (task.kind === 'estimate') {
      const indices = stream.batch(task.cursor, task.batchSize);
      session.setBatch(prep.train.gather(indices));
      const est = await estimate(session, weights, scratch, { seed: task.seed, K: task.K, sigma: task.sigma, scheme: task.scheme });
      this.stats.forwardPasses += est.forwardPasses;
      result = { ...base, examples: indices.length, loss: est.loss, scalars: est.scalars, delta: null };
    } else {
      const batches = Array.from({ length: task.batches }, (_, j) => stream.batch(task.cursor + j, task.batchSize));
      const plan = { batches, seeds: task.seeds, K: task.K, sigma: task.sigma, scheme: task.scheme, lr: task.lr, optimizer: task.optimizer, clip: task.clip };
      const out = await localTrain(session, weights, plan, (indices) => prep.train.gather(indices));
      this.stats.forwardPasses += out.forwardPasses;
      result = { ...base, examples: batches.reduce((s, b) => s + b.length, 0), loss: out.meanLoss, scalars: null, delta: out.delta };
    }
    this.stats.busyMs += Date.now() - t0;
    this.stats.lastLoss = result.loss;
    return result;
  }
}

/** Model versions received, shared by the clients of the process (FedSGD sends the same model to all). */
export class ModelCache {
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

export type ClientOutcome = 'done' | 'refused' | 'gave-up' | 'stopped';

/** What a client tells its host while it runs (a log line, a page's status). */
export type ClientEvent =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; runId: string }
  | { kind: 'disconnected'; reason: string; retryInMs: number }
  | { kind: 'result'; round: number; loss: number }
  | { kind: 'refused-frame'; message: string }
  | { kind: 'secagg'; round: number; message: string }
  | { kind: 'finished'; outcome: ClientOutcome; reason: string | null };

export interface ClientOptions {
  url: string;
  /** Shown to the server in `hello` (software and platform). */
  agent: string;
  open: SocketOpener;
  /** Stop reconnecting after this many ms without a successful connection; 0 = never. */
  giveUpMs?: number;
  onEvent?(event: ClientEvent): void;
  /** Bytes of every frame received and sent (for a page's counters). */
  onBytes?(received: number, sent: number): void;
  /**
   * Secure aggregation's primitives on this platform (node:crypto in `baffle join`, WebCrypto in a browser).
   * Without them the client refuses a server that aggregates securely (a browser whose WebCrypto lacks X25519).
   */
  secAggCrypto?: SecAggCrypto;
  /** Debugging: the plain vector a secure round adds into the sum (never sent). */
  onSecAggInput?(round: number, vector: Float64Array): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FederatedClient {
  private model: { runId: string; version: number; weights: Float32Array } | null = null;
  private stopped = false;
  private current: ClientSocket | null = null;
  private wake: (() => void) | null = null;
  /** The open secure-aggregation round (it survives a reconnect: its keys and secrets are the client's). */
  private secagg: SecAggClient | null = null;
  /** Why run() returned 'refused' or 'gave-up'. */
  why: string | null = null;

  constructor(
    readonly id: number,
    private readonly token: string,
    private readonly engine: ClientEngine,
    private readonly models: ModelCache,
    private readonly opts: ClientOptions,
  ) {}

  stop(): void {
    this.stopped = true;
    this.current?.terminate();
    this.wake?.();
  }

  private emit(e: ClientEvent): void {
    this.opts.onEvent?.(e);
  }

  async run(): Promise<ClientOutcome> {
    const giveUpMs = this.opts.giveUpMs ?? 0;
    let delay = 250;
    let lastGood = Date.now();
    const finish = (outcome: ClientOutcome, why: string | null) => {
      this.why = why;
      this.emit({ kind: 'finished', outcome, reason: why });
      return outcome;
    };
    for (let attempt = 1; ; attempt++) {
      this.emit({ kind: 'connecting', attempt });
      const s = await this.session();
      if (s.done) return finish('done', null);
      if (this.stopped) return finish('stopped', null);
      if (s.fatal) return finish('refused', s.fatal);
      if (s.authenticated) {
        delay = 250;
        lastGood = Date.now();
      }
      if (giveUpMs > 0 && Date.now() - lastGood > giveUpMs) return finish('gave-up', s.reason);
      const wait = Math.round(delay * (0.5 + Math.random()));
      this.emit({ kind: 'disconnected', reason: s.reason, retryInMs: wait });
      await Promise.race([sleep(wait), new Promise<void>((r) => (this.wake = r))]);
      this.wake = null;
      if (this.stopped) return finish('stopped', null);
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
      const send = (m: ClientMessage) => {
        if (!ws.isOpen) return;
        const frame = encode(m);
        this.opts.onBytes?.(0, frame.byteLength);
        ws.send(frame);
      };
      const watchdog = setInterval(() => {
        if (Date.now() - lastFrame > 3 * heartbeatMs) {
          reason = `server silent for ${Math.round((Date.now() - lastFrame) / 1000)}s`;
          ws.terminate();
        }
      }, 1000);
      const ws: ClientSocket = this.opts.open(this.opts.url, SUBPROTOCOL, {
        error: (message) => {
          reason = message || 'connection error';
        },
        close: (code, why) => {
          clearInterval(watchdog);
          this.current = null;
          if (code === CloseCode.done) done = true;
          if (code === CloseCode.auth || code === CloseCode.replaced || code === CloseCode.incompatible) {
            fatal = fatal ?? `server closed the connection (${code} ${why})`.trim();
          }
          if (code !== 1006 && why.length > 0) reason = `server closed the connection: ${why}`;
          resolve({ authenticated, done, fatal, reason });
        },
        message: (data, isBinary) => {
          lastFrame = Date.now();
          this.opts.onBytes?.(data.byteLength, 0);
          let msg: ServerMessage;
          try {
            msg = decodeServerFrame(data, isBinary);
          } catch (e) {
            reason = e instanceof ProtocolError ? `bad frame from the server: ${e.message}` : String(e);
            ws.terminate();
            return;
          }
          handle(msg);
        },
      });
      this.current = ws;
      const handle = (msg: ServerMessage) => {
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
                agent: this.opts.agent,
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
            if (msg.config.secureAggregation === true && !this.opts.secAggCrypto) {
              fatal = 'the server aggregates securely (secureAggregation = true), which this client does not support: its platform lacks X25519 key agreement (WebCrypto X25519, in recent browsers)';
              send({ type: 'error', code: 'client-setup', message: fatal, task: null });
              ws.close();
              return;
            }
            authenticated = true;
            heartbeatMs = Math.max(100, msg.heartbeatMs);
            if (this.model && this.model.runId !== msg.runId) this.model = null;
            this.emit({ kind: 'connected', runId: msg.runId });
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
                if (!ws.isOpen || cancelled.has(task.task)) return;
                if (Date.now() - received > task.deadlineMs) return;
                const p = await ready;
                if (model.weights.length !== p.model.params) throw new Error(`model of ${model.weights.length} values, expected ${p.model.params}`);
                const result = await this.engine.compute(p, this.id, task, model.weights);
                if (cancelled.has(task.task)) return;
                if (result.type === 'result' && task.kind === 'estimate' && task.secagg && result.scalars) {
                  // Secure aggregation: the scalars stay here; the answer is two fresh public keys.
                  const crypto = this.opts.secAggCrypto;
                  if (!crypto) throw new Error('secure aggregation is not supported by this client');
                  if (task.secagg.dim !== task.K + 2) throw new Error(`task.secagg.dim ${task.secagg.dim} is not K + 2 = ${task.K + 2}`);
                  const vector = secAggVector(result.scalars, result.examples, task.batchSize, result.loss, task.secagg, (n) => crypto.random(n));
                  this.opts.onSecAggInput?.(task.round, vector);
                  const sa = await SecAggClient.create(this.id, task.round, task.secagg, vector, crypto);
                  this.secagg = sa;
                  send({ type: 'sa-advertise', task: task.task, round: task.round, ...sa.publicKeys });
                } else send(result);
                if (result.type === 'result') this.emit({ kind: 'result', round: result.round, loss: result.loss });
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
            else this.emit({ kind: 'refused-frame', message: `${msg.code}: ${msg.message}` });
            return;
          case 'done':
            done = true;
            return;
          case 'sa-roster':
          case 'sa-inbox':
          case 'sa-unmask': {
            const sa = this.secagg;
            if (!sa || sa.round !== msg.round) {
              this.emit({ kind: 'secagg', round: msg.round, message: `${msg.type} for a round this client holds no secure-aggregation state for (ignored)` });
              return;
            }
            const step = msg.type === 'sa-roster' ? sa.onRoster(msg) : msg.type === 'sa-inbox' ? sa.onInbox(msg) : Promise.resolve().then(() => sa.onUnmask(msg));
            void step
              .then((reply) => {
                for (const peer of sa.undecryptable.splice(0)) {
                  this.emit({ kind: 'secagg', round: msg.round, message: `the shares from client ${peer} did not decrypt: they are left out` });
                }
                send(reply);
                if (reply.type === 'sa-reveal' && this.secagg === sa) this.secagg = null;
              })
              .catch((e: Error) => {
                // A server frame the client will not answer: say why, and forget the round (it gives nothing more).
                if (this.secagg === sa) this.secagg = null;
                this.emit({ kind: 'secagg', round: msg.round, message: `refused ${msg.type}: ${e.message}` });
                send({ type: 'error', code: 'secagg-refused', message: `${msg.type}: ${e.message}`.slice(0, 900), task: null });
              });
            return;
          }
        }
      };
    });
  }
}
