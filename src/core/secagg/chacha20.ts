// ChaCha20 (RFC 8439 §2.3–2.4) in plain TypeScript: the pseudo-random generator of secure aggregation's masks
// and of its stochastic rounding. Platform-free and exactly specified, so every platform (and a client in
// another language) expands the same 32-byte seed into the same mask words. Tested against the RFC vectors.

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"

function rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

function words(bytes: Uint8Array, count: number, what: string): Uint32Array {
  if (bytes.byteLength !== count * 4) throw new Error(`ChaCha20 ${what} must be ${count * 4} bytes, got ${bytes.byteLength}`);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = (bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24)) >>> 0;
  }
  return out;
}

/** The 16 output words of the block function for (key, counter, nonce) (RFC 8439 §2.3), into `out`. */
function block(key: Uint32Array, counter: number, nonce: Uint32Array, out: Uint32Array, x: Uint32Array): void {
  const s = x;
  s[0] = SIGMA[0]!;
  s[1] = SIGMA[1]!;
  s[2] = SIGMA[2]!;
  s[3] = SIGMA[3]!;
  for (let i = 0; i < 8; i++) s[4 + i] = key[i]!;
  s[12] = counter >>> 0;
  s[13] = nonce[0]!;
  s[14] = nonce[1]!;
  s[15] = nonce[2]!;
  let x0 = s[0]!, x1 = s[1]!, x2 = s[2]!, x3 = s[3]!, x4 = s[4]!, x5 = s[5]!, x6 = s[6]!, x7 = s[7]!;
  let x8 = s[8]!, x9 = s[9]!, x10 = s[10]!, x11 = s[11]!, x12 = s[12]!, x13 = s[13]!, x14 = s[14]!, x15 = s[15]!;
  for (let r = 0; r < 10; r++) {
    // column rounds
    x0 = (x0 + x4) >>> 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) >>> 0; x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) >>> 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) >>> 0; x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) >>> 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) >>> 0; x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) >>> 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) >>> 0; x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) >>> 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) >>> 0; x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) >>> 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) >>> 0; x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) >>> 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) >>> 0; x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) >>> 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) >>> 0; x7 = rotl(x7 ^ x11, 7);
    // diagonal rounds
    x0 = (x0 + x5) >>> 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) >>> 0; x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) >>> 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) >>> 0; x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) >>> 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) >>> 0; x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) >>> 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) >>> 0; x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) >>> 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) >>> 0; x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) >>> 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) >>> 0; x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) >>> 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) >>> 0; x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) >>> 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) >>> 0; x4 = rotl(x4 ^ x9, 7);
  }
  const fin = [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15];
  for (let i = 0; i < 16; i++) out[i] = (fin[i]! + s[i]!) >>> 0;
}

/** The block function's output for (key 32 bytes, counter, nonce 12 bytes) as 64 bytes (RFC 8439 §2.3.2). */
export function chachaBlock(key: Uint8Array, counter: number, nonce: Uint8Array): Uint8Array {
  const out = new Uint32Array(16);
  block(words(key, 8, 'key'), counter, words(nonce, 3, 'nonce'), out, new Uint32Array(16));
  return wordBytes(out);
}

/**
 * `count` keystream words: the 32-bit little-endian words of ChaCha20(key, nonce) starting at block `counter`,
 * i.e. word i is word (i mod 16) of the block with counter `counter + floor(i / 16)`. This is what the masks
 * use (counter 0, nonce 0).
 */
export function keystreamWords(key: Uint8Array, count: number, nonce: Uint8Array = new Uint8Array(12), counter = 0): Uint32Array {
  const k = words(key, 8, 'key');
  const n = words(nonce, 3, 'nonce');
  const out = new Uint32Array(count);
  const b = new Uint32Array(16);
  const scratch = new Uint32Array(16);
  for (let i = 0; i < count; i += 16) {
    if (counter + i / 16 > 0xffffffff) throw new Error('ChaCha20: block counter overflow');
    block(k, counter + i / 16, n, b, scratch);
    const take = Math.min(16, count - i);
    for (let j = 0; j < take; j++) out[i + j] = b[j]!;
  }
  return out;
}

/** RFC 8439 §2.4: ciphertext = plaintext XOR keystream (starting at block `counter`). Only for the tests' vectors. */
export function chachaXor(key: Uint8Array, counter: number, nonce: Uint8Array, data: Uint8Array): Uint8Array {
  const ks = wordBytes(keystreamWords(key, Math.ceil(data.byteLength / 4), nonce, counter));
  const out = new Uint8Array(data.byteLength);
  for (let i = 0; i < data.byteLength; i++) out[i] = data[i]! ^ ks[i]!;
  return out;
}

/** uint32 words as little-endian bytes. */
export function wordBytes(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    out[4 * i] = v & 0xff;
    out[4 * i + 1] = (v >>> 8) & 0xff;
    out[4 * i + 2] = (v >>> 16) & 0xff;
    out[4 * i + 3] = v >>> 24;
  }
  return out;
}

/** Little-endian bytes (length a multiple of 4) as uint32 words. */
export function bytesWords(b: Uint8Array): Uint32Array {
  if (b.byteLength % 4 !== 0) throw new Error(`${b.byteLength} bytes is not a whole number of uint32 words`);
  return words(b, b.byteLength / 4, 'words');
}
