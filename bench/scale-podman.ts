// Scale on one machine (issue 16 item 4): one server container and P client containers of M virtual clients
// each (`baffle join --client i×M --virtual M`), N = P × M clients in one federation at participation 0.1, the
// default recipe otherwise. Run as root with podman and the images of docs/deploy.md already built:
//
//   node --import tsx bench/scale-podman.ts
//
// Containers as test/deploy-podman.ts runs them: CONTAINERS_CONF=deploy/podman/containers.conf (runc, host
// networking, nofile/nproc 1024), the tokens file and run.toml as read-only directories, a host directory as
// /data, user 10001. While it trains it samples every container's main process from /proc (VmRSS; utime+stime
// over wall time = CPU share, 1.0 = one core) and the machine's load; at the end it reads rounds.jsonl (wire
// bytes in/out and ms per round) and metrics.jsonl (cumulative uplinkBytes/downlinkBytes at each evaluation).
// Environment: CLIENTS (1000), PODS (4), STEPS (25), K (100), PARTICIPATION (0.1), WARMUP (5 rounds excluded from
// the steady rate), EVAL_EVERY (5), PORT (7190), NOFILE (unset: containers.conf's 1024; a number: --ulimit
// nofile=N:N (and nproc=1024:1024, which a --ulimit flag would otherwise reset to the engine's default) on the server container), KEEP=1 keeps the work directory.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTokens, makeTokens } from '../src/node/net/tokens.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const IMAGE = 'localhost/baffle';
const num = (name: string, d: number) => (process.env[name] !== undefined ? Number(process.env[name]) : d);
const CLIENTS = num('CLIENTS', 1000);
const PODS = num('PODS', 4);
const PER_POD = Math.ceil(CLIENTS / PODS);
const STEPS = num('STEPS', 25);
const K = num('K', 100);
const PARTICIPATION = num('PARTICIPATION', 0.1);
const WARMUP = num('WARMUP', 5);
const EVAL_EVERY = num('EVAL_EVERY', 5);
const PORT = num('PORT', 7190);
const NOFILE = process.env.NOFILE;
const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'deploy/podman/containers.conf') };
const started: string[] = [];
const TICK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 100;
})();

const log = (line: string) => process.stdout.write(`scale: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { ok?: number[] } = {}): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (!(opts.ok ?? [0]).includes(r.status ?? -1)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${String(r.stdout ?? '').slice(-3000)}${String(r.stderr ?? '').slice(-3000)}`);
  return String(r.stdout ?? '');
}
const rm = (name: string) => spawnSync('podman', ['rm', '-f', '-t', '2', name], { env, stdio: 'ignore' });
const state = (name: string) => run('podman', ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}', name]).trim().split(' ');
const logsOf = (name: string) => {
  const r = spawnSync('podman', ['logs', name], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
};

/** utime+stime (s) and VmRSS (bytes) of a process, null when it is gone. */
function proc(pid: number): { cpu: number; rss: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(f[11]) + Number(f[12])) / TICK; // fields 14, 15 of stat(5)
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    return { cpu, rss };
  } catch {
    return null;
  }
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

interface Sample {
  t: number;
  rounds: number;
  load1: number;
  procs: Record<string, { cpu: number; rss: number } | null>;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (podman with runc, as test/deploy-podman.ts)');
  if (spawnSync('podman', ['image', 'exists', IMAGE], { env }).status !== 0) throw new Error(`${IMAGE} missing: build it as docs/deploy.md says`);
  const T0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'baffle-scale-'));
  const mk = (n: string, mode = 0o755) => {
    const d = join(work, n);
    mkdirSync(d, { recursive: true });
    chmodSync(d, mode);
    return d;
  };
  try {
    const tokDir = mk('tokens');
    writeFileSync(join(tokDir, 'tokens.json'), formatTokens(makeTokens(CLIENTS)));
    chmodSync(join(tokDir, 'tokens.json'), 0o444);
    const cfgDir = mk('run');
    const toml = `clients = ${CLIENTS}\nparticipation = ${PARTICIPATION}\nmaxSteps = ${STEPS}\nK = ${K}\nevalEvery = ${EVAL_EVERY}\n`;
    writeFileSync(join(cfgDir, 'run.toml'), toml);
    chmodSync(join(cfgDir, 'run.toml'), 0o444);
    const data = mk('data');
    chownSync(data, 10001, 10001);
    log(`config: ${toml.trim().replace(/\n/g, '; ')}; ${PODS} client containers × ${PER_POD} virtual clients; server nofile ${NOFILE ?? '1024 (containers.conf)'}`);
    log(`load before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

    const common = ['--no-healthcheck', '--user', '10001:10001', '-v', `${tokDir}:/etc/baffle/tokens:ro`];
    const srv = 'baffle-scale-server';
    rm(srv);
    started.push(srv);
    run('podman', [
      'run', '-d', '--name', srv, ...common, ...(NOFILE ? ['--ulimit', `nofile=${NOFILE}:${NOFILE}`, '--ulimit', 'nproc=1024:1024'] : []),
      '-v', `${data}:/data`, '-v', `${cfgDir}:/etc/baffle/run:ro`, '--entrypoint', 'baffle-start-server', IMAGE,
      '/data/run', '/etc/baffle/run/run.toml', '--tokens', '/etc/baffle/tokens/tokens.json', '--host', '127.0.0.1', '--port', String(PORT),
    ]);
    const clients: string[] = [];
    for (let i = 0; i < PODS; i++) {
      const first = i * PER_POD;
      const m = Math.min(PER_POD, CLIENTS - first);
      const name = `baffle-scale-clients-${i}`;
      rm(name);
      started.push(name);
      run('podman', ['run', '-d', '--name', name, ...common, IMAGE, 'join', `ws://127.0.0.1:${PORT}`, '--tokens', '/etc/baffle/tokens/tokens.json', '--client', String(first), '--virtual', String(m), '--give-up', '600', '--quiet']);
      clients.push(name);
    }
    const tStarted = performance.now();
    log(`containers started in ${((tStarted - T0) / 1000).toFixed(1)} s`);

    const pids: Record<string, number> = {};
    for (const n of started) pids[n] = Number(state(n)[2]);
    const roundsFile = join(data, 'run', 'rounds.jsonl');
    const count = () => (existsSync(roundsFile) ? readFileSync(roundsFile, 'utf8').split('\n').filter(Boolean).length : 0);
    const samples: Sample[] = [];
    let firstRound: number | null = null;
    let failed: string | null = null;
    for (;;) {
      const t = performance.now();
      const procs: Sample['procs'] = {};
      for (const n of started) procs[n] = proc(pids[n]!);
      const rounds = count();
      samples.push({ t, rounds, load1: loadavg()[0]!, procs });
      if (firstRound === null && rounds > 0) {
        firstRound = t;
        log(`first round committed ${((t - tStarted) / 1000).toFixed(1)} s after the containers started`);
      }
      const [st, code] = state(srv);
      if (st !== 'running') {
        if (code !== '0') failed = `server container ${st}, exit ${code}`;
        break;
      }
      const deadClient = clients.find((c) => state(c)[0] !== 'running' && state(c)[1] !== '0');
      if (deadClient) {
        failed = `client container ${deadClient} exited ${state(deadClient)[1]}`;
        break;
      }
      if (t - tStarted > 1_800_000) {
        failed = 'no end within 30 min';
        break;
      }
      await sleep(1000);
    }
    const tEnd = performance.now();
    if (!failed) for (const c of clients) spawnSync('podman', ['wait', c], { env, stdio: 'ignore', timeout: 60_000 });
    if (failed) {
      log(`FAILED: ${failed}`);
      log(`server log (tail):\n${logsOf(srv).slice(-4000)}`);
      for (const c of clients) log(`${c} log (tail):\n${logsOf(c).slice(-2000)}`);
    }

    // ---- the numbers ------------------------------------------------------------------------------------
    const rounds = existsSync(roundsFile)
      ? readFileSync(roundsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; participants: number[]; counted: number[]; dropped: unknown; bytesIn: number; bytesOut: number; ms: number; attempts: number })
      : [];
    log(`rounds committed: ${rounds.length} of ${STEPS}`);
    if (rounds.length > 0) {
      const steady = rounds.filter((r) => r.step > WARMUP);
      const msSteady = steady.map((r) => r.ms);
      const sumMs = msSteady.reduce((a, b) => a + b, 0);
      // Wall rate from the samples: time from the sample that first saw WARMUP rounds to the one that saw the last.
      const sW = samples.find((s) => s.rounds >= WARMUP);
      const sL = samples.find((s) => s.rounds >= rounds.length);
      const wallRate = sW && sL && sL.rounds > sW.rounds ? (sL.rounds - sW.rounds) / ((sL.t - sW.t) / 1000) : NaN;
      log(`steady state (rounds ${WARMUP + 1}–${rounds.length}): ${(steady.length / (sumMs / 1000)).toFixed(3)} rounds/s by rounds.jsonl ms (median ${quantile(msSteady, 0.5)} ms, p90 ${quantile(msSteady, 0.9)} ms); ${wallRate.toFixed(3)} rounds/s by wall clock between samples`);
      log(`participants per round: ${quantile(rounds.map((r) => r.participants.length), 0.5)}, counted ${quantile(rounds.map((r) => r.counted.length), 0.5)} (median); attempts > 1: ${rounds.filter((r) => r.attempts > 1).length}`);
      const bi = steady.map((r) => r.bytesIn);
      const bo = steady.map((r) => r.bytesOut);
      log(`wire bytes per round (steady, median): in (up) ${kb(quantile(bi, 0.5))}, out (down) ${kb(quantile(bo, 0.5))}; per participant up ${(quantile(bi, 0.5) / quantile(steady.map((r) => r.participants.length), 0.5)).toFixed(0)} B, down ${(quantile(bo, 0.5) / quantile(steady.map((r) => r.participants.length), 0.5)).toFixed(0)} B`);
    }
    const metricsFile = join(data, 'run', 'metrics.jsonl');
    if (existsSync(metricsFile)) {
      const ms = readFileSync(metricsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; uplinkBytes: number; downlinkBytes: number; testAccuracy: number });
      const deltas: string[] = [];
      for (let i = 0; i < ms.length; i++) {
        const a = i === 0 ? { step: 0, uplinkBytes: 0, downlinkBytes: 0 } : ms[i - 1]!;
        const b = ms[i]!;
        const n = b.step - a.step;
        if (n > 0) deltas.push(`steps ${a.step + 1}–${b.step}: up ${((b.uplinkBytes - a.uplinkBytes) / n).toFixed(0)} B/step, down ${((b.downlinkBytes - a.downlinkBytes) / n).toFixed(0)} B/step`);
      }
      log(`metrics.jsonl (protocol counters): ${deltas.join('; ')}; test accuracy at step ${ms.at(-1)?.step}: ${((ms.at(-1)?.testAccuracy ?? NaN) * 100).toFixed(2)}%`);
    }
    // Process samples over the training window (first round → end).
    const win = samples.filter((s) => firstRound !== null && s.t >= firstRound);
    for (const n of started) {
      const rss = samples.map((s) => s.procs[n]?.rss).filter((x): x is number => x !== undefined && x > 0);
      const w = win.filter((s) => s.procs[n]);
      const cpu = w.length >= 2 ? (w.at(-1)!.procs[n]!.cpu - w[0]!.procs[n]!.cpu) / ((w.at(-1)!.t - w[0]!.t) / 1000) : NaN;
      const cpuTotal = samples.filter((s) => s.procs[n]).at(-1)?.procs[n]?.cpu ?? NaN;
      log(`${n}: RSS peak ${mb(Math.max(...rss))}, median ${mb(quantile(rss, 0.5))}; CPU during training ${(cpu * 100).toFixed(0)}% of one core; CPU total ${cpuTotal.toFixed(1)} s`);
    }
    log(`load average (1 min) during training: median ${quantile(win.map((s) => s.load1), 0.5).toFixed(2)}, max ${Math.max(...win.map((s) => s.load1)).toFixed(2)}`);
    log(`wall: containers up → server exit ${((tEnd - tStarted) / 1000).toFixed(1)} s (first round after ${firstRound ? ((firstRound - tStarted) / 1000).toFixed(1) : '-'} s); whole script ${((performance.now() - T0) / 1000).toFixed(1)} s`);
    const tail = logsOf(srv).split('\n').filter(Boolean).slice(-3).join(' | ');
    log(`server log tail: ${tail}`);
    if (failed) process.exitCode = 1;
  } finally {
    for (const n of started) rm(n);
    if (process.env.KEEP === '1') log(`work directory kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`scale: FAILED: ${e.message}\n`);
  for (const n of started) rm(n);
  process.exit(1);
});
