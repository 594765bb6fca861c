// Run configuration for the CLI: defaults, config files (.json / .toml), `--set key=value` overrides,
// and validation of every key before a run starts. See docs/baffle-spec.md for why the defaults are
// what they are (§3 reference recipe, §4 guidelines).

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';

export type DatasetName = 'mnist-10k' | 'fashion-mnist' | 'mnist' | 'cifar10';

export interface RunConfig {
  dataset: DatasetName;
  dataDir: string | null;
  model: 'mlp' | 'lenet' | 'wrn';
  hidden: number[];
  depth: number;
  width: number;
  activation: 'hardswish' | 'relu' | 'selu' | 'gelu';
  /** 'batchnorm' is representable so it can be refused with an explanation; validation never returns it. */
  norm: 'groupnorm' | 'none' | 'batchnorm';
  clients: number;
  participation: number;
  partition: 'iid' | 'dirichlet' | 'shards';
  alpha: number;
  shardsPerClient: number;
  batchSize: number;
  epochs: number;
  /** 'baffle' (forward passes only) or 'bp' (the backprop baseline: same everything, tfjs autograd clients). */
  algorithm: 'baffle' | 'bp';
  K: number;
  sigma: number;
  scheme: 'forward' | 'central';
  seedPolicy: 'shared' | 'per-client';
  fedopt: 'fedsgd' | 'fedavg';
  localSteps: number;
  localLr: number;
  localOptimizer: 'sgd' | 'adam';
  optimizer: 'adam' | 'sgd';
  lr: number;
  beta1: number;
  beta2: number;
  momentum: number;
  weightDecay: number;
  warmupEpochs: number;
  warmupLr: number | null;
  clip: number;
  ema: boolean;
  emaDecay: number;
  emaEvery: 'epoch' | 'step';
  evalEvery: 'epoch' | number;
  maxSteps: number | null;
  testSubset: number | null;
  seed: number;
  workers: number | 'auto';
}

export type ConfigKey = keyof RunConfig;

/** Where Fashion-MNIST lives when installed from the Debian package `dataset-fashion-mnist`. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

export const DEFAULT_CONFIG: Readonly<RunConfig> = Object.freeze({
  dataset: 'mnist-10k',
  dataDir: null,
  model: 'mlp',
  hidden: Object.freeze([128]) as number[],
  depth: 10,
  width: 2,
  activation: 'hardswish',
  norm: 'none',
  clients: 10,
  participation: 1.0,
  partition: 'iid',
  alpha: 0.5,
  shardsPerClient: 2,
  batchSize: 32,
  epochs: 20,
  algorithm: 'baffle',
  K: 100,
  sigma: 1e-4,
  scheme: 'forward',
  seedPolicy: 'per-client',
  fedopt: 'fedsgd',
  localSteps: 5,
  localLr: 0.01,
  localOptimizer: 'sgd',
  optimizer: 'adam',
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.99,
  momentum: 0.9,
  weightDecay: 5e-4,
  warmupEpochs: 0,
  warmupLr: null,
  clip: 0.3,
  ema: true,
  emaDecay: 0.995,
  emaEvery: 'epoch',
  evalEvery: 'epoch',
  maxSteps: null,
  testSubset: null,
  seed: 1,
  workers: 'auto',
} satisfies RunConfig);

/** One-line documentation per key, in display order (for `baffle run --help` and the docs). */
export const CONFIG_KEYS: Readonly<Record<ConfigKey, string>> = Object.freeze({
  dataset: "data set: 'mnist-10k' (bundled 10k digits), 'fashion-mnist', 'mnist' or 'cifar10' (these two need dataDir)",
  dataDir: `directory of the IDX / CIFAR binary files; null = none (fashion-mnist defaults to ${FASHION_MNIST_DEFAULT_DIR})`,
  model: "model: 'mlp', 'lenet' (conv, 26,730 params on MNIST) or 'wrn' (pre-activation wide ResNet)",
  hidden: 'MLP hidden layer sizes, positive integers, e.g. [256, 128]',
  depth: 'WRN depth d, with (d - 4) % 6 == 0 (10, 16, 22, ...)',
  width: 'WRN widen factor w (stage widths 16w / 32w / 64w)',
  activation: "activation: 'hardswish' (recommended: smooth for finite differences), 'relu', 'selu' or 'gelu'",
  norm: "normalization for conv models: 'none' or 'groupnorm' (BatchNorm is refused, see the spec §4)",
  clients: 'number of federated clients',
  participation: 'fraction of clients taking part in each round, in (0, 1]',
  partition: "how training data is split over clients: 'iid', 'dirichlet' (label skew, see alpha) or 'shards'",
  alpha: "Dirichlet concentration for partition 'dirichlet' (> 0; smaller = more non-IID)",
  shardsPerClient: "label-sorted shards per client for partition 'shards'",
  batchSize: 'minibatch size of each client forward pass',
  epochs: 'training length in epochs (one epoch = one pass over each client shard); > 0, may be fractional',
  algorithm:
    "'baffle' (clients run forward passes only) or 'bp' (backprop baseline: clients compute exact gradients with tfjs autograd; K, sigma, scheme, seedPolicy and clip do not apply)",
  K: 'number of perturbation directions per client per step (uplink = K scalars)',
  sigma: 'perturbation scale σ (keep well above the quantization step of low-precision clients)',
  scheme: "difference scheme: 'forward' (K+1 passes) or 'central' (2K passes)",
  seedPolicy: "'per-client' (own directions per client, lower variance) or 'shared' (same directions, sum-only aggregation)",
  fedopt: "'fedsgd' (one ZO estimate per round) or 'fedavg' (clients take localSteps local ZO steps)",
  localSteps: "fedavg: local ZO steps per round",
  localLr: "fedavg: client learning rate of the local ZO steps",
  localOptimizer: "fedavg: client optimizer, 'sgd' (replayable seed log) or 'adam' (uploads a model delta)",
  optimizer: "server optimizer: 'adam' or 'sgd'",
  lr: 'server learning rate',
  beta1: 'Adam β1, in [0, 1)',
  beta2: 'Adam β2, in [0, 1)',
  momentum: 'SGD momentum, in [0, 1)',
  weightDecay: 'weight decay (≥ 0)',
  warmupEpochs: 'epochs of learning-rate warm-up at warmupLr (0 = none)',
  warmupLr: 'learning rate during warm-up; null = use lr',
  clip: 'rescale ĝ so its largest absolute entry is ≤ clip; 0 = no clipping',
  ema: 'keep an exponential moving average of the weights and evaluate with it',
  emaDecay: 'EMA decay, in (0, 1), warmed up as min(decay, (1 + t) / (10 + t))',
  emaEvery: "update the EMA once per 'epoch' (the official recipe) or every 'step'",
  evalEvery: "evaluate every 'epoch' or every N server steps (positive integer)",
  maxSteps: 'stop after this many server steps; null = no cap (stop after epochs)',
  testSubset: 'evaluate on the first N test examples; null = whole test split',
  seed: 'master random seed, integer in [0, 2^32 - 1]',
  workers: "worker threads for client simulation: positive integer or 'auto' (os.availableParallelism())",
} satisfies Record<ConfigKey, string>);

const KNOWN_KEYS = Object.keys(CONFIG_KEYS) as ConfigKey[];

/** Every problem found in a configuration, one line each. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[] | string) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(
      list.length === 1
        ? `invalid configuration: ${list[0]}`
        : `invalid configuration (${list.length} problems):\n${list.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = list;
  }
}

// ---------------------------------------------------------------------------------------------------
// Files and overrides

/**
 * Read a .json or .toml configuration file into a plain record (not yet validated; pass it to
 * resolveConfig). Errors are ConfigErrors naming the file, and the line:column when known.
 */
export function loadConfigFile(path: string): Record<string, unknown> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.json' && ext !== '.toml') {
    throw new ConfigError(
      `config file '${path}': unsupported extension '${ext || '(none)'}'; use a .json or .toml file`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`config file '${path}': cannot read it (${code ?? (e as Error).message})`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM

  let data: unknown;
  if (ext === '.json') {
    try {
      data = JSON.parse(text);
    } catch (e) {
      const pos = jsonErrorOffset(text, (e as Error).message);
      const where = pos === null ? '' : `:${lineCol(text, pos)}`;
      throw new ConfigError(`config file '${path}${where}': invalid JSON: ${firstLine((e as Error).message)}`);
    }
  } else {
    try {
      data = parseToml(text);
    } catch (e) {
      const err = e as Error & { line?: number; column?: number };
      const where = typeof err.line === 'number' ? `:${err.line}:${err.column ?? 1}` : '';
      const msg = firstLine(err.message).replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigError(`config file '${path}${where}': invalid TOML: ${msg}`);
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file '${path}': the top level must be an object of key = value settings`);
  }
  return { ...(data as Record<string, unknown>) };
}

/**
 * Parse one `--set key=value`. The value is JSON when it parses as JSON (numbers, booleans, arrays,
 * null, "quoted strings"), otherwise the raw text (so `--set dataset=mnist` works unquoted).
 */
export function parseSetOverride(arg: string): { key: string; value: unknown } {
  const eq = arg.indexOf('=');
  if (eq < 0) throw new ConfigError(`--set '${arg}': expected key=value`);
  const key = arg.slice(0, eq).trim();
  if (key === '') throw new ConfigError(`--set '${arg}': missing key before '='`);
  const raw = arg.slice(eq + 1).trim();
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  // dataDir is a path: a directory named "2024" or "true" stays a string.
  if (key === 'dataDir' && value !== null && typeof value !== 'string') value = raw;
  return { key, value };
}

/** Turn a list of `--set key=value` arguments into one layer (later settings of a key win). */
export function overridesToLayer(args: readonly string[]): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const a of args) {
    try {
      const { key, value } = parseSetOverride(a);
      layer[key] = value;
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return layer;
}

// ---------------------------------------------------------------------------------------------------
// Resolution and validation

/**
 * Merge DEFAULT_CONFIG ← layers[0] ← layers[1] ← ... (typically file, then --set overrides), then
 * validate every key and every combination. Throws one ConfigError listing all problems.
 * `sources` optionally names each layer (e.g. the file path, '--set') for the error messages.
 * Values that are `undefined` do not override.
 */
export function resolveConfig(layers: readonly Record<string, unknown>[], sources?: readonly string[]): RunConfig {
  const problems: string[] = [];
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG, hidden: [...DEFAULT_CONFIG.hidden] };
  const origin: Partial<Record<string, string>> = {};

  layers.forEach((layer, i) => {
    const src = sources?.[i];
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      if (!(KNOWN_KEYS as string[]).includes(key)) {
        const hint = suggestKey(key);
        problems.push(
          `unknown key '${key}'${src ? ` (in ${src})` : ''}` +
            (hint ? `; did you mean '${hint}'?` : `; known keys: ${KNOWN_KEYS.join(', ')}`),
        );
        continue;
      }
      merged[key] = typeof value === 'bigint' ? bigintToNumber(value) : value;
      if (src) origin[key] = src;
    }
  });

  // Derived default: Fashion-MNIST has a standard install location.
  if (merged.dataset === 'fashion-mnist' && merged.dataDir === null) merged.dataDir = FASHION_MNIST_DEFAULT_DIR;

  const ok = new Set<ConfigKey>();
  for (const key of KNOWN_KEYS) {
    const v = merged[key];
    const rule = RULES[key];
    const from = origin[key] ? ` (from ${origin[key]})` : '';
    if (key === 'norm' && v === 'batchnorm') {
      problems.push(
        `norm: 'batchnorm' is not supported${from}: the K perturbed train-mode forward passes corrupt the ` +
          `BatchNorm running statistics, and BatchNorm is fragile under non-IID client data; use 'groupnorm' or 'none'`,
      );
      continue;
    }
    if (!rule.test(v)) {
      problems.push(`${key}: got ${fmt(v)}${from}; allowed: ${rule.allowed}`);
      continue;
    }
    ok.add(key);
  }

  const c = merged as unknown as RunConfig;
  const both = (...keys: ConfigKey[]) => keys.every((k) => ok.has(k));

  if (both('dataset', 'dataDir') && (c.dataset === 'mnist' || c.dataset === 'cifar10') && c.dataDir === null) {
    problems.push(
      `dataset '${c.dataset}' needs dataDir: set dataDir to the directory holding the ` +
        (c.dataset === 'mnist' ? 'MNIST IDX files' : 'CIFAR-10 binary batches') +
        ` (or use dataset 'mnist-10k', which is bundled)`,
    );
  }
  if (ok.has('partition') && c.partition === 'dirichlet' && !ok.has('alpha')) {
    problems.push(`partition 'dirichlet' needs alpha > 0 (the Dirichlet concentration), got alpha = ${fmt(c.alpha)}`);
  }
  if (both('partition', 'clients', 'shardsPerClient') && c.partition === 'shards') {
    const total = c.clients * c.shardsPerClient;
    if (!(total > 0) || !Number.isSafeInteger(total)) {
      problems.push(
        `partition 'shards': clients × shardsPerClient = ${c.clients} × ${c.shardsPerClient} is not a usable shard count`,
      );
    }
  }
  if (both('model', 'norm') && c.model === 'mlp' && c.norm === 'groupnorm') {
    problems.push(
      `model 'mlp' with norm 'groupnorm': normalization applies to the conv models ('lenet', 'wrn'); use norm 'none' with 'mlp'`,
    );
  }
  if (both('model', 'depth') && c.model === 'wrn' && (c.depth < 10 || (c.depth - 4) % 6 !== 0)) {
    const lo = Math.max(10, c.depth - ((((c.depth - 4) % 6) + 6) % 6));
    const hi = lo < c.depth ? lo + 6 : lo;
    const near = lo === hi ? `${lo}` : `${lo} or ${hi}`;
    problems.push(
      `model 'wrn' with depth ${c.depth}: WRN depth must satisfy (depth - 4) % 6 == 0 with at least one ` +
        `unit per stage (10, 16, 22, 28, ...); nearest: ${near}`,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { ...c, hidden: [...c.hidden] };
}

/** Number of worker threads to use ('auto' = os.availableParallelism()). */
export function resolveWorkers(config: Pick<RunConfig, 'workers'>): number {
  return config.workers === 'auto' ? Math.max(1, availableParallelism()) : config.workers;
}

// ---------------------------------------------------------------------------------------------------
// Server settings (`baffle serve`): the run configuration plus how the server listens and runs rounds.

export interface ServerConfig {
  /** Interface to listen on; loopback unless told otherwise. */
  host: string;
  /** TCP port; 0 = any free port (printed at start). */
  port: number;
  /** Authenticated clients that must be connected before the first round; null = the participants per round. */
  minClients: number | null;
  /** Seconds a round attempt waits for its participants' results. */
  roundTimeout: number;
  /** Fraction of a round's participants whose valid results the round needs before it commits, in (0, 1]. */
  quorum: number;
  /** Seconds between heartbeats; a connection silent for 3 heartbeats is dropped. */
  heartbeat: number;
  /** Largest frame a client may send, in bytes; null = derived from K and the model size. */
  maxFrameBytes: number | null;
}

export type ServerKey = keyof ServerConfig;

export const DEFAULT_SERVER_CONFIG: Readonly<ServerConfig> = Object.freeze({
  host: '127.0.0.1',
  port: 7100,
  minClients: null,
  roundTimeout: 60,
  quorum: 0.5,
  heartbeat: 5,
  maxFrameBytes: null,
} satisfies ServerConfig);

export const SERVER_CONFIG_KEYS: Readonly<Record<ServerKey, string>> = Object.freeze({
  host: "interface to listen on (default loopback; '0.0.0.0' = all interfaces, use TLS there)",
  port: 'TCP port to listen on; 0 = any free port',
  minClients: 'authenticated clients that must be connected before training starts; null = participants per round',
  roundTimeout: 'seconds a round attempt waits for results before it closes (late results are dropped)',
  quorum: "fraction of a round's participants whose valid results it needs to commit, in (0, 1]",
  heartbeat: 'seconds between heartbeats; a connection silent for 3 heartbeats is dropped',
  maxFrameBytes: 'largest frame a client may send (bytes, ≥ 1024); null = derived from K and the model size',
} satisfies Record<ServerKey, string>);

/** True when `key` is a server setting (accepted by `baffle serve`, not by `baffle run`). */
export function isServerKey(key: string): key is ServerKey {
  return Object.hasOwn(SERVER_CONFIG_KEYS, key);
}

/**
 * The configuration of `baffle serve`: the layers hold run keys and server keys side by side. Server keys are
 * validated here, the rest by resolveConfig; all problems of both are reported together.
 */
export function resolveServeConfig(
  layers: readonly Record<string, unknown>[],
  sources?: readonly string[],
): { run: RunConfig; server: ServerConfig } {
  const problems: string[] = [];
  const merged: Record<string, unknown> = { ...DEFAULT_SERVER_CONFIG };
  const origin: Partial<Record<string, string>> = {};
  const runLayers = layers.map((layer, i) => {
    const rest: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(layer)) {
      if (isServerKey(key)) {
        if (value === undefined) continue;
        merged[key] = typeof value === 'bigint' ? bigintToNumber(value) : value;
        if (sources?.[i]) origin[key] = sources[i];
      } else rest[key] = value;
    }
    return rest;
  });
  for (const key of Object.keys(SERVER_RULES) as ServerKey[]) {
    const from = origin[key] ? ` (from ${origin[key]})` : '';
    if (!SERVER_RULES[key].test(merged[key])) problems.push(`${key}: got ${fmt(merged[key])}${from}; allowed: ${SERVER_RULES[key].allowed}`);
  }
  let run: RunConfig | null = null;
  try {
    run = resolveConfig(runLayers, sources);
  } catch (e) {
    if (e instanceof ConfigError) problems.unshift(...e.problems);
    else throw e;
  }
  if (run && typeof merged.minClients === 'number' && merged.minClients > run.clients) {
    problems.push(`minClients: ${merged.minClients} is more than the ${run.clients} clients of the federation`);
  }
  if (problems.length > 0 || run === null) throw new ConfigError(problems);
  return { run, server: merged as unknown as ServerConfig };
}

/** Help text of the server keys. */
export function formatServerConfigHelp(): string {
  const keys = Object.keys(SERVER_CONFIG_KEYS) as ServerKey[];
  const width = Math.max(...keys.map((k) => k.length));
  return keys
    .map((k) => `  ${k.padEnd(width)}  ${SERVER_CONFIG_KEYS[k]} (default: ${JSON.stringify(DEFAULT_SERVER_CONFIG[k])})`)
    .join('\n');
}

/** Help text: one line per key with its default and documentation. */
export function formatConfigHelp(): string {
  const width = Math.max(...KNOWN_KEYS.map((k) => k.length));
  return KNOWN_KEYS.map(
    (k) => `  ${k.padEnd(width)}  ${CONFIG_KEYS[k]} (default: ${JSON.stringify(DEFAULT_CONFIG[k])})`,
  ).join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Rules

interface Rule {
  allowed: string;
  test(v: unknown): boolean;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function oneOf(...values: readonly string[]): Rule {
  return { allowed: `one of ${values.map((s) => `'${s}'`).join(', ')}`, test: (v) => values.includes(v as string) };
}
function int(min: number, max = Number.MAX_SAFE_INTEGER): Rule {
  const allowed = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`;
  return { allowed, test: (v) => isInt(v) && v >= min && v <= max };
}
/** A finite number in the given interval; `lo`/`hi` undefined = unbounded, `*Open` = strict. */
function num(lo: number | undefined, loOpen: boolean, hi?: number, hiOpen = false): Rule {
  let allowed: string;
  if (hi === undefined) allowed = `a number ${loOpen ? '>' : '≥'} ${lo}`;
  else allowed = `a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
  return {
    allowed,
    test: (v) =>
      isNum(v) &&
      (lo === undefined || (loOpen ? v > lo : v >= lo)) &&
      (hi === undefined || (hiOpen ? v < hi : v <= hi)),
  };
}
function orValue(rule: Rule, literal: string | null, label: string): Rule {
  return { allowed: `${rule.allowed}, or ${label}`, test: (v) => v === literal || rule.test(v) };
}

const RULES: Record<ConfigKey, Rule> = {
  dataset: oneOf('mnist-10k', 'fashion-mnist', 'mnist', 'cifar10'),
  dataDir: {
    allowed: 'a non-empty directory path (string), or null',
    test: (v) => v === null || (typeof v === 'string' && v.trim() !== ''),
  },
  model: oneOf('mlp', 'lenet', 'wrn'),
  hidden: {
    allowed: 'an array of positive integers, e.g. [256, 128]',
    test: (v) => Array.isArray(v) && v.every((h) => isInt(h) && h >= 1),
  },
  depth: int(1),
  width: int(1),
  activation: oneOf('hardswish', 'relu', 'selu', 'gelu'),
  norm: oneOf('groupnorm', 'none'),
  clients: int(1),
  participation: num(0, true, 1, false),
  partition: oneOf('iid', 'dirichlet', 'shards'),
  alpha: num(0, true),
  shardsPerClient: int(1),
  batchSize: int(1),
  epochs: num(0, true),
  algorithm: oneOf('baffle', 'bp'),
  K: int(1),
  sigma: num(0, true),
  scheme: oneOf('forward', 'central'),
  seedPolicy: oneOf('shared', 'per-client'),
  fedopt: oneOf('fedsgd', 'fedavg'),
  localSteps: int(1),
  localLr: num(0, true),
  localOptimizer: oneOf('sgd', 'adam'),
  optimizer: oneOf('adam', 'sgd'),
  lr: num(0, true),
  beta1: num(0, false, 1, true),
  beta2: num(0, false, 1, true),
  momentum: num(0, false, 1, true),
  weightDecay: num(0, false),
  warmupEpochs: num(0, false),
  warmupLr: orValue(num(0, true), null, 'null (= use lr)'),
  clip: { allowed: 'a number ≥ 0 (0 = no clipping)', test: (v) => isNum(v) && v >= 0 },
  ema: { allowed: 'true or false', test: (v) => typeof v === 'boolean' },
  emaDecay: num(0, true, 1, true),
  emaEvery: oneOf('epoch', 'step'),
  evalEvery: orValue(int(1), 'epoch', "'epoch'"),
  maxSteps: orValue(int(0), null, 'null (= no cap)'),
  testSubset: orValue(int(0), null, 'null (= whole test split)'),
  seed: int(0, 2 ** 32 - 1),
  workers: orValue(int(1), 'auto', "'auto'"),
};

const SERVER_RULES: Record<ServerKey, Rule> = {
  host: { allowed: 'a non-empty host name or IP address', test: (v) => typeof v === 'string' && /^[A-Za-z0-9.:_\-[\]]+$/.test(v) },
  port: int(0, 65535),
  minClients: orValue(int(1), null, 'null (= participants per round)'),
  roundTimeout: num(0, true),
  quorum: num(0, true, 1, false),
  heartbeat: num(0, true),
  maxFrameBytes: orValue(int(1024), null, 'null (= derived)'),
};

// ---------------------------------------------------------------------------------------------------
// Helpers

function bigintToNumber(v: bigint): number | bigint {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

function fmt(v: unknown): string {
  let s: string;
  if (typeof v === 'bigint') s = `${v}`;
  else if (typeof v === 'number') s = String(v);
  else if (v === undefined) s = 'undefined';
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch {
      s = String(v);
    }
  }
  if (s.length > 60) s = `${s.slice(0, 57)}...`;
  if (typeof v === 'string' || v === null || typeof v === 'number' || typeof v === 'boolean') return s;
  return `${s} (${Array.isArray(v) ? 'array' : typeof v})`;
}

/** Closest known key: same letters ignoring case, '_' and '-', or Levenshtein distance ≤ 2. */
export function suggestKey(key: string): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const exact = KNOWN_KEYS.find((k) => norm(k) === norm(key));
  if (exact) return exact;
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of KNOWN_KEYS) {
    const d = levenshtein(key.toLowerCase(), k.toLowerCase());
    // d < key.length: don't "correct" a one- or two-letter key into an unrelated one.
    if (d <= 2 && d < key.length && d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

function lineCol(text: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      col = 1;
    } else col++;
  }
  return `${line}:${col}`;
}

/**
 * Offset of a JSON syntax error: from V8's "at position N" when given, otherwise (Node 20 omits it
 * for "Unexpected token" errors) found with a small JSON scanner.
 */
function jsonErrorOffset(text: string, message: string): number | null {
  const m = /at position (\d+)/.exec(message);
  if (m) return Number(m[1]);
  try {
    return scanJson(text);
  } catch {
    return null;
  }
}

/** Returns the offset of the first JSON syntax error in `s`, or null if none found. */
function scanJson(s: string): number | null {
  let i = 0;
  class Bad {
    constructor(readonly at: number) {}
  }
  const ws = () => {
    while (i < s.length && ' \t\n\r'.includes(s[i]!)) i++;
  };
  const fail = (): never => {
    throw new Bad(i);
  };
  const lit = (w: string) => {
    for (const ch of w) {
      if (s[i] !== ch) fail();
      i++;
    }
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= s.length) fail();
      const ch = s[i]!;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch.charCodeAt(0) < 0x20) fail();
      if (ch === '\\') {
        i++;
        const e = s[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (!/[0-9a-fA-F]/.test(s[i + k] ?? '')) {
              i += k;
              fail();
            }
          }
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail();
      } else i++;
    }
  };
  const number = () => {
    const re = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m || m[0] === '' || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const ch = s[i];
    if (ch === '{') {
      i++;
      ws();
      if (s[i] === '}') return void i++;
      for (;;) {
        ws();
        if (s[i] !== '"') fail();
        str();
        ws();
        if (s[i] !== ':') fail();
        i++;
        value();
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === '}') return void i++;
        else fail();
      }
    } else if (ch === '[') {
      i++;
      ws();
      if (s[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === ']') return void i++;
        else fail();
      }
    } else if (ch === '"') str();
    else if (ch === 't') lit('true');
    else if (ch === 'f') lit('false');
    else if (ch === 'n') lit('null');
    else if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) number();
    else fail();
  };
  try {
    value();
    ws();
    if (i < s.length) fail();
    return null;
  } catch (e) {
    if (e instanceof Bad) return e.at;
    throw e;
  }
}

/** The configuration of a command: defaults ← the --config file (if any) ← the --set overrides, validated. */
export function configFromArgs(configFile: string | undefined, sets: readonly string[]): RunConfig {
  const layers: Record<string, unknown>[] = [];
  const sources: string[] = [];
  if (configFile) {
    layers.push(loadConfigFile(configFile));
    sources.push(configFile);
  }
  layers.push(overridesToLayer(sets));
  sources.push('--set');
  return resolveConfig(layers, sources);
}
