// Resolution of a configuration: defaults ← layers (a file, then `--set` overrides, …), every key validated
// by its rule (keys.ts) and every combination checked, all problems reported together before any work starts.
// Platform-free: reading files is the caller's job (src/node/config.ts); parseConfigText takes their text.

import { parse as parseToml } from 'smol-toml';
import { UserError } from '../errors.ts';
import { FASHION_MNIST_DEFAULT_DIR } from '../data/names.ts';
import { assumedByzantine, participantsOf, secAggThresholdOf } from './derived.ts';
import {
  DEFAULT_SERVER_CONFIG,
  isOnnxPath,
  isServerKey,
  KNOWN_KEYS,
  RUN_KEYS,
  SERVER_KEYS,
  ZOO_ONLY_KEYS,
  type ConfigKey,
  type KeySpec,
  type RunConfig,
  type ServerConfig,
  type ServerKey,
} from './keys.ts';
import { INVALID } from './rules.ts';

/** Every problem found in a configuration, one line each. */
export class ConfigError extends UserError {
  readonly problems: string[];
  constructor(problems: string[] | string, hint?: string) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(
      list.length === 1
        ? `invalid configuration: ${list[0]}`
        : `invalid configuration (${list.length} problems):\n${list.map((p) => `  - ${p}`).join('\n')}`,
      { hint },
    );
    this.name = 'ConfigError';
    this.problems = list;
  }
}

// ---------------------------------------------------------------------------------------------------
// Text of files and overrides

/**
 * The settings in the text of a .json or .toml configuration file (not yet validated; pass them to
 * resolveConfig). Errors are ConfigErrors naming the file, and the line:column when known.
 */
export function parseConfigText(path: string, text: string): Record<string, unknown> {
  const format = configFormat(path);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM
  let data: unknown;
  if (format === 'json') {
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

/** The format of a configuration file by its extension; a ConfigError for any other. */
export function configFormat(path: string): 'json' | 'toml' {
  const ext = /\.[^./\\]+$/.exec(path)?.[0].toLowerCase() ?? '';
  if (ext === '.json' || ext === '.toml') return ext === '.json' ? 'json' : 'toml';
  throw new ConfigError(`config file '${path}': unsupported extension '${ext || '(none)'}'; use a .json or .toml file`);
}

/** Keys whose values are paths: a directory named "2024" or "true" stays a string. */
const PATH_KEYS = new Set(['dataDir', 'init', 'model']);

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
  if (PATH_KEYS.has(key) && value !== null && typeof value !== 'string') value = raw;
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

/** Merges `layers` over the table's defaults and parses every key; unknown keys go to `unknown`. */
function mergeAndParse<K extends string>(
  table: Record<K, KeySpec<unknown>>,
  layers: readonly Record<string, unknown>[],
  sources: readonly (string | undefined)[] | undefined,
  problems: string[],
  accept: (key: string) => boolean,
): { values: Partial<Record<K, unknown>>; origin: Partial<Record<string, string>>; raw: Record<string, unknown> } {
  const raw: Record<string, unknown> = {};
  const origin: Partial<Record<string, string>> = {};
  layers.forEach((layer, i) => {
    const src = sources?.[i];
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined || !accept(key)) continue;
      raw[key] = typeof value === 'bigint' ? bigintToNumber(value) : value;
      if (src) origin[key] = src;
    }
  });
  const values: Partial<Record<K, unknown>> = {};
  for (const key of Object.keys(table) as K[]) {
    const spec = table[key];
    const from = origin[key] ? ` (from ${origin[key]})` : '';
    if (!(key in raw)) {
      values[key] = structuredClone(spec.default);
      continue;
    }
    const v = raw[key];
    const parsed = spec.rule.parse(v);
    if (parsed !== INVALID) {
      values[key] = parsed;
      continue;
    }
    const why = spec.explain?.(v);
    problems.push(why ? `${key}: ${why}${from}` : `${key}: got ${fmt(v)}${from}; allowed: ${spec.rule.allowed}`);
  }
  return { values, origin, raw };
}

/**
 * Merge the defaults ← layers[0] ← layers[1] ← ... (typically file, then --set overrides), then validate
 * every key and every combination. Throws one ConfigError listing all problems. `sources` optionally names
 * each layer (e.g. the file path, '--set') for the error messages. Values that are `undefined` do not override.
 */
export function resolveConfig(layers: readonly Record<string, unknown>[], sources?: readonly string[]): RunConfig {
  const problems: string[] = [];
  layers.forEach((layer, i) => {
    const src = sources?.[i];
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined || (KNOWN_KEYS as string[]).includes(key)) continue;
      const hint = suggestKey(key);
      problems.push(
        `unknown key '${key}'${src ? ` (in ${src})` : ''}` +
          (hint ? `; did you mean '${hint}'?` : `; known keys: ${KNOWN_KEYS.join(', ')}`),
      );
    }
  });
  const { values, raw } = mergeAndParse(RUN_KEYS, layers, sources, problems, (k) => (KNOWN_KEYS as string[]).includes(k));
  const ok = new Set(Object.keys(values) as ConfigKey[]);
  const c = values as RunConfig;
  // Derived default: Fashion-MNIST has a standard install location.
  if (ok.has('dataset') && ok.has('dataDir') && c.dataset === 'fashion-mnist' && c.dataDir === null) c.dataDir = FASHION_MNIST_DEFAULT_DIR;
  problems.push(...combinationProblems(c, ok, raw));
  if (problems.length > 0) throw new ConfigError(problems);
  return c;
}

/** Problems of keys that are valid one by one but not together. */
function combinationProblems(c: RunConfig, ok: ReadonlySet<ConfigKey>, raw: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const both = (...keys: ConfigKey[]) => keys.every((k) => ok.has(k));
  if (both('dataset', 'dataDir') && (c.dataset === 'mnist' || c.dataset === 'cifar10') && c.dataDir === null) {
    problems.push(
      `dataset '${c.dataset}' needs dataDir: set dataDir to the directory holding the ` +
        (c.dataset === 'mnist' ? 'MNIST IDX files' : 'CIFAR-10 binary batches') +
        ` (or use dataset 'mnist-10k', which is bundled)`,
    );
  }
  if (ok.has('partition') && c.partition === 'dirichlet' && !ok.has('alpha')) {
    problems.push(`partition 'dirichlet' needs alpha > 0 (the Dirichlet concentration), got alpha = ${fmt(raw.alpha)}`);
  }
  if (both('partition', 'clients', 'shardsPerClient') && c.partition === 'shards') {
    const total = c.clients * c.shardsPerClient;
    if (!(total > 0) || !Number.isSafeInteger(total)) {
      problems.push(`partition 'shards': clients × shardsPerClient = ${c.clients} × ${c.shardsPerClient} is not a usable shard count`);
    }
  }
  const onnx = ok.has('model') && isOnnxPath(c.model);
  if (onnx) {
    // An imported model brings its own architecture: a zoo key set to anything but its default is a mistake.
    const set = ZOO_ONLY_KEYS.filter((k) => ok.has(k) && k in raw && JSON.stringify(c[k]) !== JSON.stringify(RUN_KEYS[k].default));
    if (set.length > 0) {
      problems.push(
        `model '${c.model}' is an ONNX file, which brings its own architecture: ${set.join(', ')} ` +
          `appl${set.length === 1 ? 'ies' : 'y'} to the zoo models ('mlp', 'lenet', 'wrn') only`,
      );
    }
    if (ok.has('algorithm') && c.algorithm === 'bp') {
      problems.push(
        `algorithm 'bp' with model '${c.model}': the backprop baseline runs the zoo models in tfjs and cannot run an ` +
          `imported ONNX graph; for a backprop counterpart fine-tune a zoo model with init = <run directory>`,
      );
    }
  } else {
    if (both('model', 'norm') && c.model === 'mlp' && c.norm === 'groupnorm') {
      problems.push(`model 'mlp' with norm 'groupnorm': normalization applies to the conv models ('lenet', 'wrn'); use norm 'none' with 'mlp'`);
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
  }
  problems.push(...robustnessProblems(c, ok));
  problems.push(...perturbationProblems(c, ok, raw));
  problems.push(...secureAggregationProblems(c, ok));
  if (both('inputMean', 'inputStd') && c.inputMean.length > 1 && c.inputStd.length > 1 && c.inputMean.length !== c.inputStd.length) {
    problems.push(`inputMean has ${c.inputMean.length} values and inputStd ${c.inputStd.length}: give one value, or one per channel for both`);
  }
  return problems;
}

/** Problems of the direction distribution (perturbation, rank) with the keys it cannot go with (yet). */
function perturbationProblems(c: RunConfig, ok: ReadonlySet<ConfigKey>, raw: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  if (!(['perturbation', 'rank', 'algorithm'] as ConfigKey[]).every((k) => ok.has(k))) return problems;
  if (c.perturbation === 'gaussian') {
    if ('rank' in raw && c.rank !== RUN_KEYS.rank.default) problems.push(`rank ${c.rank} with perturbation 'gaussian': rank applies to perturbation 'lowrank'`);
    return problems;
  }
  if (c.algorithm === 'bp') {
    problems.push("perturbation 'lowrank' with algorithm 'bp': perturbation and rank apply to algorithm 'baffle' (the backprop baseline uses no directions)");
  }
  return problems;
}

/** Problems of the aggregation rule, the simulated attack and differential privacy together. */
function robustnessProblems(c: RunConfig, ok: ReadonlySet<ConfigKey>): string[] {
  const problems: string[] = [];
  const keys: ConfigKey[] = ['aggregator', 'seedPolicy', 'algorithm', 'fedopt', 'clients', 'participation', 'attack', 'attackFraction', 'byzantine', 'krumSelect', 'dpClip', 'noiseMultiplier', 'targetEpsilon'];
  if (!keys.every((k) => ok.has(k))) return problems;
  const m = participantsOf(c);
  const coordinate = ['median', 'trimmed-mean', 'krum', 'multi-krum', 'centered-clip', 'cosine-screen'].includes(c.aggregator);
  if (coordinate && c.seedPolicy === 'per-client' && c.algorithm === 'baffle') {
    problems.push(
      `aggregator '${c.aggregator}' with seedPolicy 'per-client': each client's scalars multiply its own directions, so ` +
        `their vectors cannot be compared coordinate by coordinate; use seedPolicy 'shared', or aggregator 'norm-screen' (screens whole clients)`,
    );
  }
  if (c.fedopt === 'fedavg' && (c.aggregator !== 'mean' || c.attack !== 'none' || c.dpClip !== null)) {
    problems.push(`fedopt 'fedavg' with ${c.aggregator !== 'mean' ? `aggregator '${c.aggregator}'` : c.attack !== 'none' ? `attack '${c.attack}'` : 'dpClip'}: robust aggregation, attacks and differential privacy apply to FedSGD rounds (fedopt 'fedsgd')`);
  }
  if (c.attack === 'none' && c.attackFraction > 0) problems.push(`attackFraction ${c.attackFraction} with attack 'none': name the attack ('sign-flip', 'scale', 'gaussian', 'adaptive')`);
  if (c.aggregator === 'krum' || c.aggregator === 'multi-krum') {
    const f = assumedByzantine(c);
    if (m < 2 * f + 3) {
      problems.push(`aggregator '${c.aggregator}' with ${m} participants per round and byzantine = ${f}: Krum needs at least 2·byzantine + 3 = ${2 * f + 3} participants (raise clients or participation, or lower byzantine / attackFraction)`);
    }
    if (c.aggregator === 'multi-krum' && c.krumSelect !== null && c.krumSelect > m) problems.push(`krumSelect ${c.krumSelect} is more than the ${m} participants per round`);
  }
  if (c.dpClip === null) {
    if (c.noiseMultiplier !== null || c.targetEpsilon !== null) problems.push(`${c.noiseMultiplier !== null ? 'noiseMultiplier' : 'targetEpsilon'} without dpClip: differential privacy needs the clipping bound dpClip`);
  } else {
    if (c.noiseMultiplier === null && c.targetEpsilon === null) problems.push('dpClip without noiseMultiplier or targetEpsilon: give the noise (noiseMultiplier) or the privacy budget (targetEpsilon)');
    if (c.noiseMultiplier !== null && c.targetEpsilon !== null) problems.push('noiseMultiplier and targetEpsilon together: give one (targetEpsilon chooses the noise multiplier)');
    if (c.algorithm === 'baffle' && c.seedPolicy === 'per-client') problems.push("dpClip with seedPolicy 'per-client': the noised sum of K-vectors needs shared directions; use seedPolicy 'shared'");
    if (c.aggregator !== 'mean') problems.push(`dpClip with aggregator '${c.aggregator}': the privacy accountant covers the noised mean; use aggregator 'mean'`);
  }
  return problems;
}

/** Problems of secure aggregation with the rest of the configuration (it sums shared-direction K-vectors only). */
function secureAggregationProblems(c: RunConfig, ok: ReadonlySet<ConfigKey>): string[] {
  const keys: ConfigKey[] = ['secureAggregation', 'secAggThreshold', 'seedPolicy', 'aggregator', 'attack', 'algorithm', 'fedopt', 'dpClip', 'dpNoise', 'clients', 'participation'];
  if (!keys.every((k) => ok.has(k))) return [];
  const problems: string[] = [];
  if (!c.secureAggregation) {
    if (c.secAggThreshold !== null) problems.push('secAggThreshold without secureAggregation: set secureAggregation = true, or drop secAggThreshold');
    return problems;
  }
  const why = 'the server only learns the sum of the K-vectors';
  if (c.algorithm === 'bp') problems.push(`secureAggregation with algorithm 'bp': secure aggregation sums BAFFLE's K scalars; the backprop baseline sends gradients in the clear`);
  if (c.fedopt !== 'fedsgd') problems.push(`secureAggregation with fedopt '${c.fedopt}': secure aggregation sums FedSGD's K scalars; use fedopt 'fedsgd'`);
  if (c.seedPolicy !== 'shared') problems.push(`secureAggregation with seedPolicy '${c.seedPolicy}': ${why}, which is meaningful only when every client's scalars multiply the same directions; use seedPolicy 'shared'`);
  if (c.aggregator !== 'mean') problems.push(`secureAggregation with aggregator '${c.aggregator}': ${why}, and a robust rule needs every client's vector; use aggregator 'mean'`);
  if (c.attack !== 'none') problems.push(`secureAggregation with attack '${c.attack}': the simulated Byzantine clients replace vectors the server never sees; use attack 'none'`);
  if (c.dpClip !== null && c.dpNoise === 'central') {
    problems.push("secureAggregation with dpClip and dpNoise 'central': central noise is added by the server to a sum it sees in the clear, and under secure aggregation each client's share of the noise must be added before masking; use dpNoise 'distributed'");
  }
  const m = participantsOf(c);
  if (m < 2) problems.push(`secureAggregation with ${m} participant per round: a sum of one vector is that vector; raise clients or participation`);
  else if (secAggThresholdOf(c) > m) problems.push(`secAggThreshold ${secAggThresholdOf(c)} is more than the ${m} participants per round`);
  return problems;
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
  const { values } = mergeAndParse(SERVER_KEYS, layers, sources, problems, isServerKey);
  const runLayers = layers.map((layer) => Object.fromEntries(Object.entries(layer).filter(([k]) => !isServerKey(k))));
  let run: RunConfig | null = null;
  try {
    run = resolveConfig(runLayers, sources);
  } catch (e) {
    if (e instanceof ConfigError) problems.unshift(...e.problems);
    else throw e;
  }
  const server = { ...DEFAULT_SERVER_CONFIG, ...values } as ServerConfig;
  if (run && typeof server.minClients === 'number' && server.minClients > run.clients) {
    problems.push(`minClients: ${server.minClients} is more than the ${run.clients} clients of the federation`);
  }
  if (run && run.perturbation === 'lowrank') {
    problems.push("perturbation 'lowrank' with baffle serve: the network protocol does not carry low-rank directions yet (clients would perturb with Gaussian ones); use baffle run, or perturbation 'gaussian'");
  }
  if (problems.length > 0 || run === null) throw new ConfigError(problems);
  return { run, server };
}

/** Help text of a key table: one line per key with its documentation and default. */
function formatHelp(docs: Readonly<Record<string, { doc: string; default: unknown }>>): string {
  const keys = Object.keys(docs);
  const width = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `  ${k.padEnd(width)}  ${docs[k]!.doc} (default: ${JSON.stringify(docs[k]!.default)})`).join('\n');
}

/** Help text: one line per run key with its default and documentation. */
export function formatConfigHelp(): string {
  return formatHelp(RUN_KEYS);
}

/** Help text of the server keys. */
export function formatServerConfigHelp(): string {
  return formatHelp(SERVER_KEYS);
}

export type { ServerKey };

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
