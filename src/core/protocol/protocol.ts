// The BAFFLE network protocol, version 1: message types, msgpack framing and the schema check every frame
// passes before anything acts on it. docs/protocol.md is the normative description; keep the two in step.
//
// One WebSocket connection carries one client. Every frame is a binary WebSocket message holding exactly one
// msgpack map with a string field `type`. Float vectors travel as msgpack `bin` of little-endian float32.
// Platform-free: it runs in Node and in browsers (HMAC by WebCrypto, byte order checked at run time).
import { Packr, Unpackr } from 'msgpackr';
import { ModelFieldError, parseClientModel, type ClientModel } from '../model/artifact.ts';
import { bytesU32, u32Bytes, type SecAggClientMessage, type SecAggServerMessage, type SecAggTaskSpec, type SecAggDpSpec } from '../secagg/messages.ts';

export type * from '../secagg/messages.ts';

export const PROTOCOL_VERSION = 1;
/** WebSocket subprotocol a client must offer (Sec-WebSocket-Protocol). */
export const SUBPROTOCOL = 'baffle.v1';
export const NONCE_BYTES = 32;
/** Largest frame accepted before a connection has authenticated. */
export const HELLO_MAX_BYTES = 4096;

/** WebSocket close codes the server uses (4000–4999 are application codes). */
export const CloseCode = {
  normal: 1000,
  /** Undecodable frame, wrong message for the connection's state, schema violation. */
  protocol: 1002,
  /** Frame larger than allowed. */
  tooBig: 1009,
  /** Authentication failed or timed out: do not reconnect with the same credentials. */
  auth: 4001,
  /** Another connection authenticated as the same client: do not reconnect. */
  replaced: 4002,
  /** Training finished: the client may exit. */
  done: 4003,
  /** Server shutting down or overloaded: reconnect later. */
  goingAway: 4004,
  /** The client does not speak this protocol version: do not reconnect. */
  incompatible: 4005,
} as const;

export type Scheme = 'forward' | 'central';

// ---------------------------------------------------------------------------------------------------
// Messages, server → client

export interface ChallengeMsg {
  type: 'challenge';
  protocol: number;
  nonce: Uint8Array;
  server: string;
}

export interface WelcomeMsg {
  type: 'welcome';
  clientId: number;
  /** Identifies the training run (stable across server restarts with --resume). */
  runId: string;
  /** The run configuration (the keys of `baffle keys`): data set, partition, seed, batch size, … */
  config: Record<string, unknown>;
  /**
   * The model artifact without its weights (src/core/model/artifact.ts, docs/protocol.md): the training graph,
   * its interface names, the trainable layout, the input dims, preprocessing and class count. The client
   * builds its engine from it and needs no model file of its own.
   */
  model: ClientModel;
  heartbeatMs: number;
  maxFrameBytes: number;
}

export interface ModelMsg {
  type: 'model';
  runId: string;
  version: number;
  weights: Float32Array;
}

interface TaskBase {
  type: 'task';
  task: number;
  round: number;
  /** Model version the task is computed at (the client must hold it: a `model` frame precedes when not). */
  version: number;
  K: number;
  sigma: number;
  scheme: Scheme;
  /** Index of the first minibatch in the client's stream, and how many minibatches the task uses. */
  cursor: number;
  batches: number;
  batchSize: number;
  /** Milliseconds from receipt after which the result is no longer accepted. */
  deadlineMs: number;
}

export interface EstimateTaskMsg extends TaskBase {
  kind: 'estimate';
  seed: number;
  /** Secure aggregation (docs/protocol.md §12): answer with `sa-advertise`, never with the scalars. nil = off. */
  secagg?: SecAggTaskSpec | null;
}

export interface LocalTrainTaskMsg extends TaskBase {
  kind: 'local-train';
  seeds: number[];
  lr: number;
  optimizer: 'sgd' | 'adam';
  clip: number;
}

export type TaskMsg = EstimateTaskMsg | LocalTrainTaskMsg;

export interface CancelMsg {
  type: 'cancel';
  task: number;
}

export interface PingMsg {
  type: 'ping';
  time: number;
}

export interface ErrorMsg {
  type: 'error';
  code: string;
  message: string;
  task: number | null;
  fatal: boolean;
}

export interface DoneMsg {
  type: 'done';
  round: number;
}

export type ServerMessage = ChallengeMsg | WelcomeMsg | ModelMsg | TaskMsg | CancelMsg | PingMsg | ErrorMsg | DoneMsg | SecAggServerMessage;

// ---------------------------------------------------------------------------------------------------
// Messages, client → server

export interface HelloMsg {
  type: 'hello';
  protocol: number;
  clientId: number;
  /** HMAC-SHA256(key = token, message = nonce ‖ uint32be(clientId)). */
  proof: Uint8Array;
  /** The model the client already holds, if any (run id and version). */
  runId: string | null;
  version: number | null;
  agent: string;
}

export interface ResultMsg {
  type: 'result';
  task: number;
  round: number;
  examples: number;
  loss: number;
  /** estimate: K scalars. */
  scalars: Float32Array | null;
  /** local-train: the model delta (params values). */
  delta: Float32Array | null;
}

export interface PongMsg {
  type: 'pong';
  time: number;
}

export interface ClientErrorMsg {
  type: 'error';
  code: string;
  message: string;
  task: number | null;
}

export type ClientMessage = HelloMsg | ResultMsg | PongMsg | ClientErrorMsg | SecAggClientMessage;

// ---------------------------------------------------------------------------------------------------
// Framing

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A frame that does not follow the protocol (`code` names the rule, for logs and error frames). */
export class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** float32 values as little-endian bytes (a view when the platform is little-endian). */
export function float32Bytes(a: Float32Array): Uint8Array {
  if (LITTLE) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i], true);
  return out;
}

/** Little-endian float32 bytes as a fresh, aligned Float32Array. */
export function bytesFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  if (LITTLE) new Uint8Array(out.buffer).set(b);
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** Encodes one message as a frame; Float32Array fields go as `bin` of little-endian float32. */
export function encode(msg: ServerMessage | ClientMessage): Uint8Array {
  const plain: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg)) plain[k] = v instanceof Float32Array ? float32Bytes(v) : v instanceof Uint32Array ? u32Bytes(v) : v;
  return packr.pack(plain);
}

/** Decodes a frame into a plain map, or throws ProtocolError('bad-frame'). */
function decodeMap(data: Uint8Array, isBinary: boolean): Record<string, unknown> {
  if (!isBinary) throw new ProtocolError('bad-frame', 'text frame (frames are binary msgpack)');
  let value: unknown;
  try {
    value = unpackr.unpack(data);
  } catch (e) {
    throw new ProtocolError('bad-frame', `undecodable msgpack (${(e as Error).message.slice(0, 80)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError('bad-frame', 'a frame must be a msgpack map');
  }
  return value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------
// Schema checks (field by field; unknown fields are ignored for forward compatibility)

type Check<T> = (v: unknown) => v is T;
const isU32: Check<number> = (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isNat: Check<number> = (v): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isFinite: Check<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr =
  (max: number): Check<string> =>
  (v): v is string =>
    typeof v === 'string' && v.length <= max;
const isBin = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isBool: Check<boolean> = (v): v is boolean => typeof v === 'boolean';
const orNull =
  <T>(c: Check<T>): Check<T | null> =>
  (v): v is T | null =>
    v === null || v === undefined || c(v);

class Fields {
  constructor(
    private readonly m: Record<string, unknown>,
    private readonly type: string,
  ) {}
  get<T>(name: string, check: Check<T>, what: string): T {
    const v = this.m[name];
    if (!check(v)) throw new ProtocolError('bad-frame', `${this.type}.${name} must be ${what}`);
    return (v === undefined ? null : v) as T;
  }
}

const SCHEMES = ['forward', 'central'];

/** Decodes and schema-checks a frame sent by a client. Throws ProtocolError. */
export function decodeClientFrame(data: Uint8Array, isBinary = true): ClientMessage {
  const m = decodeMap(data, isBinary);
  const type = m.type;
  const f = new Fields(m, String(type));
  switch (type) {
    case 'hello':
      return {
        type,
        protocol: f.get('protocol', isU32, 'an unsigned integer'),
        clientId: f.get('clientId', isU32, 'an unsigned integer'),
        proof: f.get('proof', (v): v is Uint8Array => isBin(v) && v.byteLength === 32, '32 bytes (bin)'),
        runId: f.get('runId', orNull(isStr(64)), 'a string or nil'),
        version: f.get('version', orNull(isNat), 'a non-negative integer or nil'),
        agent: f.get('agent', orNull(isStr(200)), 'a string') ?? '',
      };
    case 'result': {
      const task = f.get('task', isU32, 'an unsigned integer');
      const round = f.get('round', isNat, 'a non-negative integer');
      const scalars = f.get('scalars', orNull((v): v is Uint8Array => isBin(v) && v.byteLength % 4 === 0), 'bin of float32 or nil');
      const delta = f.get('delta', orNull((v): v is Uint8Array => isBin(v) && v.byteLength % 4 === 0), 'bin of float32 or nil');
      if ((scalars === null) === (delta === null)) throw new ProtocolError('bad-frame', 'result must carry exactly one of scalars, delta');
      return {
        type,
        task,
        round,
        examples: f.get('examples', isNat, 'a non-negative integer'),
        loss: f.get('loss', (v): v is number => typeof v === 'number', 'a number'),
        scalars: scalars === null ? null : bytesFloat32(scalars),
        delta: delta === null ? null : bytesFloat32(delta),
      };
    }
    case 'pong':
      return { type, time: f.get('time', isFinite, 'a number') };
    case 'error':
      return {
        type,
        code: f.get('code', isStr(64), 'a string'),
        message: f.get('message', isStr(1000), 'a string (≤ 1000 characters)'),
        task: f.get('task', orNull(isU32), 'an unsigned integer or nil'),
      };
    case 'sa-advertise':
      return {
        type,
        task: f.get('task', isU32, 'an unsigned integer'),
        round: f.get('round', isNat, 'a non-negative integer'),
        cPk: f.get('cPk', binOf(32), '32 bytes (bin)'),
        sPk: f.get('sPk', binOf(32), '32 bytes (bin)'),
      };
    case 'sa-shares':
      return {
        type,
        round: f.get('round', isNat, 'a non-negative integer'),
        commit: f.get('commit', binOf(32), '32 bytes (bin)'),
        shares: f.get('shares', listOf({ to: isU32, ct: isBinMax(1024) }), 'an array of {to: u32, ct: bin}').map((e) => ({ to: e.to as number, ct: e.ct as Uint8Array })),
      };
    case 'sa-masked': {
      const masked = f.get('masked', (v): v is Uint8Array => isBin(v) && v.byteLength % 4 === 0, 'bin of uint32');
      return { type, round: f.get('round', isNat, 'a non-negative integer'), masked: bytesU32(masked) };
    }
    case 'sa-reveal':
      return {
        type,
        round: f.get('round', isNat, 'a non-negative integer'),
        shares: f.get('shares', listOf({ of: isU32, share: isBinMax(1024) }), 'an array of {of: u32, share: bin}').map((e) => ({ of: e.of as number, share: e.share as Uint8Array })),
      };
    default:
      throw new ProtocolError('bad-frame', `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

/** Secure-aggregation lists: at most this many entries (a federation round of more clients is not supported). */
const MAX_LIST = 100_000;
const binOf =
  (n: number): Check<Uint8Array> =>
  (v): v is Uint8Array =>
    isBin(v) && v.byteLength === n;
const isBinMax =
  (n: number): Check<Uint8Array> =>
  (v): v is Uint8Array =>
    isBin(v) && v.byteLength <= n;
/** An array of maps, each with (at least) the given fields passing their checks. */
function listOf(fields: Record<string, Check<unknown>>): Check<Record<string, unknown>[]> {
  return (v): v is Record<string, unknown>[] =>
    Array.isArray(v) &&
    v.length <= MAX_LIST &&
    v.every(
      (e) =>
        e !== null && typeof e === 'object' && !Array.isArray(e) && !(e instanceof Uint8Array) && Object.entries(fields).every(([k, c]) => c((e as Record<string, unknown>)[k])),
    );
}
const isU32List: Check<number[]> = (v): v is number[] => Array.isArray(v) && v.length <= MAX_LIST && v.every(isU32);

function taskSecAgg(v: unknown): SecAggTaskSpec | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw new ProtocolError('bad-frame', 'task.secagg must be a map or nil');
  const f = new Fields(v as Record<string, unknown>, 'task.secagg');
  return {
    threshold: f.get('threshold', (x): x is number => isNat(x) && x >= 1, 'a positive integer'),
    range: f.get('range', (x): x is number => isFinite(x) && x > 0, 'a positive number'),
    scale: f.get('scale', (x): x is number => isFinite(x) && x > 0, 'a positive number'),
    roundingSeed: f.get('roundingSeed', isU32, 'an unsigned integer'),
    dim: f.get('dim', (x): x is number => isNat(x) && x >= 1, 'a positive integer'),
    ...taskSecAggDp((v as Record<string, unknown>).dp),
  };
}

/** The optional `dp` map of task.secagg (differential privacy with distributed noise): absent or nil = none. */
function taskSecAggDp(v: unknown): { dp?: SecAggDpSpec } {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw new ProtocolError('bad-frame', 'task.secagg.dp must be a map or nil');
  const f = new Fields(v as Record<string, unknown>, 'task.secagg.dp');
  return {
    dp: {
      clip: f.get('clip', (x): x is number => isFinite(x) && x > 0, 'a positive number'),
      noiseMultiplier: f.get('noiseMultiplier', (x): x is number => isFinite(x) && x >= 0, 'a number ≥ 0'),
      participants: f.get('participants', (x): x is number => isNat(x) && x >= 1, 'a positive integer'),
      noiseSeed: f.get('noiseSeed', orNull(isU32), 'an unsigned integer or nil'),
    },
  };
}

/** Decodes and schema-checks a frame sent by the server (a client trusts nothing either). */
export function decodeServerFrame(data: Uint8Array, isBinary = true): ServerMessage {
  const m = decodeMap(data, isBinary);
  const type = m.type;
  const f = new Fields(m, String(type));
  switch (type) {
    case 'challenge':
      return {
        type,
        protocol: f.get('protocol', isU32, 'an unsigned integer'),
        nonce: f.get('nonce', (v): v is Uint8Array => isBin(v) && v.byteLength === NONCE_BYTES, `${NONCE_BYTES} bytes`),
        server: f.get('server', orNull(isStr(200)), 'a string') ?? '',
      };
    case 'welcome':
      return {
        type,
        clientId: f.get('clientId', isU32, 'an unsigned integer'),
        runId: f.get('runId', isStr(64), 'a string'),
        config: f.get('config', (v): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v), 'a map'),
        model: welcomeModel(m.model),
        heartbeatMs: f.get('heartbeatMs', isNat, 'a non-negative integer'),
        maxFrameBytes: f.get('maxFrameBytes', isNat, 'a non-negative integer'),
      };
    case 'model':
      return {
        type,
        runId: f.get('runId', isStr(64), 'a string'),
        version: f.get('version', isNat, 'a non-negative integer'),
        weights: bytesFloat32(f.get('weights', (v): v is Uint8Array => isBin(v) && v.byteLength % 4 === 0, 'bin of float32')),
      };
    case 'task': {
      const kind = m.kind;
      const base = {
        type,
        task: f.get('task', isU32, 'an unsigned integer'),
        round: f.get('round', isNat, 'a non-negative integer'),
        version: f.get('version', isNat, 'a non-negative integer'),
        K: f.get('K', (v): v is number => isNat(v) && v >= 1, 'a positive integer'),
        sigma: f.get('sigma', (v): v is number => isFinite(v) && v > 0, 'a positive number'),
        scheme: f.get('scheme', (v): v is Scheme => SCHEMES.includes(v as string), "'forward' or 'central'"),
        cursor: f.get('cursor', isNat, 'a non-negative integer'),
        batches: f.get('batches', (v): v is number => isNat(v) && v >= 1, 'a positive integer'),
        batchSize: f.get('batchSize', (v): v is number => isNat(v) && v >= 1, 'a positive integer'),
        deadlineMs: f.get('deadlineMs', isNat, 'a non-negative integer'),
      } as const;
      if (kind === 'estimate') return { ...base, kind, seed: f.get('seed', isU32, 'an unsigned integer'), secagg: taskSecAgg(m.secagg) };
      if (kind === 'local-train') {
        return {
          ...base,
          kind,
          seeds: f.get('seeds', (v): v is number[] => Array.isArray(v) && v.length >= 1 && v.every(isU32), 'an array of unsigned integers'),
          lr: f.get('lr', isFinite, 'a number'),
          optimizer: f.get('optimizer', (v): v is 'sgd' | 'adam' => v === 'sgd' || v === 'adam', "'sgd' or 'adam'"),
          clip: f.get('clip', isFinite, 'a number'),
        };
      }
      throw new ProtocolError('bad-frame', `unknown task kind ${JSON.stringify(kind)?.slice(0, 40)}`);
    }
    case 'cancel':
      return { type, task: f.get('task', isU32, 'an unsigned integer') };
    case 'ping':
      return { type, time: f.get('time', isFinite, 'a number') };
    case 'error':
      return {
        type,
        code: f.get('code', isStr(64), 'a string'),
        message: f.get('message', isStr(2000), 'a string'),
        task: f.get('task', orNull(isU32), 'an unsigned integer or nil'),
        fatal: f.get('fatal', orNull(isBool), 'a boolean') ?? false,
      };
    case 'done':
      return { type, round: f.get('round', isNat, 'a non-negative integer') };
    case 'sa-roster':
      return {
        type,
        round: f.get('round', isNat, 'a non-negative integer'),
        keys: f
          .get('keys', listOf({ client: isU32, cPk: binOf(32), sPk: binOf(32) }), 'an array of {client: u32, cPk: bin(32), sPk: bin(32)}')
          .map((e) => ({ client: e.client as number, cPk: e.cPk as Uint8Array, sPk: e.sPk as Uint8Array })),
      };
    case 'sa-inbox':
      return {
        type,
        round: f.get('round', isNat, 'a non-negative integer'),
        shares: f.get('shares', listOf({ from: isU32, ct: isBinMax(1024) }), 'an array of {from: u32, ct: bin}').map((e) => ({ from: e.from as number, ct: e.ct as Uint8Array })),
      };
    case 'sa-unmask':
      return {
        type,
        round: f.get('round', isNat, 'a non-negative integer'),
        survivors: f.get('survivors', isU32List, 'an array of unsigned integers'),
        dropped: f.get('dropped', isU32List, 'an array of unsigned integers'),
      };
    default:
      throw new ProtocolError('bad-frame', `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

/** The welcome's model, checked field by field. */
function welcomeModel(v: unknown): ClientModel {
  try {
    return parseClientModel(v);
  } catch (e) {
    if (e instanceof ModelFieldError) throw new ProtocolError('bad-frame', `welcome.${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Authentication (WebCrypto, so that browsers and Node compute the same proof)

const encoder = new TextEncoder();

/** The proof a client sends in `hello`: HMAC-SHA256 keyed with its token over nonce ‖ uint32be(clientId). */
export async function helloProof(token: string, nonce: Uint8Array, clientId: number): Promise<Uint8Array> {
  const message = new Uint8Array(nonce.byteLength + 4);
  message.set(nonce);
  new DataView(message.buffer).setUint32(nonce.byteLength, clientId >>> 0, false);
  const key = await crypto.subtle.importKey('raw', encoder.encode(token), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
}

/** Checks a hello proof (WebCrypto's verify compares the MACs itself, in constant time). */
export async function proofMatches(token: string, nonce: Uint8Array, clientId: number, proof: Uint8Array): Promise<boolean> {
  if (proof.byteLength !== 32) return false;
  const message = new Uint8Array(nonce.byteLength + 4);
  message.set(nonce);
  new DataView(message.buffer).setUint32(nonce.byteLength, clientId >>> 0, false);
  const key = await crypto.subtle.importKey('raw', encoder.encode(token), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return crypto.subtle.verify('HMAC', key, new Uint8Array(proof), message);
}
