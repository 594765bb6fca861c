// Secure aggregation's primitives on node:crypto: X25519 (raw 32-byte keys through their DER wrappings),
// HKDF-SHA256, SHA-256 and AES-256-GCM. The browser's implementation is src/core/secagg/webcrypto.ts.
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import type { KeyPair, SecAggCrypto } from '../../core/secagg/crypto.ts';

// PKCS#8 and SPKI prefixes of an X25519 key (OID 1.3.101.110), followed by the 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

// Parsing a DER key costs ≈ 0.6 ms (private) and 0.1 ms (public) against 0.04 ms for the agreement itself, and
// a round uses each key once per peer: the key objects of the last few thousand raw keys are kept.
const KEYS_KEPT = 4096;
const keyObjects = new Map<string, KeyObject>();
function cached(prefix: Buffer, raw: Uint8Array, make: (der: Buffer) => KeyObject): KeyObject {
  const id = `${prefix.length}:${Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')}`;
  let k = keyObjects.get(id);
  if (!k) {
    k = make(Buffer.concat([prefix, raw]));
    keyObjects.set(id, k);
    if (keyObjects.size > KEYS_KEPT) keyObjects.delete(keyObjects.keys().next().value as string);
  }
  return k;
}
const privateKey = (raw: Uint8Array) => cached(PKCS8_PREFIX, raw, (der) => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
const publicKey = (raw: Uint8Array) => cached(SPKI_PREFIX, raw, (der) => createPublicKey({ key: der, format: 'der', type: 'spki' }));
const rawPublic = (k: ReturnType<typeof createPublicKey>) => new Uint8Array(k.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));

function checkLength(b: Uint8Array, n: number, what: string): void {
  if (b.byteLength !== n) throw new Error(`${what} must be ${n} bytes, got ${b.byteLength}`);
}

export const nodeSecAggCrypto: SecAggCrypto = {
  async generateKeyPair(): Promise<KeyPair> {
    const { publicKey: pub, privateKey: priv } = generateKeyPairSync('x25519');
    const der = priv.export({ format: 'der', type: 'pkcs8' });
    return { publicKey: rawPublic(pub), privateKey: new Uint8Array(der.subarray(der.length - 32)) };
  },
  async publicKeyOf(raw) {
    checkLength(raw, 32, 'an X25519 private key');
    return rawPublic(createPublicKey(privateKey(raw)));
  },
  async agree(priv, pub) {
    checkLength(priv, 32, 'an X25519 private key');
    checkLength(pub, 32, 'an X25519 public key');
    const secret = new Uint8Array(diffieHellman({ privateKey: privateKey(priv), publicKey: publicKey(pub) }));
    if (secret.every((x) => x === 0)) throw new Error('X25519 with a low-order public key (all-zero shared secret)');
    return secret;
  },
  async hkdf(ikm, info, length) {
    return new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), info, length));
  },
  async sha256(data) {
    return new Uint8Array(createHash('sha256').update(data).digest());
  },
  async seal(key, nonce, plaintext, aad) {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad);
    return new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]));
  },
  async open(key, nonce, sealed, aad) {
    if (sealed.byteLength < 16) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.byteLength - 16));
      return new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.byteLength - 16)), d.final()]));
    } catch {
      return null;
    }
  },
  random: (n) => new Uint8Array(randomBytes(n)),
};
