// Shamir's t-of-n secret sharing over the prime field GF(p), p = 2^127 − 1 (a Mersenne prime), with BigInt.
// A secret of SECRET_BYTES = 32 bytes is cut into CHUNKS = 3 chunks of at most 15 bytes (big-endian integers
// < 2^120 < p): bytes [0, 15), [15, 30), [30, 32). Each chunk gets its own random polynomial of degree t − 1
// with the chunk as constant term; the share of the holder with x-coordinate x (client id + 1) is the three
// values f_j(x), each 16 bytes big-endian: SHARE_BYTES = 48 bytes. Any t shares give the secret back by
// Lagrange interpolation at 0; t − 1 shares give a value independent of it.

export const P = (1n << 127n) - 1n;
export const SECRET_BYTES = 32;
const CHUNK_BYTES = 15;
const CHUNKS = Math.ceil(SECRET_BYTES / CHUNK_BYTES);
const VALUE_BYTES = 16;
export const SHARE_BYTES = CHUNKS * VALUE_BYTES;

/** Cryptographically secure random bytes (WebCrypto's getRandomValues on every platform; tests may seed one). */
export type RandomBytes = (n: number) => Uint8Array;

export const secureRandom: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function toBytes(v: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const mod = (a: bigint) => ((a % P) + P) % P;

function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  b = mod(b);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

const inv = (a: bigint) => pow(a, P - 2n);

/** The inverses of non-zero elements with one inversion (prefix products, Montgomery's trick). */
function batchInverse(a: readonly bigint[]): bigint[] {
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const x of a) {
    prefix.push(acc);
    acc = (acc * x) % P;
  }
  let invAcc = inv(acc);
  const out = new Array<bigint>(a.length);
  for (let i = a.length - 1; i >= 0; i--) {
    out[i] = (invAcc * prefix[i]!) % P;
    invAcc = (invAcc * a[i]!) % P;
  }
  return out;
}

/** A uniform field element from the random source (rejection of the one 127-bit value ≥ p). */
function randomElement(random: RandomBytes): bigint {
  for (;;) {
    const b = random(VALUE_BYTES);
    b[0]! &= 0x7f;
    const v = toBig(b);
    if (v < P) return v;
  }
}

/** The x-coordinate of client `id`'s shares. */
export const shareX = (clientId: number): bigint => BigInt(clientId) + 1n;

/** Shares of `secret` (32 bytes) for the holders `clientIds`, any `t` of which rebuild it. */
export function split(secret: Uint8Array, clientIds: readonly number[], t: number, random: RandomBytes = secureRandom): Map<number, Uint8Array> {
  if (secret.byteLength !== SECRET_BYTES) throw new Error(`a secret must be ${SECRET_BYTES} bytes, got ${secret.byteLength}`);
  if (!Number.isInteger(t) || t < 1 || t > clientIds.length) throw new Error(`threshold ${t} outside [1, ${clientIds.length}]`);
  const polys: bigint[][] = [];
  for (let j = 0; j < CHUNKS; j++) {
    const coefs = [toBig(secret.subarray(j * CHUNK_BYTES, Math.min(SECRET_BYTES, (j + 1) * CHUNK_BYTES)))];
    for (let d = 1; d < t; d++) coefs.push(randomElement(random));
    polys.push(coefs);
  }
  const out = new Map<number, Uint8Array>();
  for (const id of clientIds) {
    const x = shareX(id);
    const share = new Uint8Array(SHARE_BYTES);
    polys.forEach((coefs, j) => {
      let y = 0n;
      for (let d = coefs.length - 1; d >= 0; d--) y = (y * x + coefs[d]!) % P;
      share.set(toBytes(y, VALUE_BYTES), j * VALUE_BYTES);
    });
    out.set(id, share);
  }
  return out;
}

/**
 * The secret from shares (client id → share): Lagrange interpolation at 0 over all the shares given. With at
 * least t shares of one sharing this is the secret; with fewer it is a value unrelated to it. Throws on a
 * malformed share (length, a value ≥ p, a chunk that does not fit its byte width, duplicate ids).
 */
export function combine(shares: ReadonlyMap<number, Uint8Array>): Uint8Array {
  const ids = [...shares.keys()];
  if (ids.length === 0) throw new Error('no shares to combine');
  const xs = ids.map(shareX);
  const ys = ids.map((id) => {
    const s = shares.get(id)!;
    if (s.byteLength !== SHARE_BYTES) throw new Error(`share of client ${id} has ${s.byteLength} bytes, expected ${SHARE_BYTES}`);
    return Array.from({ length: CHUNKS }, (_, j) => {
      const v = toBig(s.subarray(j * VALUE_BYTES, (j + 1) * VALUE_BYTES));
      if (v >= P) throw new Error(`share of client ${id} holds a value outside the field`);
      return v;
    });
  });
  // Lagrange basis at 0: l_i = Π_{j≠i} x_j / (x_j − x_i), the denominators inverted together (one inversion).
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  xs.forEach((xi, i) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xj, j) => {
      if (j === i) return;
      num = (num * xj) % P;
      den = (den * mod(xj - xi)) % P;
    });
    nums.push(num);
    dens.push(den);
  });
  const invs = batchInverse(dens);
  const basis = nums.map((n, i) => (n * invs[i]!) % P);
  const secret = new Uint8Array(SECRET_BYTES);
  for (let j = 0; j < CHUNKS; j++) {
    let v = 0n;
    ys.forEach((y, i) => (v = (v + y[j]! * basis[i]!) % P));
    const width = Math.min(SECRET_BYTES, (j + 1) * CHUNK_BYTES) - j * CHUNK_BYTES;
    if (v >> BigInt(8 * width) !== 0n) throw new Error('the shares do not rebuild a secret (inconsistent or too few shares)');
    secret.set(toBytes(v, width), j * CHUNK_BYTES);
  }
  return secret;
}
