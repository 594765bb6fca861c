// The networked server's transport: clients are separate processes that connect over WebSocket.
// It authenticates clients, hands each round's participants their tasks, collects and checks the results
// until the round can commit, and drops (with a logged reason) whatever does not follow the protocol.
//
// Rounds. A round (one server step) is run in attempts. An attempt sends a task to every connected
// participant without a valid result; a participant that connects while the attempt runs gets its task
// then. The attempt ends when no task is outstanding or its deadline (roundTimeout) passes; outstanding
// tasks are then cancelled and their late results dropped. The round commits once it holds valid results
// from a quorum of its participants (ceil(quorum × participants), at least 1); otherwise the next attempt
// starts as soon as enough participants are connected to reach the quorum. A participant whose result is
// refused (bad input, protocol violation) is out for the whole round. A round that can no longer reach the
// quorum (too many refused) is abandoned: the step passes with no update. Valid results of one attempt are
// kept for the next: they are computed on the same model version, seeds and minibatches.
//
// Secure aggregation (`secureAggregation`). A FedSGD round's tasks are then answered with public keys instead of
// scalars; once the attempts have gathered at least the threshold's keys, the secure phases run (the core state
// machine, src/core/secagg/round.ts, driven by ./secagg.ts) and only the survivors' sum comes back. Secure phases
// that fail (fewer than the threshold left) abandon the round, logged.
//
// Minibatch cursors. The server counts the minibatches each client has been assigned (`cursors`) and sends
// the position with each task, so every client's data stream is a pure function of the server's state: a
// round that is retried, or replayed after a server restart, uses the same minibatches, and a client that
// missed rounds still advances as if it had taken part. Without drops this reproduces `baffle run` exactly.
//
// Watching. GET /status answers one JSON document; GET /events streams the live dashboard's data as
// server-sent events (docs/protocol.md §7). Both are read-only and, when the server has a dashboard token
// (always beyond loopback), answer only requests that carry it (`Authorization: Bearer TOKEN`).
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Listener } from './listener.ts';
import { WebSocketServer, type WebSocket } from 'ws';
import { participantsOf, type RunConfig, type ServerConfig } from '../../core/config/index.ts';
import { secAggSpec, type SecAggDpOptions } from '../../core/secagg/spec.ts';
import { SecAggSession } from './secagg.ts';
import { dequantize as dequantizeWords } from '../../core/secagg/quantize.ts';
import type { DashboardClient, DashboardStatus, RoundRecord, ServerState } from '../../core/protocol/status.ts';
import type { ClientModel } from '../../core/model/artifact.ts';
import type {
  ClientTransport,
  EstimateReply,
  EstimateRequest,
  LocalTrainReply,
  LocalTrainRequest,
  SecureSumReply,
} from '../../core/fl/transport.ts';
import { forwardPassesPerEstimate } from '../../core/zo/scheme.ts';
import {
  CloseCode,
  decodeClientFrame,
  encode,
  HELLO_MAX_BYTES,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  proofMatches,
  SUBPROTOCOL,
  type ClientMessage,
  type ResultMsg,
  type SaAdvertiseMsg,
  type ServerMessage,
  type TaskMsg,
} from '../../core/protocol/protocol.ts';

const HELLO_TIMEOUT_MS = 10_000;
/** Unauthenticated connections held at once: at least this many, or the federation's size if larger. */
const MAX_PENDING_CONNECTIONS = 256;
const CLOSED_TASKS_KEPT = 100_000;
const MAX_REFUSALS_PER_CONNECTION = 20;

export interface NetServerOptions {
  config: RunConfig;
  server: ServerConfig;
  tokens: Map<number, string>;
  /** The bound socket (listener.ts): the port is taken before the model and data are ready. */
  listener: Listener;
  runId: string;
  model: ClientModel;
  log(line: string): void;
  /** Client minibatch cursors to continue from (resume). */
  cursors?: number[];
  /** Pages served beside the WebSocket endpoint (the browser client): true when it answered the request. */
  pages?: { handle(req: IncomingMessage, res: ServerResponse): boolean };
  /**
   * Token that /status and /events require (`Authorization: Bearer TOKEN`); null: open to every request
   * (the server listens on loopback only; /events then still checks that the Host header is a loopback name).
   */
  dashboardToken?: string | null;
  /** A differentially private run's noise multiplier (setup.ts privacyOf), for secure rounds with distributed noise. */
  noiseMultiplier?: number;
}

export interface StatusInfo {
  state: ServerState;
  step: number;
  totalSteps: number;
  lastMetrics: unknown;
  /** Every metrics record of the run so far (the dashboard's curves); the session appends to it. */
  metrics: unknown[];
}

function clientKind(agent: string): DashboardClient['kind'] {
  if (/^baffle-web\//.test(agent) || /Mozilla\/|Chrome\/|Safari\/|Firefox\//.test(agent)) return 'browser';
  if (/^baffle-join\//.test(agent) || /\(node\)/.test(agent)) return 'node';
  return 'other';
}

const isLoopbackHost = (hostHeader: string | undefined): boolean => {
  const h = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '');
  return h === 'localhost' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
};

/** Every dashboard connection gets the data it has not had yet: metrics and rounds by index, status when it changed. */
interface Subscriber {
  res: ServerResponse;
  metrics: number;
  rounds: number;
  signature: string;
  sentAt: number;
}
const MAX_SUBSCRIBERS = 32;
/** Rounds a new dashboard connection receives (the most recent). */
const ROUNDS_ON_CONNECT = 2000;
/** Dashboard rows at most (the lowest client ids first). */
const MAX_DASHBOARD_CLIENTS = 1000;
const DASHBOARD_TICK_MS = 250;
/** A status event at least this often, so that ages and the ETA stay current. */
const DASHBOARD_STATUS_MS = 1000;
/** Commit times kept for the ETA (a moving window). */
const COMMITS_KEPT = 21;

class Conn {
  clientId: number | null = null;
  /** Model version the client holds (of this run), as far as the server knows. */
  version: number | null = null;
  lastSeen = Date.now();
  helloTimer: NodeJS.Timeout | null = null;
  closed = false;
  /** Frames of this connection refused so far. */
  refused = 0;
  /** A hello is being checked (the HMAC is computed asynchronously). */
  authenticating = false;
  constructor(
    readonly ws: WebSocket,
    readonly remote: string,
    readonly nonce: Buffer,
  ) {}
  get name(): string {
    return this.clientId === null ? `unauthenticated connection from ${this.remote}` : `client ${this.clientId}`;
  }
}

type Kind = 'estimate' | 'local-train';
type Status = 'idle' | 'tasked' | 'answered' | 'refused';

interface Participant {
  clientId: number;
  request: EstimateRequest | LocalTrainRequest;
  status: Status;
  task: number | null;
  result: ResultMsg | null;
  /** Secure rounds: the public keys the participant answered its task with (instead of a result). */
  keys: { cPk: Uint8Array; sPk: Uint8Array } | null;
}

interface OpenRound {
  step: number;
  version: number;
  kind: Kind;
  batches: number;
  weights: Float32Array;
  participants: Map<number, Participant>;
  attempt: number;
  attemptRunning: boolean;
  deadline: number;
  dropped: { client: number; reason: string }[];
  /** Secure aggregation: tasks are answered with keys, and the sum is computed in the phases after. */
  secure: boolean;
}

interface Outstanding {
  conn: Conn;
  clientId: number;
  step: number;
}

export type { DashboardClient, DashboardStatus, RoundRecord } from '../../core/protocol/status.ts';

export class NetServer implements ClientTransport {
  readonly batchSize: number;
  /** Minibatches assigned to each client so far (its stream position). */
  readonly cursors: number[];
  readonly rounds: RoundRecord[] = [];
  readonly info: StatusInfo = { state: 'waiting', step: 0, totalSteps: 0, lastMetrics: null, metrics: [] };
  bytesIn = 0;
  bytesOut = 0;
  /** Frames and connections refused, by reason code (for the status endpoint and tests). */
  readonly refusals: Record<string, number> = {};

  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  private readonly byClient = new Map<number, Conn>();
  private readonly tasks = new Map<number, Outstanding>();
  private readonly closedTasks = new Map<number, { clientId: number; step: number }>();
  private readonly waiters = new Set<() => void>();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly maxFrameBytes: number;
  private readonly started = Date.now();
  private nextTask = randomInt(1, 2 ** 30);
  private round: OpenRound | null = null;
  /** The secure-aggregation phases of the open round, while they run. */
  private secagg: SecAggSession | null = null;
  private modelFrame: { version: number; frame: Uint8Array } | null = null;
  private finished = false;
  /** What the dashboard knows of each client that authenticated since the server started. */
  private readonly seen = new Map<number, { agent: string; lastSeen: number; connections: number }>();
  /** Counted and dropped results per client, over `rounds[0, tallied)`. */
  private readonly tally = new Map<number, { counted: number; dropped: number }>();
  private tallied = 0;
  private readonly commits: number[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private dashTimer: NodeJS.Timeout | null = null;
  private readonly dashboardToken: Buffer | null;

  private get params(): number {
    return this.opts.model.params;
  }

  private constructor(private readonly opts: NetServerOptions) {
    const { config, server } = opts;
    this.batchSize = config.batchSize;
    this.cursors = opts.cursors ? opts.cursors.slice() : new Array(config.clients).fill(0);
    // Largest legitimate client frame: a result with K scalars (FedSGD) or a model delta (FedAvg), plus room.
    // Secure aggregation adds the shares frame: one 124-byte ciphertext (plus msgpack framing) per peer.
    this.maxFrameBytes =
      server.maxFrameBytes ??
      16_384 + 4 * (config.fedopt === 'fedavg' ? opts.model.params : config.K) + (config.secureAggregation ? 200 * participantsOf(config) : 0);
    opts.listener.serve((req, res) => this.onHttp(req, res));
    this.wss = new WebSocketServer({ server: opts.listener.http, maxPayload: this.maxFrameBytes, perMessageDeflate: false });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(50, server.heartbeat * 1000));
    this.heartbeatTimer.unref();
    this.dashboardToken = opts.dashboardToken ? digest(opts.dashboardToken) : null;
  }

  /** Serves the federation on the opts' listener. */
  static start(opts: NetServerOptions): NetServer {
    return new NetServer(opts);
  }

  get address(): { host: string; port: number; url: string; statusUrl: string } {
    const l = this.opts.listener;
    return { host: l.host, port: l.port, url: l.url, statusUrl: l.statusUrl };
  }

  /** Authenticated clients connected now. */
  get connectedClients(): number {
    return this.byClient.size;
  }

  /** Resolves once `n` authenticated clients are connected. */
  async waitForClients(n: number): Promise<void> {
    let lastLog = 0;
    while (!(await this.until(() => this.byClient.size >= n, 5000))) {
      if (Date.now() - lastLog > 30_000) {
        this.opts.log(`waiting for clients: ${this.byClient.size} of ${n} connected`);
        lastLog = Date.now();
      }
    }
  }

  // -------------------------------------------------------------------------------------------------
  // ClientTransport

  async estimate(requests: EstimateRequest[], weights: Float32Array, version: number): Promise<EstimateReply[]> {
    const { results } = await this.runRound('estimate', requests, weights, version, 1);
    return results.map(({ p, r }) => ({
      clientId: p.clientId,
      scalars: r.scalars as Float32Array,
      examples: r.examples,
      loss: r.loss,
      forwardPasses: forwardPassesPerEstimate(p.request.K, p.request.scheme),
    }));
  }

  /**
   * A FedSGD round under secure aggregation: the tasks are answered with public keys, then the secure phases run
   * (src/core/secagg/round.ts) and only the sum of the survivors' vectors comes back. A round whose secure
   * phases fail (fewer than the threshold left) is abandoned like a round that misses its quorum.
   */
  async secureEstimate(requests: EstimateRequest[], weights: Float32Array, version: number): Promise<SecureSumReply> {
    const { secure } = await this.runRound('estimate', requests, weights, version, 1, true);
    return secure ?? { survivors: [], sum: new Float64Array(this.opts.config.K + 2) };
  }

  async localTrain(requests: LocalTrainRequest[], weights: Float32Array, version: number): Promise<LocalTrainReply[]> {
    const steps = requests[0]?.seeds.length ?? 1;
    const { results } = await this.runRound('local-train', requests, weights, version, steps);
    return results.map(({ p, r }) => ({
      clientId: p.clientId,
      delta: r.delta as Float32Array,
      examples: r.examples,
      loss: r.loss,
      forwardPasses: steps * forwardPassesPerEstimate(p.request.K, p.request.scheme),
    }));
  }

  /**
   * Closes every connection and the listener. `goingAway`: the server is stopping (SIGTERM, SIGINT) and will be
   * back, so each client is told 4004 and reconnects later (protocol.md §2); sockets that do not finish the
   * closing handshake within a second are dropped.
   */
  async close(goingAway = false): Promise<void> {
    clearInterval(this.heartbeatTimer);
    this.endSubscribers();
    if (goingAway && this.conns.size > 0) {
      const closed = [...this.conns].map((c) => new Promise<void>((resolve) => {
        c.ws.once('close', () => resolve());
        c.ws.close(CloseCode.goingAway, 'server stopping');
      }));
      await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    for (const c of this.conns) c.ws.terminate();
    this.wss.close();
    await this.opts.listener.close();
  }

  /** Tells every client that training is over and closes the connections. */
  finish(step: number): void {
    this.finished = true;
    this.info.state = 'done';
    for (const c of this.conns) {
      if (c.clientId !== null) this.send(c, { type: 'done', round: step });
      c.ws.close(CloseCode.done, 'training finished');
    }
    // The dashboards get the final state, then their streams end (a page stops reconnecting once it saw 'done').
    this.dashboardTick(true);
    this.endSubscribers();
  }

  status(): Record<string, unknown> {
    const r = this.round;
    return {
      state: this.info.state,
      runId: this.opts.runId,
      step: this.info.step,
      totalSteps: this.info.totalSteps,
      clients: { connected: this.byClient.size, federation: this.opts.config.clients, connections: this.conns.size },
      round: r
        ? {
            step: r.step,
            attempt: r.attempt,
            participants: r.participants.size,
            answered: [...r.participants.values()].filter((p) => p.status === 'answered').length,
          }
        : null,
      lastMetrics: this.info.lastMetrics,
      lastRound: this.rounds.at(-1) ?? null,
      bytes: { in: this.bytesIn, out: this.bytesOut },
      refusals: this.refusals,
      process: {
        cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
        rssBytes: process.memoryUsage.rss(),
        heapUsedBytes: process.memoryUsage().heapUsed,
      },
      uptimeS: Math.round((Date.now() - this.started) / 1000),
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Rounds

  private quorumOf(participants: number): number {
    return Math.max(1, Math.ceil(this.opts.server.quorum * participants - 1e-9));
  }

  private async runRound(
    kind: Kind,
    requests: (EstimateRequest | LocalTrainRequest)[],
    weights: Float32Array,
    version: number,
    batches: number,
    secure = false,
  ): Promise<{ results: { p: Participant; r: ResultMsg }[]; secure: SecureSumReply | null }> {
    const t0 = Date.now();
    const in0 = this.bytesIn;
    const out0 = this.bytesOut;
    const step = requests[0]?.step ?? 0;
    const round: OpenRound = {
      step,
      version,
      kind,
      batches,
      weights,
      participants: new Map(requests.map((r) => [r.clientId, { clientId: r.clientId, request: r, status: 'idle', task: null, result: null, keys: null }])),
      attempt: 0,
      attemptRunning: false,
      deadline: 0,
      dropped: [],
      secure,
    };
    this.round = round;
    const all = [...round.participants.values()];
    // A secure round needs the threshold's clients to the end, whatever the quorum.
    const threshold = secure ? secAggSpec(this.opts.config, step, 0, all.length, this.secAggDp()).threshold : 0;
    const quorum = Math.max(this.quorumOf(all.length), threshold);
    const count = (s: Status) => all.filter((p) => p.status === s).length;
    const connectedIdle = () => all.filter((p) => p.status === 'idle' && this.byClient.has(p.clientId)).length;
    let abandoned = false;
    const timeoutMs = this.opts.server.roundTimeout * 1000;

    for (;;) {
      if (round.attempt > 0) {
        if (count('answered') >= quorum) break;
        if (count('answered') + count('idle') < quorum) {
          abandoned = true;
          this.opts.log(
            `round ${step + 1}: abandoned: ${count('answered')} valid results, quorum ${quorum}, ` +
              `${count('refused')} participants refused; the step passes without an update`,
          );
          break;
        }
        // Wait until enough participants are connected to reach the quorum.
        let waited = 0;
        while (!(await this.until(() => count('answered') + connectedIdle() >= quorum, timeoutMs))) {
          waited++;
          const missing = all.filter((p) => p.status === 'idle' && !this.byClient.has(p.clientId)).map((p) => p.clientId);
          this.opts.log(
            `round ${step + 1}: waiting for participants to reconnect (${count('answered')} of quorum ${quorum} results; ` +
              `disconnected: ${fmtIds(missing)}; ${waited * this.opts.server.roundTimeout}s)`,
          );
        }
      }
      round.attempt++;
      round.attemptRunning = true;
      round.deadline = Date.now() + timeoutMs;
      for (const p of all) {
        const conn = this.byClient.get(p.clientId);
        if (p.status === 'idle' && conn) this.sendTask(conn, round, p);
      }
      const settled = await this.until(() => count('tasked') === 0, timeoutMs);
      round.attemptRunning = false;
      if (!settled) {
        for (const p of all) {
          if (p.status !== 'tasked') continue;
          const o = p.task === null ? undefined : this.tasks.get(p.task);
          if (o && p.task !== null) {
            this.send(o.conn, { type: 'cancel', task: p.task });
            this.retireTask(p.task);
          }
          this.drop(round, p, 'missed the deadline', 'late');
        }
      }
      if (count('answered') >= quorum) break;
      this.opts.log(`round ${step + 1}: attempt ${round.attempt} ended with ${count('answered')} valid results, quorum ${quorum}`);
    }

    for (const p of all) if (p.task !== null && this.tasks.has(p.task)) this.retireTask(p.task);
    let counted = abandoned ? [] : all.filter((p) => p.status === 'answered');
    let sum: SecureSumReply | null = null;
    if (secure && !abandoned) {
      sum = await this.secureRound(round, counted, threshold, timeoutMs);
      if (sum === null) abandoned = true;
      counted = sum === null ? [] : sum.survivors.map((c) => round.participants.get(c)!);
    }
    this.round = null;
    for (const p of all) this.cursors[p.clientId] += batches;
    this.rounds.push({
      step: step + 1,
      attempts: round.attempt,
      participants: all.map((p) => p.clientId),
      counted: counted.map((p) => p.clientId),
      dropped: round.dropped,
      abandoned,
      bytesIn: this.bytesIn - in0,
      bytesOut: this.bytesOut - out0,
      ms: Date.now() - t0,
    });
    this.commits.push(Date.now());
    if (this.commits.length > COMMITS_KEPT) this.commits.shift();
    this.notify();
    return { results: counted.map((p) => ({ p, r: p.result as ResultMsg })), secure: sum };
  }

  /** Differential privacy of a secure round: each client's noise from its own secret key (never the run's seed). */
  private secAggDp(): SecAggDpOptions | null {
    return this.opts.config.dpClip !== null ? { noiseMultiplier: this.opts.noiseMultiplier ?? 0, seeded: false } : null;
  }

  /** The secure phases over the participants that advertised keys; null when they fail (logged). */
  private async secureRound(round: OpenRound, advertised: Participant[], threshold: number, phaseMs: number): Promise<SecureSumReply | null> {
    const spec = secAggSpec(this.opts.config, round.step, 0, round.participants.size, this.secAggDp());
    const session = new SecAggSession(round.step, threshold, spec.dim, spec.scale, {
      send: (id, msg) => {
        const conn = this.byClient.get(id);
        if (!conn) return false;
        this.send(conn, msg);
        return true;
      },
      connected: (id) => this.byClient.has(id),
      dropped: (id, reason) => {
        round.dropped.push({ client: id, reason: `secure aggregation: ${reason}` });
        this.count('secagg');
        this.opts.log(`round ${round.step + 1}: secure aggregation dropped client ${id}: ${reason}`);
      },
      refused: (id, reason) => {
        this.count('secagg-refused');
        this.opts.log(`round ${round.step + 1}: secure aggregation ignored a frame of client ${id}: ${reason}`);
      },
      notify: () => this.notify(),
    });
    this.secagg = session;
    try {
      const keys = new Map(advertised.map((p) => [p.clientId, p.keys!]));
      const sum = await session.run(keys, (pred, ms) => this.until(pred, ms), phaseMs);
      if (sum === null) {
        this.opts.log(`round ${round.step + 1}: secure aggregation failed: ${session.machine.failure}; the step passes without an update`);
        return null;
      }
      return { survivors: sum.survivors, sum: dequantizeWords(sum.words, spec.scale) };
    } finally {
      this.secagg = null;
    }
  }

  private sendTask(conn: Conn, round: OpenRound, p: Participant): void {
    if (conn.version !== round.version) {
      if (this.modelFrame?.version !== round.version) {
        this.modelFrame = {
          version: round.version,
          frame: encode({ type: 'model', runId: this.opts.runId, version: round.version, weights: round.weights }),
        };
      }
      this.sendFrame(conn, this.modelFrame.frame);
      conn.version = round.version;
    }
    const id = this.nextTask;
    this.nextTask = this.nextTask >= 0xfffffff0 ? 1 : this.nextTask + 1;
    const r = p.request;
    const base = {
      type: 'task' as const,
      task: id,
      round: round.step,
      version: round.version,
      K: r.K,
      sigma: r.sigma,
      scheme: r.scheme,
      cursor: this.cursors[p.clientId],
      batches: round.batches,
      batchSize: this.batchSize,
      deadlineMs: Math.max(0, round.deadline - Date.now()),
    };
    const msg: TaskMsg =
      'seeds' in r
        ? { ...base, kind: 'local-train', seeds: r.seeds, lr: r.lr, optimizer: r.optimizer, clip: r.clip }
        : { ...base, kind: 'estimate', seed: r.seed, secagg: round.secure ? secAggSpec(this.opts.config, round.step, p.clientId, round.participants.size, this.secAggDp()) : null };
    this.tasks.set(id, { conn, clientId: p.clientId, step: round.step });
    p.status = 'tasked';
    p.task = id;
    this.send(conn, msg);
  }

  private retireTask(id: number): void {
    const o = this.tasks.get(id);
    if (!o) return;
    this.tasks.delete(id);
    this.closedTasks.set(id, { clientId: o.clientId, step: o.step });
    if (this.closedTasks.size > CLOSED_TASKS_KEPT) this.closedTasks.delete(this.closedTasks.keys().next().value as number);
  }

  /** Takes a participant's task back (disconnect, deadline): it may get a new one later in the round. */
  private drop(round: OpenRound, p: Participant, reason: string, code: string): void {
    if (p.task !== null) this.retireTask(p.task);
    p.status = 'idle';
    p.task = null;
    round.dropped.push({ client: p.clientId, reason });
    this.count(code);
    this.opts.log(`round ${round.step + 1}: dropped client ${p.clientId}: ${reason}`);
    this.notify();
  }

  /** Refuses a client's frame; a participant of the open round is out for the rest of the round. */
  private refuse(conn: Conn, code: string, reason: string, task: number | null, fatal = false): void {
    this.count(code);
    if (++conn.refused > MAX_REFUSALS_PER_CONNECTION && !conn.closed) {
      // A client that keeps sending refused frames is not confused but hostile: stop reading it.
      this.opts.log(`closing ${conn.name}: more than ${MAX_REFUSALS_PER_CONNECTION} refused frames`);
      conn.closed = true;
      conn.ws.close(CloseCode.protocol, 'too many refused frames');
      this.detach(conn);
    }
    const round = this.round;
    const p = conn.clientId === null ? undefined : round?.participants.get(conn.clientId);
    if (round && p && (p.status === 'tasked' || p.status === 'idle')) {
      if (p.task !== null) this.retireTask(p.task);
      p.status = 'refused';
      p.task = null;
      round.dropped.push({ client: p.clientId, reason });
      this.opts.log(`round ${round.step + 1}: dropped client ${p.clientId}: ${reason}`);
      this.notify();
    } else {
      this.opts.log(`refused ${conn.name}: ${reason}`);
    }
    this.send(conn, { type: 'error', code, message: reason, task, fatal });
  }

  private onResult(conn: Conn, msg: ResultMsg | SaAdvertiseMsg): void {
    const clientId = conn.clientId as number;
    const o = this.tasks.get(msg.task);
    if (!o) {
      const closed = this.closedTasks.get(msg.task);
      if (closed && closed.clientId === clientId) {
        this.count('late');
        this.opts.log(`round ${closed.step + 1}: late result of client ${clientId} dropped (task ${msg.task} is closed)`);
        this.send(conn, { type: 'error', code: 'late', message: `task ${msg.task} is closed`, task: msg.task, fatal: false });
      } else {
        this.refuse(conn, 'not-your-task', `result for task ${msg.task}, which was never given to client ${clientId}`, msg.task);
      }
      return;
    }
    if (o.conn !== conn) {
      this.refuse(conn, 'not-your-task', `result for task ${msg.task}, which was given to client ${o.clientId}, not to client ${clientId}`, msg.task);
      return;
    }
    const round = this.round;
    const p = round?.participants.get(clientId);
    if (!round || !p || p.task !== msg.task) {
      this.refuse(conn, 'not-your-task', `result for task ${msg.task}, which is not open`, msg.task);
      return;
    }
    if (msg.round !== o.step) {
      this.refuse(conn, 'wrong-round', `result names round ${msg.round}, task ${msg.task} belongs to round ${o.step}`, msg.task);
      return;
    }
    if ((msg.type === 'sa-advertise') !== round.secure) {
      const why = round.secure ? 'this round aggregates securely: answer the task with sa-advertise, never with the scalars' : 'sa-advertise for a round without secure aggregation';
      this.refuse(conn, 'bad-result', why, msg.task);
      return;
    }
    if (msg.type === 'sa-advertise') {
      this.retireTask(msg.task);
      p.status = 'answered';
      p.task = null;
      p.keys = { cPk: msg.cPk, sPk: msg.sPk };
      this.notify();
      return;
    }
    const problem = this.checkResult(round, p, msg);
    if (problem) {
      this.refuse(conn, 'bad-result', problem, msg.task);
      return;
    }
    this.retireTask(msg.task);
    p.status = 'answered';
    p.task = null;
    p.result = msg;
    this.notify();
  }

  /** What is wrong with a result's content, or null. */
  private checkResult(round: OpenRound, p: Participant, msg: ResultMsg): string | null {
    const r = p.request;
    const values = round.kind === 'estimate' ? msg.scalars : msg.delta;
    const field = round.kind === 'estimate' ? 'scalars' : 'delta';
    const expected = round.kind === 'estimate' ? r.K : this.params;
    if (values === null) return `a ${round.kind} result must carry ${field}`;
    if (values.length !== expected) return `${values.length} values in ${field}, expected ${expected}`;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) return `${values[i]} in ${field}[${i}]`;
    }
    const maxExamples = round.batches * this.batchSize;
    if (!Number.isInteger(msg.examples) || msg.examples < 1 || msg.examples > maxExamples) {
      return `example count ${msg.examples} outside [1, ${maxExamples}]`;
    }
    if (!Number.isFinite(msg.loss) || msg.loss < 0) return `loss ${msg.loss} is not a finite non-negative number`;
    return null;
  }

  // -------------------------------------------------------------------------------------------------
  // Connections

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    if (this.opts.pages?.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === '/status' || path === '/status/')) {
      if (!this.authorized(req, res, false)) return;
      const body = JSON.stringify(this.status());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && path === '/events') {
      if (!this.authorized(req, res, true)) return;
      this.subscribe(res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: 'not found: GET /status for the server status, /dashboard to watch the federation, /join for the browser client, WebSocket for clients',
      }),
    );
  }

  /**
   * Whether a read-only request may see the run: with a dashboard token, only when it carries it; without
   * one (loopback), always — and for /events (`checkHost`) only when the Host header names loopback, so
   * that a web page of another site cannot read it through a rebound DNS name. Otherwise answers 401/403.
   */
  private authorized(req: IncomingMessage, res: ServerResponse, checkHost: boolean): boolean {
    const refuse = (code: number, error: string) => {
      this.count('dashboard-auth');
      res.writeHead(code, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        ...(code === 401 ? { 'www-authenticate': 'Bearer realm="baffle dashboard"' } : {}),
      });
      res.end(JSON.stringify({ error }));
      return false;
    };
    if (this.dashboardToken === null) {
      return !checkHost || isLoopbackHost(req.headers.host) || refuse(403, 'this server answers loopback names only (http://127.0.0.1:PORT/…)');
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) return refuse(401, 'dashboard token required: send the header Authorization: Bearer TOKEN (the token baffle serve printed)');
    if (!timingSafeEqual(digest(m[1]!), this.dashboardToken)) return refuse(401, 'wrong dashboard token');
    return true;
  }

  // -------------------------------------------------------------------------------------------------
  // The dashboard's event stream

  /** What the dashboard shows besides the metrics and the rounds (which go as their own events). */
  dashboardStatus(): DashboardStatus {
    const now = Date.now();
    const r = this.round;
    this.tallyRounds();
    const ids = new Set<number>([...this.seen.keys(), ...this.tally.keys(), ...(r ? r.participants.keys() : [])]);
    const sorted = [...ids].sort((a, b) => a - b);
    const list = sorted.slice(0, MAX_DASHBOARD_CLIENTS).map((id): DashboardClient => {
      const seen = this.seen.get(id);
      const conn = this.byClient.get(id);
      const t = this.tally.get(id);
      const agent = seen?.agent ?? '';
      const lastSeen = conn ? conn.lastSeen : seen?.lastSeen;
      return {
        id,
        kind: seen ? clientKind(agent) : 'other',
        agent,
        connected: conn !== undefined,
        lastSeenAgoMs: lastSeen === undefined ? null : Math.max(0, now - lastSeen),
        connections: seen?.connections ?? 0,
        counted: t?.counted ?? 0,
        dropped: t?.dropped ?? 0,
        inRound: r?.participants.get(id)?.status ?? null,
      };
    });
    const c = this.commits;
    const stepMs = c.length >= 2 ? (c.at(-1)! - c[0]!) / (c.length - 1) : null;
    const recent = this.rounds.slice(-(COMMITS_KEPT - 1));
    const roundMs = recent.length > 0 ? recent.reduce((a, x) => a + x.ms, 0) / recent.length : null;
    const left = Math.max(0, this.info.totalSteps - this.info.step);
    const etaS =
      this.info.state === 'done' ? 0 : this.info.state === 'training' && stepMs !== null ? Math.round((left * stepMs) / 1000) : null;
    let dropped = 0;
    let abandoned = 0;
    for (const x of this.rounds) {
      dropped += x.dropped.length;
      if (x.abandoned) abandoned++;
    }
    return {
      state: this.info.state,
      runId: this.opts.runId,
      step: this.info.step,
      totalSteps: this.info.totalSteps,
      lastRound: this.rounds.at(-1)?.step ?? 0,
      round: r
        ? {
            step: r.step + 1,
            attempt: r.attempt,
            participants: r.participants.size,
            answered: [...r.participants.values()].filter((p) => p.status === 'answered').length,
            quorum: this.quorumOf(r.participants.size),
            deadlineInMs: r.attemptRunning ? Math.max(0, r.deadline - now) : 0,
          }
        : null,
      clients: {
        federation: this.opts.config.clients,
        connected: this.byClient.size,
        connections: this.conns.size,
        list,
        omitted: sorted.length - list.length,
      },
      bytes: { in: this.bytesIn, out: this.bytesOut },
      timing: { stepMs, roundMs, etaS, uptimeS: Math.round((now - this.started) / 1000) },
      totals: { rounds: this.rounds.length, dropped: dropped + (r?.dropped.length ?? 0), abandoned, refusals: { ...this.refusals } },
    };
  }

  /** Brings the per-client counts up to the round log (which a resumed server fills from its checkpoint). */
  private tallyRounds(): void {
    const at = (id: number) => {
      let t = this.tally.get(id);
      if (!t) this.tally.set(id, (t = { counted: 0, dropped: 0 }));
      return t;
    };
    for (; this.tallied < this.rounds.length; this.tallied++) {
      const x = this.rounds[this.tallied]!;
      for (const id of x.counted) at(id).counted++;
      for (const d of x.dropped) at(d.client).dropped++;
    }
  }

  private subscribe(res: ServerResponse): void {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '10' });
      res.end(JSON.stringify({ error: `more than ${MAX_SUBSCRIBERS} dashboards are open` }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    const sub: Subscriber = { res, metrics: 0, rounds: Math.max(0, this.rounds.length - ROUNDS_ON_CONNECT), signature: '', sentAt: 0 };
    this.subscribers.add(sub);
    const gone = () => {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0 && this.dashTimer) {
        clearInterval(this.dashTimer);
        this.dashTimer = null;
      }
    };
    res.on('close', gone);
    res.on('error', gone);
    this.dashboardTick(true, sub);
    if (this.finished) res.end();
    else if (!this.dashTimer) {
      this.dashTimer = setInterval(() => this.dashboardTick(false), DASHBOARD_TICK_MS);
      this.dashTimer.unref();
    }
  }

  /** Sends each dashboard (or `only`) what is new: metrics, rounds, and the status when it changed or is due. */
  private dashboardTick(force: boolean, only?: Subscriber): void {
    const targets = only ? [only] : [...this.subscribers];
    if (targets.length === 0) return;
    const now = Date.now();
    const status = this.dashboardStatus();
    const r = status.round;
    const signature = [
      status.state,
      status.step,
      r ? `${r.step}.${r.attempt}.${r.answered}` : '-',
      status.clients.connected,
      status.clients.connections,
      status.totals.rounds,
      status.totals.dropped,
      this.info.metrics.length,
      status.clients.list.map((c) => `${c.id}${c.inRound ?? ''}${c.connected ? '+' : '-'}`).join(','),
    ].join('|');
    let statusFrame: string | null = null;
    for (const sub of targets) {
      const { res } = sub;
      if (res.writableEnded || res.destroyed) continue;
      // A dashboard that does not read its stream is not kept: its buffer would grow without bound.
      if (res.writableLength > 4 << 20) {
        res.destroy();
        continue;
      }
      if (this.info.metrics.length > sub.metrics) {
        res.write(sse('metrics', this.info.metrics.slice(sub.metrics)));
        sub.metrics = this.info.metrics.length;
      }
      if (this.rounds.length > sub.rounds) {
        res.write(sse('rounds', this.rounds.slice(sub.rounds)));
        sub.rounds = this.rounds.length;
      }
      if (force || signature !== sub.signature || now - sub.sentAt >= DASHBOARD_STATUS_MS) {
        statusFrame ??= sse('status', status);
        res.write(statusFrame);
        sub.signature = signature;
        sub.sentAt = now;
      }
    }
  }

  private endSubscribers(): void {
    if (this.dashTimer) clearInterval(this.dashTimer);
    this.dashTimer = null;
    for (const sub of this.subscribers) sub.res.end();
    this.subscribers.clear();
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const conn = new Conn(ws, remote, randomBytes(NONCE_BYTES));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports frames it cannot accept with WS_ERR_* codes and closes the connection itself; other errors
      // are the network's (reset, broken pipe): the close handler takes the task back.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.refuse(conn, 'frame-too-large', `frame larger than ${this.maxFrameBytes} bytes`, null, true);
      } else if (err.code?.startsWith('WS_ERR_')) {
        this.refuse(conn, 'bad-frame', `invalid WebSocket frame (${err.message})`, null, true);
      }
    });
    ws.on('close', () => this.onClose(conn));
    const pending = [...this.conns].filter((c) => c.clientId === null).length;
    this.conns.add(conn);
    if (this.finished || pending >= Math.max(MAX_PENDING_CONNECTIONS, this.opts.config.clients)) {
      this.count('overloaded');
      ws.close(CloseCode.goingAway, this.finished ? 'training finished' : 'too many unauthenticated connections');
      return;
    }
    if (ws.protocol !== SUBPROTOCOL) {
      this.count('protocol-version');
      this.send(conn, {
        type: 'error',
        code: 'protocol-version',
        message: `this server speaks WebSocket subprotocol '${SUBPROTOCOL}' (protocol ${PROTOCOL_VERSION})`,
        task: null,
        fatal: true,
      });
      this.opts.log(`refused ${conn.name}: subprotocol '${ws.protocol}' instead of '${SUBPROTOCOL}'`);
      ws.close(CloseCode.incompatible, 'unsupported protocol');
      return;
    }
    conn.helloTimer = setTimeout(() => {
      this.count('auth-timeout');
      this.opts.log(`refused ${conn.name}: no hello within ${HELLO_TIMEOUT_MS / 1000}s`);
      ws.close(CloseCode.auth, 'authentication timeout');
    }, HELLO_TIMEOUT_MS);
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(conn, data, isBinary));
    this.send(conn, { type: 'challenge', protocol: PROTOCOL_VERSION, nonce: conn.nonce, server: 'baffle/0.1' });
  }

  private onFrame(conn: Conn, data: Buffer, isBinary: boolean): void {
    if (conn.closed) return;
    try {
      this.handleFrame(conn, data, isBinary);
    } catch (e) {
      // Nothing a client sends may take the server down: an unexpected failure costs the client its connection.
      this.protocolViolation(conn, new ProtocolError('bad-frame', `frame could not be handled (${(e as Error).message})`));
    }
  }

  private handleFrame(conn: Conn, data: Buffer, isBinary: boolean): void {
    this.bytesIn += data.byteLength;
    conn.lastSeen = Date.now();
    if (conn.clientId === null && data.byteLength > HELLO_MAX_BYTES) {
      this.protocolViolation(conn, new ProtocolError('frame-too-large', `${data.byteLength}-byte frame before authentication`));
      return;
    }
    let msg: ClientMessage;
    try {
      msg = decodeClientFrame(data, isBinary);
    } catch (e) {
      this.protocolViolation(conn, e instanceof ProtocolError ? e : new ProtocolError('bad-frame', `undecodable frame (${(e as Error).message})`));
      return;
    }
    if (conn.clientId === null) {
      if (msg.type !== 'hello') {
        this.protocolViolation(conn, new ProtocolError('auth-required', `'${msg.type}' before hello`));
        return;
      }
      void this.onHello(conn, msg).catch((e) => this.protocolViolation(conn, new ProtocolError('bad-frame', `hello could not be checked (${(e as Error).message})`)));
      return;
    }
    switch (msg.type) {
      case 'hello':
        this.protocolViolation(conn, new ProtocolError('bad-frame', 'second hello on an authenticated connection'));
        return;
      case 'pong':
        return;
      case 'error':
        this.opts.log(`client ${conn.clientId} reports ${JSON.stringify(msg.code)}: ${JSON.stringify(msg.message)}`);
        if (msg.code === 'missing-model') conn.version = null;
        if (msg.code === 'secagg-refused') this.secagg?.disconnect(conn.clientId, `refused the round (${msg.message.slice(0, 200)})`);
        if (msg.task !== null && this.tasks.get(msg.task)?.conn === conn) {
          const p = this.round?.participants.get(conn.clientId);
          if (this.round && p && p.task === msg.task) this.drop(this.round, p, `client error: ${msg.message}`, 'client-error');
        }
        return;
      case 'result':
        this.onResult(conn, msg);
        return;
      case 'sa-advertise':
        this.onResult(conn, msg);
        return;
      case 'sa-shares':
      case 'sa-masked':
      case 'sa-reveal':
        if (this.secagg) this.secagg.receive(conn.clientId, msg);
        else this.refuse(conn, 'secagg-unexpected', `${msg.type} while no secure-aggregation round runs`, null);
        return;
    }
  }

  /** A frame that breaks the protocol: refuse it, drop the client from its round and close the connection. */
  private protocolViolation(conn: Conn, e: ProtocolError): void {
    this.refuse(conn, e.code, e.message, null, true);
    conn.closed = true;
    const code = e.code === 'frame-too-large' ? CloseCode.tooBig : CloseCode.protocol;
    conn.ws.close(code, e.code);
    this.detach(conn);
  }

  private async onHello(conn: Conn, msg: Extract<ClientMessage, { type: 'hello' }>): Promise<void> {
    if (conn.authenticating) {
      this.protocolViolation(conn, new ProtocolError('bad-frame', 'second hello while the first is being checked'));
      return;
    }
    if (msg.protocol !== PROTOCOL_VERSION) {
      this.count('protocol-version');
      this.send(conn, { type: 'error', code: 'protocol-version', message: `server speaks protocol ${PROTOCOL_VERSION}`, task: null, fatal: true });
      this.opts.log(`refused ${conn.name}: protocol ${msg.protocol}`);
      conn.closed = true;
      conn.ws.close(CloseCode.incompatible, 'unsupported protocol');
      return;
    }
    const token = this.opts.tokens.get(msg.clientId);
    conn.authenticating = true;
    const valid = token !== undefined && msg.clientId < this.opts.config.clients && (await proofMatches(token, conn.nonce, msg.clientId, msg.proof));
    conn.authenticating = false;
    if (conn.closed) return;
    if (!valid) {
      this.count('auth-failed');
      this.opts.log(`refused ${conn.name}: authentication failed for client ${msg.clientId}`);
      this.send(conn, { type: 'error', code: 'auth-failed', message: 'authentication failed', task: null, fatal: true });
      conn.closed = true;
      conn.ws.close(CloseCode.auth, 'authentication failed');
      return;
    }
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    const previous = this.byClient.get(msg.clientId);
    if (previous) {
      this.opts.log(`client ${msg.clientId}: new connection from ${conn.remote} replaces the one from ${previous.remote}`);
      this.send(previous, { type: 'error', code: 'replaced', message: 'another connection authenticated as this client', task: null, fatal: true });
      previous.closed = true;
      previous.ws.close(CloseCode.replaced, 'replaced');
      this.detach(previous);
    }
    conn.clientId = msg.clientId;
    conn.version = msg.runId === this.opts.runId ? msg.version : null;
    this.byClient.set(msg.clientId, conn);
    const seen = this.seen.get(msg.clientId);
    this.seen.set(msg.clientId, { agent: msg.agent, lastSeen: conn.lastSeen, connections: (seen?.connections ?? 0) + 1 });
    this.send(conn, {
      type: 'welcome',
      clientId: msg.clientId,
      runId: this.opts.runId,
      config: this.opts.config as unknown as Record<string, unknown>,
      model: this.opts.model,
      heartbeatMs: Math.round(this.opts.server.heartbeat * 1000),
      maxFrameBytes: this.maxFrameBytes,
    });
    const round = this.round;
    const p = round?.participants.get(msg.clientId);
    if (round && round.attemptRunning && p && p.status === 'idle') this.sendTask(conn, round, p);
    this.notify();
  }

  private onClose(conn: Conn): void {
    conn.closed = true;
    this.conns.delete(conn);
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    this.detach(conn);
  }

  /** Forgets a connection: its outstanding task goes back (the participant may get it again). */
  private detach(conn: Conn): void {
    if (conn.clientId === null) return;
    if (this.byClient.get(conn.clientId) === conn) this.byClient.delete(conn.clientId);
    const seen = this.seen.get(conn.clientId);
    if (seen) seen.lastSeen = Math.max(seen.lastSeen, conn.lastSeen);
    const round = this.round;
    const p = round?.participants.get(conn.clientId);
    if (round && p && p.status === 'tasked' && p.task !== null && this.tasks.get(p.task)?.conn === conn) {
      this.drop(round, p, this.finished ? 'server finished' : 'disconnected mid-round', 'disconnected');
    }
    if (this.byClient.get(conn.clientId) === undefined) this.secagg?.disconnect(conn.clientId);
    this.notify();
  }

  private heartbeat(): void {
    const now = Date.now();
    const limit = 3 * this.opts.server.heartbeat * 1000;
    for (const c of this.conns) {
      if (c.clientId === null || c.closed) continue;
      if (now - c.lastSeen > limit) {
        this.count('heartbeat-timeout');
        this.opts.log(`client ${c.clientId}: silent for ${Math.round((now - c.lastSeen) / 1000)}s, closing`);
        c.closed = true;
        c.ws.terminate();
        this.detach(c);
      } else this.send(c, { type: 'ping', time: now });
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Helpers

  private send(conn: Conn, msg: ServerMessage): void {
    this.sendFrame(conn, encode(msg));
  }

  private sendFrame(conn: Conn, frame: Uint8Array): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    this.bytesOut += frame.byteLength;
    conn.ws.send(frame);
  }

  private count(code: string): void {
    this.refusals[code] = (this.refusals[code] ?? 0) + 1;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves true as soon as `pred` holds (checked after every event), false after `ms`. */
  private until(pred: () => boolean, ms: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (pred()) done(true);
      };
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => done(pred()), ms);
      this.waiters.add(check);
    });
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** One server-sent event: its name and a JSON payload (one data line: JSON has no raw newline). */
function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function fmtIds(ids: number[]): string {
  if (ids.length === 0) return 'none';
  return ids.length <= 10 ? ids.join(', ') : `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more`;
}
