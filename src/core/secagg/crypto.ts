// The cryptographic primitives secure aggregation needs, behind one small interface so that each platform
// brings its own: node:crypto on Node (src/node/secagg/crypto.ts) and WebCrypto in browsers (webcrypto.ts, which
// Node's WebCrypto runs too: the tests check the two against each other). Everything derived from them —
// key derivation, the share encryption's layout, the pairwise mask seeds — is defined here, once.

/** A raw X25519 key pair: 32-byte public key (u-coordinate, RFC 7748) and 32-byte private scalar. */
export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export interface SecAggCrypto {
  /** A fresh random X25519 key pair. */
  generateKeyPair(): Promise<KeyPair>;
  /** The public key of a raw private key (the server checks a reconstructed key against its advertisement). */
  publicKeyOf(privateKey: Uint8Array): Promise<Uint8Array>;
  /** X25519(privateKey, publicKey): the 32-byte shared secret; throws for a low-order (all-zero result) key. */
  agree(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;
  /** HKDF-SHA256 (RFC 5869) with an empty salt: `length` bytes of output keying material. */
  hkdf(ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  /** SHA-256. */
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** AES-256-GCM: ciphertext ‖ 16-byte tag. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** AES-256-GCM open: the plaintext, or null when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array | null>;
  /** Cryptographically secure random bytes. */
  random(n: number): Uint8Array;
}

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

const utf8 = new TextEncoder();
/** HKDF info of the key that encrypts shares between two clients (from their c keys). */
export const SHARE_KEY_INFO = utf8.encode('baffle-secagg/1 share-key');
/** HKDF info of the seed of the pairwise mask between two clients (from their s keys). */
export const MASK_SEED_INFO = utf8.encode('baffle-secagg/1 pairwise-mask');
const AAD_PREFIX = utf8.encode('baffle-secagg/1');

/** The AES-GCM key for shares between two clients: HKDF(X25519(c_sk_u, c_pk_v), info SHARE_KEY_INFO), 32 bytes. */
export async function shareKey(c: SecAggCrypto, privateKey: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array> {
  return c.hkdf(await c.agree(privateKey, peerPublic), SHARE_KEY_INFO, KEY_BYTES);
}

/** The ChaCha20 key of the pairwise mask: HKDF(X25519(s_sk_u, s_pk_v), info MASK_SEED_INFO), 32 bytes. */
export async function maskSeed(c: SecAggCrypto, privateKey: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array> {
  return c.hkdf(await c.agree(privateKey, peerPublic), MASK_SEED_INFO, KEY_BYTES);
}

/** Associated data of the shares `from` sends `to` in `round`: "baffle-secagg/1" ‖ u64be(round) ‖ u32be(from) ‖ u32be(to). */
export function shareAad(round: number, from: number, to: number): Uint8Array {
  const aad = new Uint8Array(AAD_PREFIX.byteLength + 16);
  aad.set(AAD_PREFIX);
  const v = new DataView(aad.buffer, AAD_PREFIX.byteLength);
  v.setBigUint64(0, BigInt(round), false);
  v.setUint32(8, from >>> 0, false);
  v.setUint32(12, to >>> 0, false);
  return aad;
}

/** nonce ‖ AES-256-GCM(key, nonce, plaintext, aad) with a fresh random 12-byte nonce. */
export async function encryptShares(c: SecAggCrypto, key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const nonce = c.random(NONCE_BYTES);
  const sealed = await c.seal(key, nonce, plaintext, aad);
  const out = new Uint8Array(NONCE_BYTES + sealed.byteLength);
  out.set(nonce);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/** The plaintext of nonce ‖ sealed, or null (too short, or the tag does not verify). */
export async function decryptShares(c: SecAggCrypto, key: Uint8Array, ct: Uint8Array, aad: Uint8Array): Promise<Uint8Array | null> {
  if (ct.byteLength < NONCE_BYTES + TAG_BYTES) return null;
  return c.open(key, ct.subarray(0, NONCE_BYTES), ct.subarray(NONCE_BYTES), aad);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let d = 0;
  for (let i = 0; i < a.byteLength; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
