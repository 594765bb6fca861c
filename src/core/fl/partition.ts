// Splitting a labelled training set among federated clients.
//
// Three schemes, all driven by a caller-supplied seeded RNG so that equal seeds give equal splits:
//
// - 'iid'       class-balanced IID shards (the BAFFLE reference setting): every class's indices are
//               shuffled and dealt round-robin over the clients, the dealer carrying on from where the
//               previous class stopped. Every client therefore holds ⌊n_c/C⌋ or ⌈n_c/C⌉ examples of each
//               class c, and client sizes differ by at most one overall.
// - 'dirichlet' label-distribution skew (Hsu et al. 2019; the per-class form used by NIID-Bench / FedLab
//               "hetero_dir"): for each class, proportions p ~ Dir(α·1_C) over the clients are drawn (as
//               normalised Gamma(α, 1) variates) and the class's shuffled indices are cut at
//               ⌊cumsum(p)·n_c⌋. Small α → each class lands on few clients; large α → close to IID.
//               The whole draw is repeated while some client holds fewer than `minSize` (default 1)
//               examples, at most `maxRetries` (default 100) times, after which a clear error is thrown.
// - 'shards'    pathological non-IID (McMahan et al. 2017): indices sorted by label (stable), cut into
//               clients·shardsPerClient contiguous shards of (almost) equal size, and each client receives
//               shardsPerClient shards chosen at random without replacement.
//
// Every example index is assigned to exactly one client. Each client's index list is finally shuffled
// with the rng, so the order is random but deterministic for a given rng state.

/** The subset of the project's RNG that partitioning needs. */
export interface PartitionRng {
  /** Uniform integer in [0, n). */
  nextInt(n: number): number;
  /** Gamma(shape, 1) variate, shape > 0 (used by 'dirichlet' only). */
  gamma(shape: number): number;
}

export type PartitionSpec =
  | { kind: 'iid' }
  | {
      kind: 'dirichlet';
      /** Concentration α > 0 of the symmetric Dirichlet over clients (per class). */
      alpha: number;
      /** Minimum examples per client; the draw is repeated until satisfied. Default 1. */
      minSize?: number;
      /** How many complete re-draws to attempt before giving up. Default 100. */
      maxRetries?: number;
    }
  | { kind: 'shards'; shardsPerClient: number };

/** In-place Fisher–Yates shuffle of (a prefix-free view of) an index array. */
function shuffleInPlace(a: Int32Array | number[], rng: PartitionRng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`partition: ${name} must be a positive integer, got ${v}`);
  }
}

/** Indices of each class, ascending, as Int32Arrays. Validates labels against `classes`. */
function indicesByClass(labels: Uint8Array, classes: number): Int32Array[] {
  const counts = new Int32Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y >= classes) {
      throw new RangeError(
        `partition: label ${y} at index ${i} is out of range for ${classes} classes (expected 0..${classes - 1})`,
      );
    }
    counts[y]!++;
  }
  const out: Int32Array[] = [];
  for (let c = 0; c < classes; c++) out.push(new Int32Array(counts[c]!));
  const fill = new Int32Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    out[y]![fill[y]!++] = i;
  }
  return out;
}

function finish(buckets: number[][], rng: PartitionRng): Int32Array[] {
  return buckets.map((b) => {
    const a = Int32Array.from(b);
    shuffleInPlace(a, rng);
    return a;
  });
}

function partitionIid(byClass: Int32Array[], clients: number, rng: PartitionRng): Int32Array[] {
  const buckets: number[][] = Array.from({ length: clients }, () => []);
  let dealer = 0;
  for (const cls of byClass) {
    const idx = cls.slice();
    shuffleInPlace(idx, rng);
    for (let j = 0; j < idx.length; j++) {
      buckets[dealer]!.push(idx[j]!);
      dealer = dealer + 1 === clients ? 0 : dealer + 1;
    }
  }
  return finish(buckets, rng);
}

function partitionDirichlet(
  byClass: Int32Array[],
  n: number,
  clients: number,
  alpha: number,
  minSize: number,
  maxRetries: number,
  rng: PartitionRng,
): Int32Array[] {
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new RangeError(`partition: dirichlet alpha must be a finite number > 0, got ${alpha}`);
  }
  checkPositiveInt('dirichlet minSize', minSize);
  checkPositiveInt('dirichlet maxRetries', maxRetries);
  if (minSize * clients > n) {
    throw new RangeError(
      `partition: dirichlet needs at least minSize·clients = ${minSize}·${clients} = ${minSize * clients} examples, have ${n}`,
    );
  }
  const p = new Float64Array(clients);
  let smallest = 0;
  for (let attempt = 0; attempt < maxRetries; attempt++) {
    const buckets: number[][] = Array.from({ length: clients }, () => []);
    for (const cls of byClass) {
      const nc = cls.length;
      if (nc === 0) continue;
      const idx = cls.slice();
      shuffleInPlace(idx, rng);
      let sum = 0;
      for (let k = 0; k < clients; k++) {
        const g = rng.gamma(alpha);
        p[k] = g;
        sum += g;
      }
      if (!(sum > 0) || !Number.isFinite(sum)) {
        // All Gamma draws underflowed to 0 (only possible for tiny α): the Dirichlet limit is a
        // one-hot vector on a uniformly chosen client.
        p.fill(0);
        p[rng.nextInt(clients)] = 1;
        sum = 1;
      }
      let cum = 0;
      let start = 0;
      for (let k = 0; k < clients; k++) {
        cum += p[k]! / sum;
        let end = k === clients - 1 ? nc : Math.floor(cum * nc);
        if (end > nc) end = nc;
        if (end < start) end = start;
        const b = buckets[k]!;
        for (let j = start; j < end; j++) b.push(idx[j]!);
        start = end;
      }
    }
    smallest = Infinity;
    for (const b of buckets) smallest = Math.min(smallest, b.length);
    if (smallest >= minSize) return finish(buckets, rng);
  }
  throw new Error(
    `partition: dirichlet(alpha=${alpha}) left a client with fewer than ${minSize} example(s) after ` +
      `${maxRetries} draws (last draw's smallest client had ${smallest}); use fewer clients, a larger ` +
      `alpha, or a larger dataset`,
  );
}

function partitionShards(
  byClass: Int32Array[],
  n: number,
  clients: number,
  shardsPerClient: number,
  rng: PartitionRng,
): Int32Array[] {
  checkPositiveInt('shardsPerClient', shardsPerClient);
  const numShards = clients * shardsPerClient;
  if (numShards > n) {
    throw new RangeError(
      `partition: shards needs clients·shardsPerClient = ${clients}·${shardsPerClient} = ${numShards} ≤ examples (${n})`,
    );
  }
  // Stable sort by label: concatenate the per-class ascending index lists.
  const sorted = new Int32Array(n);
  let o = 0;
  for (const cls of byClass) {
    sorted.set(cls, o);
    o += cls.length;
  }
  // Shard s covers sorted[start(s) .. start(s+1)); the first (n mod numShards) shards get one extra.
  const base = Math.floor(n / numShards);
  const rem = n % numShards;
  const shardStart = (s: number): number => s * base + Math.min(s, rem);
  const order = new Int32Array(numShards);
  for (let s = 0; s < numShards; s++) order[s] = s;
  shuffleInPlace(order, rng);
  const buckets: number[][] = [];
  for (let k = 0; k < clients; k++) {
    const b: number[] = [];
    for (let j = 0; j < shardsPerClient; j++) {
      const s = order[k * shardsPerClient + j]!;
      const end = shardStart(s + 1);
      for (let i = shardStart(s); i < end; i++) b.push(sorted[i]!);
    }
    buckets.push(b);
  }
  return finish(buckets, rng);
}

/**
 * Split the examples `0 .. labels.length-1` among `clients` clients.
 *
 * @param labels  class label of every example (values in 0..classes-1)
 * @param classes number of classes (1..256)
 * @param clients number of clients (1..labels.length)
 * @param spec    the scheme, see the module comment
 * @param rng     seeded RNG; the result depends only on its state
 * @returns one Int32Array of example indices per client; together they contain every index exactly once
 */
export function partition(
  labels: Uint8Array,
  classes: number,
  clients: number,
  spec: PartitionSpec,
  rng: PartitionRng,
): Int32Array[] {
  if (!(labels instanceof Uint8Array)) throw new TypeError('partition: labels must be a Uint8Array');
  if (!Number.isInteger(classes) || classes < 1 || classes > 256) {
    throw new RangeError(`partition: classes must be an integer in 1..256, got ${classes}`);
  }
  checkPositiveInt('clients', clients);
  const n = labels.length;
  if (n === 0) throw new RangeError('partition: no examples to partition');
  if (clients > n) {
    throw new RangeError(`partition: more clients (${clients}) than examples (${n}); every client needs at least one`);
  }
  const byClass = indicesByClass(labels, classes);
  switch (spec.kind) {
    case 'iid':
      return partitionIid(byClass, clients, rng);
    case 'dirichlet':
      return partitionDirichlet(
        byClass,
        n,
        clients,
        spec.alpha,
        spec.minSize ?? 1,
        spec.maxRetries ?? 100,
        rng,
      );
    case 'shards':
      return partitionShards(byClass, n, clients, spec.shardsPerClient, rng);
    default: {
      const kind = (spec as { kind?: unknown }).kind;
      throw new RangeError(`partition: unknown partition kind ${JSON.stringify(kind)} (expected iid, dirichlet or shards)`);
    }
  }
}

/**
 * Per-client class histogram: `counts[client][class]` = number of examples of that class held by the
 * client. Throws if a part refers to an index outside `labels` or a label is out of range.
 */
export function partitionStats(parts: readonly Int32Array[], labels: Uint8Array, classes: number): number[][] {
  return parts.map((part, k) => {
    const row = new Array<number>(classes).fill(0);
    for (let j = 0; j < part.length; j++) {
      const i = part[j]!;
      if (i < 0 || i >= labels.length) {
        throw new RangeError(`partitionStats: client ${k} holds index ${i}, outside 0..${labels.length - 1}`);
      }
      const y = labels[i]!;
      if (y >= classes) throw new RangeError(`partitionStats: label ${y} out of range for ${classes} classes`);
      row[y]!++;
    }
    return row;
  });
}
