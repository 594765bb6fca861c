// Load benchmark of the networked federation: one `baffle serve` and many virtual clients spread over
// several `baffle join` processes on loopback. Reports rounds per second, the server's CPU and memory,
// and the bytes a round moves. Not a test: run it by hand.
//
//   node --import tsx bench/load.ts [--clients 1000] [--procs 4] [--K 100] [--steps 10] [--participation 1]
//                                   [--seed-policy shared|per-client] [--hidden 8] [--json FILE]
//
// Measured on the 2-vCPU dev machine while other jobs ran (load average 8–9), MLP hidden [8] (8,290
// parameters), K = 100, 1000 clients in 4 join processes, server with 2 workers:
//   participation 1, shared seeds      0.09 rounds/s (11 s/round), server 0.03 cores, RSS 330 MB peak,
//                                      33.4 MB down + 0.49 MB up per round (clients' forward passes dominate)
//   participation 1, per-client seeds  0.06 rounds/s wall, server 0.19 cores (rebuilding 1000 × 100 directions)
//   participation 0.1, shared seeds    0.9 rounds/s, server 0.04 cores, 3.3 MB down + 50 KB up per round
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;
const TICK = 100; // clock ticks per second of /proc/<pid>/stat (USER_HZ)

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    procs: { type: 'string', default: '4' },
    K: { type: 'string', default: '100' },
    steps: { type: 'string', default: '10' },
    participation: { type: 'string', default: '1' },
    'seed-policy': { type: 'string', default: 'shared' },
    hidden: { type: 'string', default: '8' },
    json: { type: 'string' },
  },
});
const clients = Number(values.clients);
const procs = Number(values.procs);
const K = Number(values.K);
const steps = Number(values.steps);

interface Sample {
  t: number;
  cpuS: number;
  rssMB: number;
  peakMB: number;
}

/** CPU seconds (all threads) and memory of a process, from /proc. */
function sample(pid: number): Sample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    if (kb('VmRSS') === 0) return null; // exited, not yet reaped
    return { t: performance.now(), cpuS, rssMB: kb('VmRSS') / 1024, peakMB: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

function start(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  return { child, out: () => out, exited: new Promise((r) => child.on('exit', (c) => r(c))) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-load-'));
  const tokens = join(dir, 'tokens.json');
  const t = spawnSync(process.execPath, [BIN, 'tokens', '--clients', String(clients), '--out', tokens, '--parts', String(procs)], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(t.stderr);
  const config = {
    clients,
    K,
    hidden: values.hidden.split(',').map(Number),
    participation: Number(values.participation),
    seedPolicy: values['seed-policy'],
    maxSteps: steps,
    evalEvery: steps,
    testSubset: 500,
    roundTimeout: 600,
    heartbeat: 15,
    minClients: clients,
    workers: 2,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const out = join(dir, 'served');
  const server = start(['serve', '--tokens', tokens, '--config', join(dir, 'config.json'), '--out', out, '--port', '0', '--quiet']);
  let port = 0;
  while (!port) {
    if (server.child.exitCode !== null) throw new Error(`serve exited:\n${server.out()}`);
    port = Number(/listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(server.out())?.[1] ?? 0);
    await sleep(50);
  }
  const url = `ws://127.0.0.1:${port}/`;
  const t0 = performance.now();
  const joins = Array.from({ length: procs }, (_, i) =>
    start(['join', url, '--tokens', join(dir, `tokens-part${i + 1}.json`), '--quiet', '--give-up', '60']),
  );
  const status = async () => {
    try {
      return (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as Record<string, any>;
    } catch {
      return null;
    }
  };
  let st = await status();
  while (st?.state !== 'training' && server.child.exitCode === null) {
    await sleep(100);
    st = await status();
  }
  const connectS = (performance.now() - t0) / 1000;
  const pid = server.child.pid as number;
  const first = sample(pid) as Sample;
  const joinFirst = joins.map((j) => sample(j.child.pid as number));
  let last = first;
  let joinLast = joinFirst;
  let peakRss = first.rssMB;
  const sampler = setInterval(() => {
    const s = sample(pid);
    if (s) {
      last = s;
      peakRss = Math.max(peakRss, s.rssMB);
    }
    const js = joins.map((j) => sample(j.child.pid as number));
    if (js.every((x) => x)) joinLast = js;
  }, 200);
  const code = await server.exited;
  clearInterval(sampler);
  await Promise.all(joins.map((j) => j.exited));
  if (code !== 0) throw new Error(`serve exited with ${code}:\n${server.out().slice(-3000)}`);

  const rounds = readFileSync(join(out, 'rounds.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const wallS = (last.t - first.t) / 1000;
  const roundMs = rounds.map((r) => r.ms as number);
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const participants = rounds[0].participants.length;
  const lastMetrics = metrics[metrics.length - 1];
  const result = {
    config,
    joinProcesses: procs,
    connectSeconds: +connectS.toFixed(2),
    rounds: rounds.length,
    participantsPerRound: participants,
    countedPerRound: mean(rounds.map((r) => r.counted.length)),
    roundsPerSecond: +(rounds.length / (roundMs.reduce((s, x) => s + x, 0) / 1000)).toFixed(3),
    roundsPerSecondWall: +(rounds.length / wallS).toFixed(3),
    roundMs: { mean: Math.round(mean(roundMs)), min: Math.min(...roundMs), max: Math.max(...roundMs) },
    server: {
      cpuSeconds: +(last.cpuS - first.cpuS).toFixed(2),
      cpuCoresBusy: +((last.cpuS - first.cpuS) / wallS).toFixed(2),
      rssMB: +last.rssMB.toFixed(1),
      peakRssMB: +Math.max(peakRss, last.peakMB).toFixed(1),
    },
    clients: {
      cpuSeconds: +joinLast.reduce((s, x, i) => s + ((x?.cpuS ?? 0) - (joinFirst[i]?.cpuS ?? 0)), 0).toFixed(2),
      rssMBPerProcess: +mean(joinLast.map((x) => x?.rssMB ?? 0)).toFixed(1),
    },
    bytesPerRound: {
      downMeasured: Math.round(mean(rounds.map((r) => r.bytesOut))),
      upMeasured: Math.round(mean(rounds.map((r) => r.bytesIn))),
      downWireModel: Math.round(lastMetrics.downlinkBytes / rounds.length),
      upWireModel: Math.round(lastMetrics.uplinkBytes / rounds.length),
      upMeasuredPerClient: Math.round(mean(rounds.map((r) => r.bytesIn / r.counted.length))),
    },
    testAccuracy: lastMetrics.testAccuracy,
  };
  console.log(JSON.stringify(result, null, 2));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
}

await main();
