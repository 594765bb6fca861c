// The deployment, for real, with podman (`npm run test:deploy`; as root on a Debian machine; not part of
// `npm test`): installs what it lacks (podman, runc, debootstrap; kubectl from Debian's kubernetes-client),
// builds the base from Debian packages (deploy/base.sh) and the image (Containerfile), renders deploy/k8s with
// `kubectl kustomize` (through a small overlay: 2 client pods × 2 clients, 30 steps, as a user would shrink it)
// and runs the server and client containers with exactly the commands, environment and mounts of the rendered
// Deployment and Job (Secrets and the ConfigMap as read-only directories, the PVC as a host directory, the
// Service as a host name on host networking). Three scenarios:
//   1. a run to the end: every container exits 0, and the final weights are bit-identical to `baffle run` of the
//      same configuration (in the same image);
//   2. the server container killed (`podman kill -s KILL`) a third into the run and started again, then stopped
//      as a pod is (`podman stop`: SIGTERM, the Deployment's grace period) two thirds in and started again: it
//      resumes from its checkpoint each time, the clients reconnect, the final weights are the same, and
//      rounds.jsonl holds each round once;
//   3. the finished server started again: exits 0 at once, trains nothing, changes no file.
// Environment: REBUILD_BASE=1 rebuilds localhost/baffle-base even when it exists; KEEP=1 keeps the work directory.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTokens, makeTokens } from '../src/node/net/tokens.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const IMAGE = 'localhost/baffle';
const BASE = 'localhost/baffle-base';
const STEPS = 30;
const PODS = 2;
const PER_POD = 2;
const CLIENTS = PODS * PER_POD;
const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'deploy/podman/containers.conf') };
const times: [string, number][] = [];
const started: string[] = [];

function log(line: string): void {
  process.stdout.write(`test:deploy: ${line}\n`);
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { quiet?: boolean; ok?: number[] } = {}): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', stdio: opts.quiet === false ? 'inherit' : 'pipe', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (!(opts.ok ?? [0]).includes(r.status ?? -1)) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${String(r.stdout ?? '').slice(-3000)}${String(r.stderr ?? '').slice(-3000)}`);
  }
  return String(r.stdout ?? '');
}

async function timed<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  const v = await fn();
  const s = (performance.now() - t0) / 1000;
  times.push([name, s]);
  log(`${name}: ${s.toFixed(1)} s`);
  return v;
}

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

// ---- the rendered manifests ------------------------------------------------------------------------------

type Obj = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: any };

interface ContainerSpec {
  command: string[];
  args: string[];
  env: Record<string, string>;
  /** host directory → container path, read-only or not */
  mounts: { host: string; path: string; readOnly: boolean }[];
  user: string | null;
}

function render(work: string): Obj[] {
  const base = join(work, 'k8s');
  cpSync(join(ROOT, 'deploy/k8s'), base, { recursive: true, filter: (s) => !/(tokens.*\.json|dashboard\.env)$/.test(s) });
  writeFileSync(join(base, 'tokens.json'), formatTokens(makeTokens(CLIENTS)), { mode: 0o600 });
  writeFileSync(join(base, 'dashboard.env'), `BAFFLE_DASHBOARD_TOKEN=${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 32)}\n`);
  const overlay = join(work, 'overlay');
  mkdirSync(overlay);
  writeFileSync(join(overlay, 'run.toml'), `clients = ${CLIENTS}\nmaxSteps = ${STEPS}\n`);
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../k8s
configMapGenerator:
  - name: baffle-run
    behavior: replace
    files:
      - run.toml
patches:
  - target: { kind: Job, name: baffle-clients }
    patch: |-
      - op: replace
        path: /spec/parallelism
        value: ${PODS}
      - op: replace
        path: /spec/completions
        value: ${PODS}
      - op: replace
        path: /spec/template/spec/containers/0/env/0/value
        value: "${PER_POD}"
`,
  );
  const yaml = run('kubectl', ['kustomize', overlay]);
  writeFileSync(join(work, 'rendered.yaml'), yaml);
  const json = run('kubectl', ['annotate', '--local', '-f', '-', '-o', 'json', 'baffle.test/none-'], { input: yaml });
  return json.split(/^\}\n(?=\{)/m).map((s, i, all) => JSON.parse(i < all.length - 1 ? `${s}}` : s) as Obj);
}

/** A pod's container as podman runs it: the Secret and ConfigMap volumes written out read-only, the PVC at `pvc`. */
function containerOf(objs: Obj[], kind: string, work: string, pvc: string | null): ContainerSpec {
  const w = objs.find((o) => o.kind === kind)!;
  const pod = w.spec.template.spec;
  const c = pod.containers[0];
  const byName = (k: string, name: string) => objs.find((o) => o.kind === k && o.metadata.name === name)!;
  const vars: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) vars[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const s = byName('Secret', e.valueFrom.secretKeyRef.name);
      vars[e.name] = Buffer.from(s.data![e.valueFrom.secretKeyRef.key]!, 'base64').toString();
    } else throw new Error(`${kind}: env ${e.name}: only value and secretKeyRef are emulated`);
  }
  const mounts: ContainerSpec['mounts'] = [];
  for (const m of c.volumeMounts ?? []) {
    const v = pod.volumes.find((x: any) => x.name === m.name);
    let host: string;
    if (v.persistentVolumeClaim) {
      host = pvc ?? '/nonexistent'; // null: the spec is only read, not run
    } else {
      const src = v.secret ? byName('Secret', v.secret.secretName) : byName('ConfigMap', v.configMap.name);
      host = join(work, 'volumes', `${kind}-${m.name}`);
      mkdirSync(host, { recursive: true });
      for (const [f, data] of Object.entries(src.data ?? {})) {
        writeFileSync(join(host, f), v.secret ? Buffer.from(data, 'base64') : data);
        chmodSync(join(host, f), 0o444);
      }
    }
    mounts.push({ host, path: m.mountPath, readOnly: m.readOnly === true });
  }
  // Kubernetes expands $(VAR) in command and args from the container's environment.
  const expand = (s: string) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, n: string) => vars[n] ?? all);
  const sc = { ...pod.securityContext, ...c.securityContext };
  return {
    command: (c.command ?? []).map(expand),
    args: (c.args ?? []).map(expand),
    env: vars,
    mounts,
    user: sc.runAsUser !== undefined ? `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` : null,
  };
}

function podmanRun(name: string, c: ContainerSpec, extraEnv: Record<string, string>, extra: string[]): void {
  const args = ['run', '-d', '--name', name];
  for (const m of c.mounts) args.push('-v', `${m.host}:${m.path}${m.readOnly ? ':ro' : ''}`);
  for (const [k, v] of Object.entries({ ...c.env, ...extraEnv })) args.push('-e', `${k}=${v}`);
  if (c.user) args.push('--user', c.user);
  if (c.command.length > 0) args.push('--entrypoint', JSON.stringify(c.command));
  args.push(...extra, IMAGE, ...c.args);
  run('podman', args);
  started.push(name);
}

function wait(name: string): number {
  return Number(run('podman', ['wait', name]).trim());
}

function logs(name: string): string {
  return run('podman', ['logs', name]) + run('podman', ['logs', name], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function rm(name: string): void {
  spawnSync('podman', ['rm', '-f', name], { env, stdio: 'ignore' });
}

/**
 * Once the server listens: the image's HEALTHCHECK (the command of the Deployment's probes too) passes, and the
 * browser client's page, its scripts and the onnxruntime-web files it loads are served (the image prunes
 * onnxruntime-web to those).
 */
async function browserFiles(name: string, port: string): Promise<void> {
  const t0 = Date.now();
  while (spawnSync('podman', ['healthcheck', 'run', name], { env, stdio: 'ignore' }).status !== 0) {
    if (Date.now() - t0 > 120_000) throw new Error('the health check did not pass within 120 s');
    await sleep(500);
  }
  check(true, `the image HEALTHCHECK (GET /status with the dashboard token) passes after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const base = `http://127.0.0.1:${port}`;
  const page = await fetch(`${base}/join`);
  const html = await page.text();
  const scripts = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
  const ort = ['ort.wasm.min.mjs', 'ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];
  const paths = [...scripts, ...ort.map((f) => `/ort/${f}`)];
  const codes = await Promise.all(paths.map(async (p) => [p, (await fetch(new URL(p, `${base}/join`))).status] as const));
  const bad = codes.filter(([, c]) => c !== 200);
  check(page.status === 200 && scripts.length > 0 && bad.length === 0, `the browser client's page, ${scripts.length} script(s) and ${ort.length} onnxruntime-web files are served${bad.length ? ` (not: ${JSON.stringify(bad)})` : ''}`);
}

// ---- the scenarios -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (debootstrap and podman with runc)');
  const missing = [['podman', 'podman'], ['runc', 'runc'], ['debootstrap', 'debootstrap'], ['kubectl', 'kubernetes-client']].filter(([t]) => !has(t!));
  if (missing.length > 0) {
    await timed('apt-get install', () => {
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', ...missing.map(([, p]) => p!)], { env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
    });
  }
  const exists = (img: string) => spawnSync('podman', ['image', 'exists', img], { env }).status === 0;
  if (!exists(BASE) || process.env.REBUILD_BASE === '1') await timed('base (deploy/base.sh)', () => run(join(ROOT, 'deploy/base.sh'), [], { quiet: false }));
  else log(`${BASE} exists (REBUILD_BASE=1 rebuilds it)`);
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  const secret = ca && existsSync(ca) ? ['--secret', `id=ca,src=${ca}`] : [];
  await timed('image (podman build)', () =>
    run('podman', ['build', '--format', 'docker', ...secret, '--build-arg', `BASE=${BASE}`, '-t', IMAGE, ROOT], { quiet: false }),
  );
  const size = (img: string) => Number(run('podman', ['image', 'inspect', '--format', '{{.Size}}', img]).trim());
  const [imageBytes, baseBytes] = [size(IMAGE), size(BASE)];
  log(`image ${IMAGE}: ${(imageBytes / 1e6).toFixed(0)} MB, base ${(baseBytes / 1e6).toFixed(0)} MB, over the base ${((imageBytes - baseBytes) / 1e6).toFixed(0)} MB`);

  const work = mkdtempSync(join(tmpdir(), 'baffle-deploy-'));
  try {
    const objs = render(work);
    const jobSpec = objs.find((o) => o.kind === 'Job')!.spec;
    check(jobSpec.parallelism === PODS && jobSpec.completionMode === 'Indexed', `rendered: Indexed Job of ${PODS} pods`);
    const server = containerOf(objs, 'Deployment', work, null);
    const serverUrl = new URL(containerOf(objs, 'Job', work, null).env.SERVER_URL!);
    const pvc = (n: string) => {
      const d = join(work, n);
      mkdirSync(d);
      chownSync(d, 10001, 10001);
      return d;
    };
    const start = (tag: string, data: string) => {
      const srv = containerOf(objs, 'Deployment', work, data);
      podmanRun(`baffle-test-server-${tag}`, srv, {}, []);
      return srv;
    };
    const clients = (tag: string) => {
      const cli = containerOf(objs, 'Job', work, null);
      for (let i = 0; i < PODS; i++) {
        podmanRun(`baffle-test-clients-${tag}-${i}`, cli, { JOB_COMPLETION_INDEX: String(i) }, ['--no-healthcheck', '--add-host', `${serverUrl.hostname}:127.0.0.1`]);
      }
    };
    const runDir = (data: string) => join(data, server.args[0]!.replace(/^\/data\/?/, ''));
    const cfgMount = server.mounts.find((m) => m.path === '/etc/baffle/run')!;

    // The reference: `baffle run` of the same configuration, in the same image.
    const ref = pvc('ref');
    await timed(`reference: baffle run (${STEPS} steps)`, () =>
      run('podman', ['run', '--rm', '--no-healthcheck', '-v', `${ref}:/data`, '-v', `${cfgMount.host}:/etc/baffle/run:ro`, IMAGE, 'run', '--config', '/etc/baffle/run/run.toml', '--out', '/data/ref', '--quiet']),
    );
    const refWeights = sha(join(ref, 'ref/weights.bin'));

    // 1. To the end.
    const d1 = pvc('data1');
    await timed(`scenario 1: server + ${PODS} client containers × ${PER_POD} clients, ${STEPS} steps`, async () => {
      start('1', d1);
      await browserFiles('baffle-test-server-1', server.args[server.args.indexOf('--port') + 1]!);
      clients('1');
      for (let i = 0; i < PODS; i++) check(wait(`baffle-test-clients-1-${i}`) === 0, `client pod ${i} exits 0 when training is done`);
      check(wait('baffle-test-server-1') === 0, 'the server exits 0 at the end of the run');
    });
    check(sha(join(runDir(d1), 'weights.bin')) === refWeights, 'final weights bit-identical to baffle run');

    // 2. The server killed mid-run, then started again.
    const d2 = pvc('data2');
    await timed('scenario 2: the same with the server killed (SIGKILL) at 1/3, stopped (SIGTERM) at 2/3, started again each time', async () => {
      start('2a', d2);
      clients('2');
      const rounds = join(runDir(d2), 'rounds.jsonl');
      const t0 = Date.now();
      const done = () => (existsSync(rounds) ? readFileSync(rounds, 'utf8').split('\n').filter(Boolean).length : 0);
      while (done() < STEPS / 3) {
        if (Date.now() - t0 > 300_000) throw new Error(`no ${STEPS / 3} rounds within 300 s`);
        await sleep(200);
      }
      run('podman', ['kill', '-s', 'KILL', 'baffle-test-server-2a']);
      const at = done();
      check(wait('baffle-test-server-2a') === 137, `the server killed with SIGKILL after ${at} of ${STEPS} rounds`);
      rm('baffle-test-server-2a');
      await sleep(2000);
      start('2b', d2);
      // Then stopped as Kubernetes stops a pod: SIGTERM, SIGKILL after the grace period.
      const grace = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec.terminationGracePeriodSeconds as number;
      while (done() < (2 * STEPS) / 3) {
        if (Date.now() - t0 > 600_000) throw new Error(`no ${(2 * STEPS) / 3} rounds within 600 s`);
        await sleep(200);
      }
      const t1 = performance.now();
      run('podman', ['stop', '-t', String(grace), 'baffle-test-server-2b']);
      const stopS = (performance.now() - t1) / 1000;
      const code = wait('baffle-test-server-2b');
      check(code === 143 && stopS < grace, `SIGTERM after ${done()} rounds stops the server in ${stopS.toFixed(1)} s (grace ${grace} s), exit ${code}`);
      check(/resuming run \S+ after step \d+ of 30/.test(logs('baffle-test-server-2b')), 'the restarted server resumed from its checkpoint');
      rm('baffle-test-server-2b');
      start('2c', d2);
      for (let i = 0; i < PODS; i++) check(wait(`baffle-test-clients-2-${i}`) === 0, `client pod ${i} reconnects and exits 0 when training is done`);
      check(wait('baffle-test-server-2c') === 0, 'the server started a third time exits 0 at the end of the run');
    });
    check(sha(join(runDir(d2), 'weights.bin')) === refWeights, 'final weights after the kill bit-identical to baffle run');
    const steps = readFileSync(join(runDir(d2), 'rounds.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { step: number }).step);
    check(steps.length === STEPS && steps.every((s, i) => s === i + 1), `rounds.jsonl holds rounds 1…${STEPS}, each once (no round lost or counted twice)`);

    // 3. The finished server started again.
    const before = ['weights.bin', 'summary.json', 'metrics.jsonl', 'rounds.jsonl'].map((f) => [sha(join(runDir(d2), f)), statSync(join(runDir(d2), f)).mtimeMs]);
    await timed('scenario 3: the finished server started again', () => {
      start('3', d2);
      check(wait('baffle-test-server-3') === 0, 'a finished server started again exits 0');
    });
    check(/is finished .*not training again/.test(logs('baffle-test-server-3')), 'it says the run is finished and does not train');
    const after = ['weights.bin', 'summary.json', 'metrics.jsonl', 'rounds.jsonl'].map((f) => [sha(join(runDir(d2), f)), statSync(join(runDir(d2), f)).mtimeMs]);
    check(JSON.stringify(before) === JSON.stringify(after), 'and changes no file of the run');
  } finally {
    for (const n of started) rm(n);
    if (process.env.KEEP === '1') log(`work directory kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  log(`passed. image ${(imageBytes / 1e6).toFixed(0)} MB (${((imageBytes - baseBytes) / 1e6).toFixed(0)} MB over the ${(baseBytes / 1e6).toFixed(0)} MB base)`);
  for (const [n, s] of times) log(`  ${s.toFixed(1).padStart(6)} s  ${n}`);
}

main().catch((e: Error) => {
  process.stderr.write(`test:deploy: FAILED: ${e.message}\n`);
  for (const n of started) rm(n);
  process.exit(1);
});
