// Per-client secret tokens. A tokens file maps each federated client id to its token; the server reads
// the whole file, a join process any subset of it (the entries of the clients it hosts).
//
//   { "format": "baffle-tokens/1", "tokens": [ { "client": 0, "token": "…" }, … ] }
//
// Tokens never cross the wire: a client proves it holds one with an HMAC over a fresh server nonce.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../../core/errors.ts';
import { fsReason } from '../files.ts';

export const TOKENS_FORMAT = 'baffle-tokens/1';

export interface TokenEntry {
  client: number;
  token: string;
}

export class TokensError extends UserError {
  constructor(message: string, hint?: string) {
    super(message, { hint });
    this.name = 'TokensError';
  }
}

/** A fresh token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Tokens for clients first .. first + count - 1. */
export function makeTokens(count: number, first = 0): TokenEntry[] {
  return Array.from({ length: count }, (_, i) => ({ client: first + i, token: newToken() }));
}

export function formatTokens(entries: readonly TokenEntry[]): string {
  return `${JSON.stringify({ format: TOKENS_FORMAT, tokens: entries }, null, 1)}\n`;
}

/** Reads and checks a tokens file: client id → token. */
export function readTokens(path: string): Map<number, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokensError(`tokens file '${path}': ${fsReason(e)}`, 'make one with `baffle tokens --clients N --out FILE`');
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new TokensError(`tokens file '${path}': not JSON (${(e as Error).message})`, 'make one with `baffle tokens --clients N --out FILE`');
  }
  const d = data as { format?: unknown; tokens?: unknown };
  if (d === null || typeof d !== 'object' || d.format !== TOKENS_FORMAT || !Array.isArray(d.tokens)) {
    throw new TokensError(`tokens file '${path}': expected {"format": "${TOKENS_FORMAT}", "tokens": [...]} (make one with \`baffle tokens\`)`);
  }
  const map = new Map<number, string>();
  const seen = new Set<string>();
  d.tokens.forEach((e: unknown, i: number) => {
    const entry = e as Partial<TokenEntry> | null;
    if (
      entry === null ||
      typeof entry !== 'object' ||
      !Number.isInteger(entry.client) ||
      (entry.client as number) < 0 ||
      (entry.client as number) > 0xffffffff ||
      typeof entry.token !== 'string' ||
      entry.token.length < 16
    ) {
      throw new TokensError(`tokens file '${path}': entry ${i} must be {"client": <id ≥ 0>, "token": <string of ≥ 16 characters>}`);
    }
    if (map.has(entry.client as number)) throw new TokensError(`tokens file '${path}': client ${entry.client} appears twice`);
    if (seen.has(entry.token)) throw new TokensError(`tokens file '${path}': two clients share one token`);
    seen.add(entry.token);
    map.set(entry.client as number, entry.token);
  });
  return map;
}
