// What the server tells whoever watches it (docs/protocol.md §7): the round log (rounds.jsonl), the dashboard's
// status event, and the metrics records. The server (src/node/net/server.ts) writes these shapes and the
// dashboard page (src/web/dashboard) reads them: one definition for both sides.
export type { MetricsRecord } from '../fl/federation.ts';

export type ServerState = 'waiting' | 'training' | 'done';

export interface RoundRecord {
  step: number;
  attempts: number;
  participants: number[];
  /** Clients whose results were used, in participant order. */
  counted: number[];
  dropped: { client: number; reason: string }[];
  abandoned: boolean;
  /** Payload bytes received from and sent to clients while the round ran. */
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

/** One client as the dashboard shows it. */
export interface DashboardClient {
  id: number;
  /** From the hello's agent string: 'browser' (baffle-web, Mozilla/…), 'node' (baffle-join), or 'other'. */
  kind: 'browser' | 'node' | 'other';
  agent: string;
  connected: boolean;
  /** Milliseconds since the server last heard from it (null: not seen by this server process). */
  lastSeenAgoMs: number | null;
  /** Authenticated connections it opened since the server started. */
  connections: number;
  /** Results of it counted, and drops of it, over all committed rounds (a resumed run's included). */
  counted: number;
  dropped: number;
  /** Its state in the open round, null when it does not take part in one. */
  inRound: 'idle' | 'tasked' | 'answered' | 'refused' | null;
}

/** The dashboard's `status` event (docs/protocol.md §7). */
export interface DashboardStatus {
  state: ServerState;
  runId: string;
  /** Steps completed, of totalSteps, and the last committed round (its 1-based step; 0 before the first). */
  step: number;
  totalSteps: number;
  lastRound: number;
  /** The open round (1-based `step`, as in the logs and rounds.jsonl), or null between rounds. */
  round: { step: number; attempt: number; participants: number; answered: number; quorum: number; deadlineInMs: number } | null;
  clients: { federation: number; connected: number; connections: number; list: DashboardClient[]; omitted: number };
  bytes: { in: number; out: number };
  /** Wall time per step over the last committed rounds, the mean RoundRecord.ms, the estimated seconds left. */
  timing: { stepMs: number | null; roundMs: number | null; etaS: number | null; uptimeS: number };
  totals: { rounds: number; dropped: number; abandoned: number; refusals: Record<string, number> };
}

