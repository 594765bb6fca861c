// Every configuration key, once: its rule, default and one line of documentation. The types RunConfig and
// ServerConfig, the defaults, `baffle keys` and the validation all derive from these two tables.
// docs/baffle-spec.md says why the defaults are what they are (§3 reference recipe, §4 guidelines).

import { DATASET_NAMES, FASHION_MNIST_DEFAULT_DIR } from '../data/names.ts';
import { arrayOf, bool, int, INVALID, isNum, nonEmptyString, num, oneOf, oneOrMany, or, type Rule } from './rules.ts';

export interface KeySpec<T> {
  rule: Rule<T>;
  default: T;
  doc: string;
  /** A value that passes no rule but deserves an explanation instead of "allowed: …" (e.g. batchnorm). */
  explain?(v: unknown): string | null;
}

function key<T>(rule: Rule<T>, def: NoInfer<T>, doc: string, explain?: (v: unknown) => string | null): KeySpec<T> {
  return explain ? { rule, default: def, doc, explain } : { rule, default: def, doc };
}

export const ZOO_MODELS = ['mlp', 'lenet', 'wrn'] as const;
export type ZooModelName = (typeof ZOO_MODELS)[number];
/** The path of an ONNX model file, as the `model` key takes it. */
export type OnnxModelPath = `${string}.onnx`;

/** True when the `model` value names an ONNX file rather than a zoo architecture. */
export function isOnnxPath(model: string): model is OnnxModelPath {
  return /\.onnx$/i.test(model) && !(ZOO_MODELS as readonly string[]).includes(model);
}

const modelRule: Rule<ZooModelName | OnnxModelPath> = {
  allowed: "one of 'mlp', 'lenet', 'wrn', or the path of an ONNX file ending in .onnx",
  parse: (v) => {
    if (typeof v !== 'string') return INVALID;
    if ((ZOO_MODELS as readonly string[]).includes(v)) return v as ZooModelName;
    return isOnnxPath(v) && v.trim().length > '.onnx'.length ? v : INVALID;
  },
};

const SELECTOR = /^!?(all|none|(last|first):[1-9]\d*|(name|op|node):.+)$/;
const selectorRule: Rule<string> = {
  allowed: 'a selector',
  // One selector, or several separated by commas (as the importer's grammar allows).
  parse: (v) => (typeof v === 'string' && v.split(',').every((part) => SELECTOR.test(part.trim())) ? v.trim() : INVALID),
};

const channelValues = (what: string, positive: boolean): Rule<number[]> =>
  oneOrMany<number>(
    { allowed: what, parse: (v) => (isNum(v) && (!positive || v > 0) ? v : INVALID) },
    `a number or one number per input channel${positive ? ', each > 0' : ''}, e.g. ${positive ? '0.3081' : '0.1307'} or [${positive ? '0.247, 0.243, 0.261' : '0.491, 0.482, 0.447'}]`,
  );

const BATCHNORM_REFUSAL =
  "'batchnorm' is not supported: the K perturbed train-mode forward passes corrupt the BatchNorm running " +
  "statistics, and BatchNorm is fragile under non-IID client data; use 'groupnorm' or 'none' (an imported " +
  "model's inference-mode BatchNormalization, with frozen statistics, is fine: see docs/models.md)";

export const RUN_KEYS = {
  dataset: key(oneOf(...DATASET_NAMES), 'mnist-10k', "data set: 'mnist-10k' (bundled 10k digits), 'fashion-mnist', 'mnist' or 'cifar10' (these two need dataDir)"),
  dataDir: key(
    or(nonEmptyString('a non-empty directory path (string)'), null, 'null'),
    null,
    `directory of the IDX / CIFAR binary files; null = none (fashion-mnist defaults to ${FASHION_MNIST_DEFAULT_DIR})`,
  ),
  model: key(
    modelRule,
    'mlp',
    "model: 'mlp', 'lenet' (conv, 26,730 params on MNIST), 'wrn' (pre-activation wide ResNet), or the path of an ONNX classifier (FILE.onnx) to train or fine-tune",
  ),
  trainable: key(
    oneOrMany(selectorRule, "selectors, e.g. 'all', ['last:1'], ['op:Gemm'], ['name:fc*', '!name:*.bias']: all, none, last:N, first:N, name:GLOB, op:TYPE, node:GLOB, and !… to exclude"),
    ['all'],
    "which parameters train (the rest stay frozen): 'all', 'last:N' (the last N weighted layers), 'first:N', 'name:GLOB', 'op:TYPE' (consumed by that op), 'node:GLOB' (node name); '!…' excludes",
  ),
  init: key(
    or(nonEmptyString('a path (string)'), null, "null (= the model's own initialisation)"),
    null,
    "initial weights: a run directory (its model.onnx, else weights.json + weights.bin) or an ONNX file, matched by parameter name and shape; null = the seed-initialised zoo model, or the ONNX model's own weights",
  ),
  classSubset: key(
    or(arrayOf(int(0, 255), 'an array of class labels, e.g. [0, 1, 2, 3, 4]', 1), null, 'null (= every class)'),
    null,
    'train and evaluate on these classes only (labels keep their values, the model keeps its outputs), e.g. [0, 1, 2, 3, 4]; null = every class',
  ),
  inputMean: key(channelValues('a number', false), [0], 'per-channel mean subtracted from the [0, 1] pixels before the model (as torchvision Normalize); one value for all channels or one per channel'),
  inputStd: key(channelValues('a number > 0', true), [1], 'per-channel standard deviation the pixels are divided by after inputMean'),
  hidden: key(arrayOf(int(1), 'an array of positive integers, e.g. [256, 128]'), [128], 'MLP hidden layer sizes, positive integers, e.g. [256, 128]'),
  depth: key(int(1), 10, 'WRN depth d, with (d - 4) % 6 == 0 (10, 16, 22, ...)'),
  width: key(int(1), 2, 'WRN widen factor w (stage widths 16w / 32w / 64w)'),
  activation: key(
    oneOf('hardswish', 'relu', 'selu', 'gelu'),
    'hardswish',
    "activation: 'hardswish' (recommended: smooth for finite differences), 'relu', 'selu' or 'gelu'",
  ),
  norm: key(
    oneOf('groupnorm', 'none'),
    'none',
    "normalization for conv models: 'none' or 'groupnorm' (BatchNorm is refused, see the spec §4)",
    (v) => (v === 'batchnorm' ? BATCHNORM_REFUSAL : null),
  ),
  clients: key(int(1), 10, 'number of federated clients'),
  participation: key(num(0, true, 1, false), 1.0, 'fraction of clients taking part in each round, in (0, 1]'),
  partition: key(
    oneOf('iid', 'dirichlet', 'shards'),
    'iid',
    "how training data is split over clients: 'iid', 'dirichlet' (label skew, see alpha) or 'shards'",
  ),
  alpha: key(num(0, true), 0.5, "Dirichlet concentration for partition 'dirichlet' (> 0; smaller = more non-IID)"),
  shardsPerClient: key(int(1), 2, "label-sorted shards per client for partition 'shards'"),
  batchSize: key(int(1), 32, 'minibatch size of each client forward pass'),
  epochs: key(num(0, true), 20, 'training length in epochs (one epoch = one pass over each client shard); > 0, may be fractional'),
  algorithm: key(
    oneOf('baffle', 'bp'),
    'baffle',
    "'baffle' (clients run forward passes only) or 'bp' (backprop baseline: clients compute exact gradients with tfjs autograd; K, sigma, scheme, seedPolicy and clip do not apply)",
  ),
  K: key(int(1), 100, 'number of perturbation directions per client per step (uplink = K scalars)'),
  sigma: key(num(0, true), 1e-4, 'perturbation scale σ (keep well above the quantization step of low-precision clients)'),
  scheme: key(oneOf('forward', 'central'), 'forward', "difference scheme: 'forward' (K+1 passes) or 'central' (2K passes)"),
  perturbation: key(
    oneOf('gaussian', 'lowrank'),
    'gaussian',
    "direction distribution: 'gaussian' (z ~ N(0, I_n), the paper's) or 'lowrank' (each weight matrix gets z = A Bᵀ/√rank from Gaussian A, B, biases stay Gaussian: (m+p)·rank draws instead of m·p; docs/directions.md); baffle run only",
  ),
  rank: key(int(1), 1, "perturbation 'lowrank': the rank r of each weight matrix's direction A Bᵀ/√r (integer ≥ 1)"),
  memberBatch: key(
    bool,
    true,
    "perturbation 'lowrank' on a zoo mlp: a client step runs all its K+1 members (2K+1 central) in one engine run, members on the batch axis (Wx + σ·A(Bᵀx)/√r per layer) instead of one pass per direction with W + σ·A Bᵀ/√r materialised; losses agree with the per-pass path to float32 rounding, not bit for bit, and do not depend on the worker count (simulation only; other models and baffle join keep the per-pass path; false reproduces earlier lowrank runs)",
  ),
  seedPolicy: key(
    oneOf('shared', 'per-client'),
    'per-client',
    "'per-client' (own directions per client, lower variance) or 'shared' (same directions, sum-only aggregation)",
  ),
  fedopt: key(oneOf('fedsgd', 'fedavg'), 'fedsgd', "'fedsgd' (one ZO estimate per round) or 'fedavg' (clients take localSteps local ZO steps)"),
  localSteps: key(int(1), 5, 'fedavg: local ZO steps per round'),
  localLr: key(num(0, true), 0.01, 'fedavg: client learning rate of the local ZO steps'),
  localOptimizer: key(oneOf('sgd', 'adam'), 'sgd', "fedavg: client optimizer, 'sgd' (replayable seed log) or 'adam' (uploads a model delta)"),
  optimizer: key(oneOf('adam', 'sgd'), 'adam', "server optimizer: 'adam' or 'sgd'"),
  lr: key(num(0, true), 1e-2, 'server learning rate'),
  beta1: key(num(0, false, 1, true), 0.9, 'Adam β1, in [0, 1)'),
  beta2: key(num(0, false, 1, true), 0.99, 'Adam β2, in [0, 1)'),
  momentum: key(num(0, false, 1, true), 0.9, 'SGD momentum, in [0, 1)'),
  weightDecay: key(num(0, false), 5e-4, 'weight decay (≥ 0)'),
  warmupEpochs: key(num(0, false), 0, 'epochs of learning-rate warm-up at warmupLr (0 = none)'),
  warmupLr: key(or(num(0, true), null, 'null (= use lr)'), null, 'learning rate during warm-up; null = use lr'),
  clip: key(
    { allowed: 'a number ≥ 0 (0 = no clipping)', parse: (v) => (isNum(v) && v >= 0 ? v : INVALID) },
    0.3,
    'rescale ĝ so its largest absolute entry is ≤ clip; 0 = no clipping',
  ),
  ema: key(bool, true, 'keep an exponential moving average of the weights and evaluate with it'),
  emaDecay: key(num(0, true, 1, true), 0.995, 'EMA decay, in (0, 1), warmed up as min(decay, (1 + t) / (10 + t))'),
  emaEvery: key(oneOf('epoch', 'step'), 'epoch', "update the EMA once per 'epoch' (the official recipe) or every 'step'"),
  evalEvery: key(or(int(1), 'epoch', "'epoch'"), 'epoch', "evaluate every 'epoch' or every N server steps (positive integer)"),
  maxSteps: key(or(int(0), null, 'null (= no cap)'), null, 'stop after this many server steps; null = no cap (stop after epochs)'),
  testSubset: key(or(int(0), null, 'null (= whole test split)'), null, 'evaluate on the first N test examples; null = whole test split'),
  aggregator: key(
    oneOf('mean', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'centered-clip', 'norm-screen', 'cosine-screen'),
    'mean',
    "how the server combines the clients' vectors: 'mean' (example-weighted), 'median', 'trimmed-mean' (trimFraction), 'krum', 'multi-krum' (byzantine, krumSelect), 'centered-clip', 'norm-screen' (drops whole clients by norm; the only robust rule for per-client directions), or 'cosine-screen' (drops clients pointing away from the median or too large, averages the rest; shared directions)",
  ),
  trimFraction: key(num(0, false, 0.5, true), 0.1, "trimmed-mean: the fraction β trimmed from each end of every coordinate, in [0, 0.5)"),
  byzantine: key(or(int(0), null, 'null (= round(attackFraction × participants))'), null, 'krum / multi-krum: the Byzantine clients f the rule tolerates; needs participants ≥ 2f + 3'),
  krumSelect: key(or(int(1), null, 'null (= participants − byzantine)'), null, 'multi-krum: how many best-scored vectors are averaged'),
  centeredClipTau: key(or(num(0, true), null, 'null (= the median distance to the start)'), null, 'centered-clip: the clipping radius τ'),
  centeredClipIterations: key(int(1), 3, 'centered-clip: iterations'),
  screenFactor: key(num(1, false), 3, 'norm-screen and cosine-screen: clients whose vector norm exceeds this × the median norm are left out'),
  attack: key(
    oneOf('none', 'sign-flip', 'scale', 'gaussian', 'adaptive'),
    'none',
    "simulated Byzantine clients (baffle run only): 'sign-flip', 'scale' (attackScale), 'gaussian' (attackNoise), 'adaptive' (knows the honest vectors, Fang et al. 2020), or 'none'",
  ),
  attackFraction: key(num(0, false, 0.5, true), 0, 'fraction of the clients that are Byzantine (a fixed set drawn from the seed), in [0, 0.5)'),
  attackScale: key({ allowed: 'a finite number', parse: (v) => (isNum(v) ? v : INVALID) }, -10, "attack 'scale': the factor a Byzantine client multiplies its vector by"),
  attackNoise: key(num(0, true), 200, "attack 'gaussian': the standard deviation of the noise a Byzantine client sends"),
  dpClip: key(or(num(0, true), null, 'null (= no differential privacy)'), null, "differential privacy: the L2 bound C of each client's K-vector (or gradient, for bp); the sum gets Gaussian noise of std noiseMultiplier·C"),
  noiseMultiplier: key(or(num(0, false), null, 'null (= from targetEpsilon)'), null, 'differential privacy: noise std / C; null = chosen from targetEpsilon'),
  targetEpsilon: key(or(num(0, true), null, 'null'), null, 'differential privacy: the ε at dpDelta the run may spend; picks the noise multiplier for the planned steps'),
  dpDelta: key(num(0, true, 1, true), 1e-5, 'differential privacy: δ of the reported (ε, δ)'),
  dpNoise: key(oneOf('central', 'distributed'), 'central', "differential privacy: 'central' (the server noises the sum) or 'distributed' (each client adds its share; the one that works with secureAggregation)"),
  secureAggregation: key(
    bool,
    false,
    "secure aggregation of the K scalars (Bonawitz et al. 2017, docs/secure-aggregation.md): the server learns only the sum of the participants' vectors; needs seedPolicy 'shared', aggregator 'mean', fedopt 'fedsgd'",
  ),
  secAggThreshold: key(
    or(int(2), null, 'null (= a majority of the participants: floor(participants / 2) + 1, at least 2)'),
    null,
    'secure aggregation: Shamir threshold t, the clients whose shares rebuild a secret; a round needs t clients to the end, and t − 1 colluding clients with the server learn nothing',
  ),
  secAggRange: key(
    num(0, true),
    100,
    'secure aggregation: every coordinate a client sends (its weighted scalars, weight and loss) is clipped to [−range, range] before the 32-bit fixed point',
  ),
  seed: key(int(0, 2 ** 32 - 1), 1, 'master random seed, integer in [0, 2^32 - 1]'),
  workers: key(or(int(1), 'auto', "'auto'"), 'auto', "worker threads for client simulation: positive integer or 'auto' (one per core)"),
};

export const SERVER_KEYS = {
  host: key(
    { allowed: 'a non-empty host name or IP address', parse: (v) => (typeof v === 'string' && /^[A-Za-z0-9.:_\-[\]]+$/.test(v) ? v : INVALID) },
    '127.0.0.1',
    "interface to listen on (default loopback; '0.0.0.0' = all interfaces, use TLS there)",
  ),
  port: key(int(0, 65535), 7100, 'TCP port to listen on; 0 = any free port'),
  minClients: key(
    or(int(1), null, 'null (= participants per round)'),
    null,
    'authenticated clients that must be connected before training starts; null = participants per round',
  ),
  roundTimeout: key(num(0, true), 60, 'seconds a round attempt waits for results before it closes (late results are dropped)'),
  quorum: key(num(0, true, 1, false), 0.5, "fraction of a round's participants whose valid results it needs to commit, in (0, 1]"),
  heartbeat: key(num(0, true), 5, 'seconds between heartbeats; a connection silent for 3 heartbeats is dropped'),
  maxFrameBytes: key(
    or(int(1024), null, 'null (= derived)'),
    null,
    'largest frame a client may send (bytes, ≥ 1024); null = derived from K and the model size',
  ),
};

type ValuesOf<Table> = { [K in keyof Table]: Table[K] extends KeySpec<infer T> ? T : never };

export type RunConfig = ValuesOf<typeof RUN_KEYS>;
export type ConfigKey = keyof RunConfig;
export type ServerConfig = ValuesOf<typeof SERVER_KEYS>;
export type ServerKey = keyof ServerConfig;

function defaults<Table extends Record<string, KeySpec<unknown>>>(table: Table): ValuesOf<Table> {
  return Object.freeze(Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s.default]))) as ValuesOf<Table>;
}
function docs<Table extends Record<string, KeySpec<unknown>>>(table: Table): Readonly<Record<keyof Table, string>> {
  return Object.freeze(Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s.doc]))) as Record<keyof Table, string>;
}

export const DEFAULT_CONFIG: Readonly<RunConfig> = defaults(RUN_KEYS);

/**
 * A configuration recorded by an earlier version (config.json, a checkpoint): keys added since take their
 * defaults, which is what that run did (every key is added with the default that keeps the old behaviour).
 */
export function withDefaults(recorded: Partial<RunConfig>): RunConfig {
  return { ...structuredClone(DEFAULT_CONFIG), ...recorded } as RunConfig;
}
export const CONFIG_KEYS: Readonly<Record<ConfigKey, string>> = docs(RUN_KEYS);
export const DEFAULT_SERVER_CONFIG: Readonly<ServerConfig> = defaults(SERVER_KEYS);
export const SERVER_CONFIG_KEYS: Readonly<Record<ServerKey, string>> = docs(SERVER_KEYS);

export const KNOWN_KEYS = Object.keys(RUN_KEYS) as ConfigKey[];

/** True when `key` is a server setting (accepted by `baffle serve`, not by `baffle run`). */
export function isServerKey(key: string): key is ServerKey {
  return Object.hasOwn(SERVER_KEYS, key);
}

/** Keys that describe a zoo architecture; an ONNX model brings its own. */
export const ZOO_ONLY_KEYS = ['hidden', 'depth', 'width', 'activation', 'norm'] as const satisfies readonly ConfigKey[];

