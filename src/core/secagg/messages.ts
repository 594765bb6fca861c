// The frames of secure aggregation (docs/protocol.md §12). They travel like every other frame (one msgpack map
// per binary WebSocket message) and are schema-checked in protocol.ts before anything acts on them.

/** The secure-aggregation settings a FedSGD `task` carries when the run aggregates securely. */
export interface SecAggTaskSpec {
  /** Shamir threshold t: shares from t clients rebuild a secret. */
  threshold: number;
  /** Clip range R of every coordinate. */
  range: number;
  /** Fixed-point scale S (a power of two). */
  scale: number;
  /** Seed of the stochastic rounding's ChaCha20 stream (quantize.ts roundingKey). */
  roundingSeed: number;
  /** Length d of the vector summed: K + 2. */
  dim: number;
  /** Differential privacy with distributed noise (absent or null: none; protocol.md §12). */
  dp?: SecAggDpSpec | null;
}

/**
 * A differentially private secure round (dpNoise = 'distributed'): the client clips its K scalars to L2 norm
 * `clip`, adds N(0, (noiseMultiplier·clip)²/participants) to each, and sends weight 1 and loss 0 (quantize.ts
 * secAggVector), so that the sum of the `participants` shares carries the noise N(0, (σC)²) the accountant charges.
 */
export interface SecAggDpSpec {
  /** L2 bound C of the K scalars. */
  clip: number;
  /** σ: the noise std of the whole sum divided by C. */
  noiseMultiplier: number;
  /** m: the participants of the round, among whom the noise is split. */
  participants: number;
  /**
   * Seed of the noise stream (privacy/noise.ts seededNormals): set by the simulation (`baffle run`, reproducible);
   * null over the network, where each client draws its noise from a secret key of its own (the server must not
   * know the noise it is meant to be hidden by).
   */
  noiseSeed: number | null;
}

export interface PeerKeys {
  client: number;
  cPk: Uint8Array;
  sPk: Uint8Array;
}

// ---- server → client

/** Phase 1: the clients whose keys the server collected (U1), each with its two public keys. */
export interface SaRosterMsg {
  type: 'sa-roster';
  round: number;
  keys: PeerKeys[];
}

/** Phase 2: the encrypted shares other clients of U2 addressed to this client. */
export interface SaInboxMsg {
  type: 'sa-inbox';
  round: number;
  shares: { from: number; ct: Uint8Array }[];
}

/** Phase 3: whose masked input arrived (U3) and who dropped after sharing (U2 \ U3). */
export interface SaUnmaskMsg {
  type: 'sa-unmask';
  round: number;
  survivors: number[];
  dropped: number[];
}

export type SecAggServerMessage = SaRosterMsg | SaInboxMsg | SaUnmaskMsg;

// ---- client → server

/** Phase 0, the answer to a secure `task`: the client's two fresh public keys. */
export interface SaAdvertiseMsg {
  type: 'sa-advertise';
  task: number;
  round: number;
  cPk: Uint8Array;
  sPk: Uint8Array;
}

/** Phase 1: one ciphertext per other client of the roster, and SHA-256(b_u). */
export interface SaSharesMsg {
  type: 'sa-shares';
  round: number;
  commit: Uint8Array;
  shares: { to: number; ct: Uint8Array }[];
}

/** Phase 2: the masked input y_u, d uint32 little-endian words. */
export interface SaMaskedMsg {
  type: 'sa-masked';
  round: number;
  masked: Uint32Array;
}

/** Phase 3: for each survivor its share of b, for each dropped client its share of s_sk (48 bytes each). */
export interface SaRevealMsg {
  type: 'sa-reveal';
  round: number;
  shares: { of: number; share: Uint8Array }[];
}

export type SecAggClientMessage = SaAdvertiseMsg | SaSharesMsg | SaMaskedMsg | SaRevealMsg;

/** uint32 words as little-endian bytes (the wire form of a masked vector). */
export function u32Bytes(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) v.setUint32(4 * i, w[i]!, true);
  return out;
}

/** Little-endian bytes as uint32 words. */
export function bytesU32(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.byteLength >>> 2);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = v.getUint32(4 * i, true);
  return out;
}
