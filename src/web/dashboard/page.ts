// The dashboard page: reads /events (status, metrics and rounds as server-sent events) and shows them in stable
// elements: #dash-state (waiting / training / done, or `error: …`), #dash-round (data-round: the round being
// trained or last completed, 1-based), #dash-clients (one row per client, data-client=ID), #dash-curve
// (data-points: evaluations plotted), #dash-eta, #dash-dropped (data-count), #dash-rounds, #dash-times.
// The dashboard token comes from the fragment (#token=T), which never reaches the server, and goes out as
// Authorization: Bearer T. Everything the server sends is shown as text, never as markup.
import { bytes } from '../../core/format.ts';
import { readEvents, type StreamEnd, type StreamEvent } from './events.ts';
import { curvePlot, roundTimePlot } from './plots.ts';
import type { DashboardClient, DashboardStatus, MetricsRecord, RoundRecord } from '../../core/protocol/status.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ROUNDS_KEPT = 5000;
const ROUNDS_LISTED = 12;
const DROPS_LISTED = 200;


function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function ms(v: number): string {
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
}

function ago(v: number | null): string {
  if (v === null) return '—';
  if (v < 1500) return 'now';
  return `${duration(v / 1000)} ago`;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(cells: (string | HTMLElement)[], numericFrom = 1): HTMLTableRowElement {
  const tr = el('tr');
  cells.forEach((c, i) => {
    const td = el('td', undefined, i >= numericFrom ? 'num' : undefined);
    if (typeof c === 'string') td.textContent = c;
    else td.append(c);
    tr.append(td);
  });
  return tr;
}

// ---------------------------------------------------------------------------------------------------
// State

let metrics: MetricsRecord[] = [];
let rounds: RoundRecord[] = [];
let last: DashboardStatus | null = null;
const curve = curvePlot($('dash-curve'));
const times = roundTimePlot($('dash-times'));

function showState(state: string, text = state): void {
  const s = $('dash-state');
  s.dataset.state = state;
  s.textContent = text;
}

function showConn(conn: 'connecting' | 'live' | 'reconnecting' | 'refused' | 'closed', text: string): void {
  const c = $('dash-conn');
  c.dataset.conn = conn;
  c.textContent = text;
}

function renderStatus(s: DashboardStatus): void {
  last = s;
  showState(s.state);
  $('dash-run').textContent = s.runId;
  document.title = `baffle — ${s.state} ${s.round?.step ?? Math.max(s.step, s.lastRound)}/${s.totalSteps}`;

  const round = $('dash-round');
  // Between rounds: the last one committed (the step counter follows once the server has applied it).
  const current = s.round ? s.round.step : Math.max(s.step, s.lastRound);
  round.dataset.round = String(current);
  round.dataset.step = String(s.step);
  round.dataset.total = String(s.totalSteps);
  round.textContent = `${current} / ${s.totalSteps}`;
  $('dash-attempt').textContent = s.round
    ? `attempt ${s.round.attempt} · ${s.round.answered} of ${s.round.participants} results (quorum ${s.round.quorum})`
    : s.state === 'done'
      ? 'finished'
      : s.state === 'waiting'
        ? 'waiting for clients'
        : `${s.step} rounds committed`;

  $('dash-connected').textContent = `${s.clients.connected} / ${s.clients.federation}`;
  $('dash-connections').textContent = `${s.clients.connections} open connection${s.clients.connections === 1 ? '' : 's'}`;

  const eta = $('dash-eta');
  eta.dataset.etaS = s.timing.etaS === null ? '' : String(s.timing.etaS);
  eta.textContent = s.state === 'done' ? 'done' : s.timing.etaS === null ? '—' : `≈ ${duration(s.timing.etaS)}`;
  $('dash-round-time').textContent =
    s.timing.stepMs === null
      ? s.timing.roundMs === null
        ? ''
        : `${ms(s.timing.roundMs)} per round`
      : `${ms(s.timing.stepMs)} per step, ${ms(s.timing.roundMs ?? 0)} of it collecting results`;

  $('dash-bytes-in').textContent = bytes(s.bytes.in);
  $('dash-bytes-out').textContent = bytes(s.bytes.out);

  renderClients(s.clients.list);
  $('dash-clients-note').textContent =
    s.clients.omitted > 0 ? `and ${s.clients.omitted} more clients` : s.clients.list.length === 0 ? 'No client has connected yet.' : '';

  const dropped = $('dash-dropped');
  dropped.dataset.count = String(s.totals.dropped);
  $('dash-dropped-count').textContent = `(${s.totals.dropped}${s.totals.abandoned > 0 ? `, ${s.totals.abandoned} rounds abandoned` : ''})`;
}

function renderClients(list: DashboardClient[]): void {
  const body = $('dash-clients');
  body.replaceChildren(
    ...list.map((c) => {
      const kind = el('span', c.kind, `pill ${c.kind}`);
      kind.title = c.agent;
      const tr = row(
        [String(c.id), kind, el('span', c.connected ? 'connected' : 'disconnected', `pill ${c.connected ? 'on' : 'off'}`), c.inRound ?? '—', ago(c.lastSeenAgoMs), String(c.counted), String(c.dropped)],
        4,
      );
      tr.dataset.client = String(c.id);
      tr.dataset.connected = String(c.connected);
      tr.dataset.kind = c.kind;
      tr.dataset.counted = String(c.counted);
      return tr;
    }),
  );
}

function renderMetrics(): void {
  const m = metrics.at(-1);
  $('dash-accuracy').textContent = m ? `${(m.testAccuracy * 100).toFixed(2)} %` : '—';
  $('dash-loss').textContent = m ? `test loss ${m.testLoss.toFixed(4)} · step ${m.step}` : 'no evaluation yet';
  void curve.update(metrics);
}

function renderRounds(): void {
  const recent = rounds.slice(-ROUNDS_LISTED).reverse();
  $('dash-rounds').replaceChildren(
    ...recent.map((r) => {
      const tr = row([
        String(r.step),
        String(r.attempts),
        r.abandoned ? 'abandoned' : `${r.counted.length} / ${r.participants.length}`,
        String(r.dropped.length),
        bytes(r.bytesIn),
        bytes(r.bytesOut),
        ms(r.ms),
      ]);
      tr.dataset.round = String(r.step);
      return tr;
    }),
  );
  const lastRound = rounds.at(-1);
  $('dash-bytes-round').textContent = lastRound ? `last round: ${bytes(lastRound.bytesIn)} in, ${bytes(lastRound.bytesOut)} out` : '';

  const drops: { step: number; client: number; reason: string }[] = [];
  for (let i = rounds.length - 1; i >= 0 && drops.length < DROPS_LISTED; i--) {
    const r = rounds[i]!;
    for (const d of r.dropped) drops.push({ step: r.step, ...d });
  }
  const section = $('dash-dropped');
  section.querySelector('ol')!.replaceChildren(
    ...drops.slice(0, DROPS_LISTED).map((d) => {
      const li = el('li');
      li.append(el('strong', `round ${d.step}, client ${d.client}: `), document.createTextNode(d.reason));
      li.dataset.client = String(d.client);
      return li;
    }),
  );
  (section.querySelector('.empty') as HTMLElement).style.display = drops.length > 0 ? 'none' : '';
  void times.update(rounds);
}

function onEvent(e: StreamEvent): void {
  const data = JSON.parse(e.data) as unknown;
  if (e.event === 'status') renderStatus(data as DashboardStatus);
  else if (e.event === 'metrics') {
    metrics = metrics.concat(data as MetricsRecord[]);
    renderMetrics();
  } else if (e.event === 'rounds') {
    rounds = rounds.concat(data as RoundRecord[]);
    if (rounds.length > ROUNDS_KEPT) rounds = rounds.slice(-ROUNDS_KEPT);
    renderRounds();
  }
}

// ---------------------------------------------------------------------------------------------------
// The stream, reconnected with backoff until the server says it is done (or refuses the token)

function tokenFromFragment(): string | null {
  const t = new URLSearchParams(location.hash.slice(1)).get('token');
  return t && t.length > 0 ? t : null;
}

let token = tokenFromFragment();
let running: AbortController | null = null;

async function stream(): Promise<void> {
  running?.abort();
  const abort = new AbortController();
  running = abort;
  let backoff = 500;
  for (;;) {
    const end: StreamEnd = await readEvents(
      '/events',
      token,
      () => {
        // Every connection starts with the whole history.
        metrics = [];
        rounds = [];
        backoff = 500;
        showConn('live', 'live');
        $('dash-auth').dataset.show = 'false';
      },
      onEvent,
      abort.signal,
    );
    if (abort.signal.aborted) return;
    if (end.kind === 'refused' && (end.status === 401 || end.status === 403)) {
      showState('error', `error: ${end.message}`);
      showConn('refused', `refused (HTTP ${end.status})`);
      if (end.status === 401) {
        $('dash-auth').dataset.show = 'true';
        $('dash-auth-message').textContent = token ? 'The token given was refused.' : '';
      }
      return;
    }
    if (last?.state === 'done') {
      showConn('closed', 'training finished: the server has closed the stream');
      return;
    }
    showConn('reconnecting', `${end.kind === 'refused' ? end.message : end.kind === 'failed' ? 'connection lost' : 'stream ended'}; reconnecting in ${(backoff / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(10_000, backoff * 2);
  }
}

function useToken(t: string): void {
  token = t.trim() || null;
  if (token) history.replaceState(null, '', `#token=${encodeURIComponent(token)}`);
  void stream();
}

$('dash-token-go').addEventListener('click', () => useToken($<HTMLInputElement>('dash-token').value));
window.addEventListener('hashchange', () => {
  const t = tokenFromFragment();
  if (t !== token) {
    token = t;
    void stream();
  }
});

void stream();
