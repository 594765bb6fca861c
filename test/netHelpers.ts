// Helpers of the network tests: real `baffle` processes on 127.0.0.1 with ephemeral ports, and cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = new URL('../bin/baffle.js', import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();

export function baffle(args: string[], cwd?: string, env?: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Kills every process the tests started that is still running. */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export function tempDir(prefix = 'baffle-net-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function waitFor<T>(what: string, fn: () => T | null | undefined | false, timeoutMs = 60_000, everyMs = 25): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Starts `baffle serve` and waits until it listens; returns the process and its port. */
export async function startServer(args: string[], env?: NodeJS.ProcessEnv): Promise<{ proc: Proc; port: number; url: string }> {
  const proc = baffle(['serve', ...args], undefined, env);
  const m = await waitFor(
    'the server to listen',
    () => {
      if (proc.child.exitCode !== null) throw new Error(`serve exited with ${proc.child.exitCode}:\n${proc.output()}`);
      return /listening on (wss?:\/\/[^\s]+:(\d+)\/)/.exec(proc.output());
    },
    60_000,
  );
  return { proc, port: Number(m[2]), url: m[1] };
}

export async function status(port: number): Promise<Record<string, any> | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/status`);
    return (await r.json()) as Record<string, any>;
  } catch {
    return null;
  }
}

export function readJsonLines(path: string): Record<string, any>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

export const withoutWall = (rows: Record<string, any>[]) => rows.map(({ wallMs: _w, ...rest }) => rest);
