// What each direction of the wire carries per client and round, counted by the simulation exactly as the
// networked protocol frames it: a fixed header plus the payload of raw float32 values.
//
// Header (HEADER_BYTES): protocol version u8, message kind u8, reserved u16, round id u32, client id u32,
// count u32 (K, n, or examples). Uplink FedSGD: header + K float32 + example count u32 → K·4 + 20 bytes.

export const HEADER_BYTES = 16;
const FLOAT = 4;
const U32 = 4;

/** Server → client task: header, seed, K, σ, scheme, plus the weights when the client lacks this version. */
export function taskBytes(params: number, sendsModel: boolean): number {
  return HEADER_BYTES + U32 /* seed */ + U32 /* K */ + FLOAT /* σ */ + U32 /* scheme + flags */ + (sendsModel ? params * FLOAT : 0);
}

/** Client → server FedSGD result: K scalars and the example count. */
export function scalarsBytes(K: number): number {
  return HEADER_BYTES + K * FLOAT + U32;
}

/** Client → server FedAvg result: the model delta and the example count. */
export function deltaBytes(params: number): number {
  return HEADER_BYTES + params * FLOAT + U32;
}

export interface WireCounters {
  uplinkBytes: number;
  downlinkBytes: number;
}

/**
 * Secure aggregation, per client and round beyond the task (m participants, K scalars; docs/secure-aggregation.md):
 * uplink = advertise (two 32-byte keys) + shares (SHA-256 commitment, m − 1 ciphertexts of 124 bytes + peer id)
 * + masked input (K + 2 words) + reveal (m shares of 48 bytes + id), four headers; downlink = roster (m × (id +
 * two keys)) + inbox (m − 1 ciphertexts + id) + unmask (m ids), three headers.
 */
export function secAggBytes(K: number, m: number): { uplink: number; downlink: number } {
  const CT = 124;
  const SHARE = 48;
  return {
    uplink: 4 * HEADER_BYTES + 64 + 32 + (m - 1) * (CT + U32) + (K + 2) * U32 + m * (SHARE + U32),
    downlink: 3 * HEADER_BYTES + m * (U32 + 64) + (m - 1) * (CT + U32) + m * U32,
  };
}
