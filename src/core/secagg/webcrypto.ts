// Secure aggregation's primitives on WebCrypto (crypto.subtle): the browser's implementation of SecAggCrypto,
// platform-free (Node 20+ has the same API). X25519 keys go in and out raw: public keys as 'raw', private keys
// through their PKCS#8 wrapping (WebCrypto exports and imports X25519 private keys as pkcs8 or jwk, not raw).
// X25519 in WebCrypto is recent in browsers (Chromium 133, Firefox 130, Safari 17): `webCryptoSecAgg()`
// returns null where it is missing, and the client then refuses a secure server with that reason.
import type { KeyPair, SecAggCrypto } from './crypto.ts';

const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const X25519 = { name: 'X25519' } as const;

/** A copy in a fresh ArrayBuffer (WebCrypto's BufferSource, whatever view it was given). */
const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

function pkcs8(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (raw.byteLength !== 32) throw new Error(`an X25519 private key must be 32 bytes, got ${raw.byteLength}`);
  const out = new Uint8Array(PKCS8_PREFIX.byteLength + 32);
  out.set(PKCS8_PREFIX);
  out.set(raw, PKCS8_PREFIX.byteLength);
  return out;
}

export function webSecAggCrypto(subtle: SubtleCrypto = crypto.subtle): SecAggCrypto {
  const importPrivate = (raw: Uint8Array) => subtle.importKey('pkcs8', pkcs8(raw), X25519, true, ['deriveBits']);
  const rawPublicOf = async (k: CryptoKey) => new Uint8Array(await subtle.exportKey('raw', k));
  return {
    async generateKeyPair(): Promise<KeyPair> {
      const k = (await subtle.generateKey(X25519, true, ['deriveBits'])) as CryptoKeyPair;
      const der = new Uint8Array(await subtle.exportKey('pkcs8', k.privateKey));
      return { publicKey: await rawPublicOf(k.publicKey), privateKey: der.slice(der.byteLength - 32) };
    },
    async publicKeyOf(raw) {
      // WebCrypto derives no public key from a private one; its JWK export carries it (x).
      const jwk = await subtle.exportKey('jwk', await importPrivate(raw));
      if (!jwk.x) throw new Error('this WebCrypto does not export the X25519 public key');
      return base64url(jwk.x);
    },
    async agree(priv, pub) {
      if (pub.byteLength !== 32) throw new Error(`an X25519 public key must be 32 bytes, got ${pub.byteLength}`);
      const publicKey = await subtle.importKey('raw', buf(pub), X25519, true, []);
      const bits = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: publicKey }, await importPrivate(priv), 256));
      if (bits.every((x) => x === 0)) throw new Error('X25519 with a low-order public key (all-zero shared secret)');
      return bits;
    },
    async hkdf(ikm, info, length) {
      const key = await subtle.importKey('raw', buf(ikm), 'HKDF', false, ['deriveBits']);
      return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: buf(info) }, key, 8 * length));
    },
    async sha256(data) {
      return new Uint8Array(await subtle.digest('SHA-256', buf(data)));
    },
    async seal(key, nonce, plaintext, aad) {
      const k = await subtle.importKey('raw', buf(key), 'AES-GCM', false, ['encrypt']);
      return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(plaintext)));
    },
    async open(key, nonce, sealed, aad) {
      const k = await subtle.importKey('raw', buf(key), 'AES-GCM', false, ['decrypt']);
      try {
        return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(sealed)));
      } catch {
        return null;
      }
    },
    random: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
}

/** The WebCrypto implementation when this platform's WebCrypto has X25519, else null. */
export async function webCryptoSecAgg(): Promise<SecAggCrypto | null> {
  try {
    const c = webSecAggCrypto();
    const a = await c.generateKeyPair();
    const b = await c.generateKeyPair();
    await c.agree(a.privateKey, b.publicKey);
    return c;
  } catch {
    return null;
  }
}

function base64url(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}
