// The deployment files (docs/deploy.md): the Kubernetes manifests of deploy/k8s/ as a cluster gets them
// (rendered by `kubectl kustomize`, with a tokens file and a dashboard token made here), the Containerfile and
// its build context, and the server's start-or-resume command (deploy/start-server.sh). Containers themselves
// are not run here: that is `npm run test:deploy` (test/deploy-podman.ts), which needs root and podman.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTokens, makeTokens } from '../src/node/net/tokens.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const K8S = join(ROOT, 'deploy/k8s');

function kubectl(args: string[], input?: string) {
  return spawnSync('kubectl', args, { input, encoding: 'utf8', timeout: 60_000 });
}

const probe = kubectl(['version', '--client']);
// deploy/k8s uses current kustomize fields (`labels`, `envs`): measured to render with kubectl 1.32 (kustomize
// v5.5.0); Debian 12's kubernetes-client (1.20, kustomize v2) refuses them ("unknown field"), so it counts as missing.
const kustomize = /Kustomize Version: v(\d+)/.exec(probe.stdout ?? '');
const noKubectl = probe.error
  ? `kubectl is not installed (${(probe.error as NodeJS.ErrnoException).code}); the manifests need a kubectl with kustomize v5`
  : !kustomize || Number(kustomize[1]) < 5
    ? `kubectl's kustomize is older than v5 (${(probe.stdout ?? '').trim().split('\n').join('; ')}): the manifests need kustomize v5`
    : false;

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

/** A copy of deploy/k8s with the two secret files kustomization.yaml reads (git-ignored, made by the user). */
function k8sCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'baffle-k8s-'));
  cpSync(K8S, dir, { recursive: true, filter: (src) => !/(tokens.*\.json|dashboard\.env)$/.test(src) });
  const clients = Number(/^clients\s*=\s*(\d+)/m.exec(readFileSync(join(K8S, 'run.toml'), 'utf8'))![1]);
  writeFileSync(join(dir, 'tokens.json'), formatTokens(makeTokens(clients)), { mode: 0o600 });
  writeFileSync(join(dir, 'dashboard.env'), 'BAFFLE_DASHBOARD_TOKEN=test-dashboard-token-0123456789\n');
  return dir;
}

/** The rendered manifests as objects: YAML from `kubectl kustomize`, turned into JSON by kubectl itself, offline. */
function render(dir: string): Obj[] {
  const yaml = kubectl(['kustomize', dir]);
  assert.equal(yaml.status, 0, `kubectl kustomize failed: ${yaml.stderr}`);
  // `annotate --local` (removing an annotation nobody has) prints the objects unchanged and needs no cluster.
  const json = kubectl(['annotate', '--local', '-f', '-', '-o', 'json', 'baffle.test/none-'], yaml.stdout);
  assert.equal(json.status, 0, `kubectl annotate --local failed: ${json.stderr}`);
  return json.stdout
    .split(/^\}\n(?=\{)/m)
    .map((s, i, all) => JSON.parse(i < all.length - 1 ? `${s}}` : s) as Obj);
}

describe('deploy/k8s, rendered by kubectl kustomize', { skip: noKubectl }, () => {
  let dir = '';
  let objs: Obj[] = [];
  const one = (kind: string, name?: string): Obj => {
    const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name.startsWith(name)));
    assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''} (found ${found.length})`);
    return found[0]!;
  };
  const runClients = () => Number(/^clients\s*=\s*(\d+)/m.exec(readFileSync(join(K8S, 'run.toml'), 'utf8'))![1]);

  before(() => {
    dir = k8sCopy();
    objs = render(dir);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  });

  it('has the kinds: tokens and dashboard Secrets, run ConfigMap, PVC, server Deployment, Service, clients Job', () => {
    const kinds = objs.map((o) => o.kind).sort();
    assert.deepEqual(kinds, ['ConfigMap', 'Deployment', 'Job', 'PersistentVolumeClaim', 'Secret', 'Secret', 'Service']);
    assert.ok(one('Secret', 'baffle-tokens-').data['tokens.json'], 'the tokens Secret holds tokens.json');
    assert.ok(one('Secret', 'baffle-dashboard-').data.BAFFLE_DASHBOARD_TOKEN);
    assert.ok(one('ConfigMap', 'baffle-run-').data['run.toml']);
  });

  it('runs one server, replaced never side by side, restart-safe, with resources and probes on /status', () => {
    const d = one('Deployment');
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate');
    const pod = d.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const [c] = pod.containers;
    assert.equal(c.image, 'localhost/baffle:latest');
    // The start-or-resume entry of the image, which runs `baffle serve` (checked below).
    assert.deepEqual(c.command, ['baffle-start-server']);
    assert.equal(c.args[0], '/data/run');
    assert.match(c.args[1], /^\/etc\/baffle\/run\/run\.toml$/);
    const arg = (flag: string) => c.args[c.args.indexOf(flag) + 1];
    assert.equal(arg('--tokens'), '/etc/baffle/tokens/tokens.json');
    assert.equal(arg('--host'), '0.0.0.0');
    assert.equal(arg('--port'), '7100');
    assert.equal(arg('--dashboard-token'), '$(BAFFLE_DASHBOARD_TOKEN)');
    assert.ok(c.env.some((e: any) => e.name === 'BAFFLE_DASHBOARD_TOKEN' && e.valueFrom.secretKeyRef.name === one('Secret', 'baffle-dashboard-').metadata.name));
    assert.deepEqual(c.ports, [{ name: 'baffle', containerPort: 7100 }]);
    for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      assert.deepEqual(c[p].exec.command, ['node', '/app/deploy/healthcheck.mjs'], p);
    }
    const hc = readFileSync(join(ROOT, 'deploy/healthcheck.mjs'), 'utf8');
    assert.match(hc, /path: '\/status'/);
    assert.match(hc, /\?\? 7100\)/);
    assert.match(hc, /authorization: `Bearer \$\{token\}`/);
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
  });

  it('mounts the PVC as /data in the server, the tokens Secret read-only in server and clients', () => {
    const pvc = one('PersistentVolumeClaim');
    const tokens = one('Secret', 'baffle-tokens-').metadata.name;
    for (const w of [one('Deployment'), one('Job')]) {
      const pod = w.spec.template.spec;
      const [c] = pod.containers;
      const mountOf = (pred: (v: any) => boolean) => {
        const vol = pod.volumes.find(pred);
        assert.ok(vol, `${w.kind}: the volume`);
        return c.volumeMounts.find((m: any) => m.name === vol.name);
      };
      const t = mountOf((v) => v.secret?.secretName === tokens);
      assert.equal(t.mountPath, '/etc/baffle/tokens');
      assert.equal(t.readOnly, true, `${w.kind}: tokens mounted read-only`);
      if (w.kind === 'Deployment') {
        assert.equal(mountOf((v) => v.persistentVolumeClaim?.claimName === pvc.metadata.name).mountPath, '/data');
        const cfg = mountOf((v) => v.configMap?.name === one('ConfigMap').metadata.name);
        assert.equal(cfg.mountPath, '/etc/baffle/run');
        assert.equal(cfg.readOnly, true);
      }
    }
  });

  it('serves port 7100 through the Service to the server pod only', () => {
    const s = one('Service');
    const labels = one('Deployment').spec.template.metadata.labels;
    for (const [k, v] of Object.entries(s.spec.selector)) assert.equal(labels[k], v, `selector ${k}`);
    assert.notEqual(one('Job').spec.template.metadata.labels['app.kubernetes.io/component'], s.spec.selector['app.kubernetes.io/component']);
    assert.deepEqual(s.spec.ports, [{ name: 'baffle', port: 7100, targetPort: 'baffle' }]);
  });

  it('runs the clients as an Indexed Job of P pods × M clients, covering the run’s client ids', () => {
    const j = one('Job');
    assert.equal(j.spec.completionMode, 'Indexed');
    assert.equal(j.spec.parallelism, j.spec.completions);
    const pod = j.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const [c] = pod.containers;
    assert.equal(c.image, 'localhost/baffle:latest');
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    const M = Number(env.CLIENTS_PER_POD);
    assert.equal(j.spec.parallelism * M, runClients(), 'P × M = clients of run.toml');
    assert.equal(env.SERVER_URL, `ws://${one('Service').metadata.name}:7100`);
    assert.deepEqual(c.command.slice(0, 2), ['/bin/sh', '-c']);
    const script = c.command[2] as string;
    assert.match(script, /^exec baffle join "\$SERVER_URL" --tokens \/etc\/baffle\/tokens\/tokens\.json /);
    assert.match(script, /--client "\$\(\(JOB_COMPLETION_INDEX \* CLIENTS_PER_POD\)\)" --virtual "\$CLIENTS_PER_POD"/);
    // What pod i runs, through the shell the image has: clients i×M … i×M+M−1.
    const sh = spawnSync('/bin/sh', ['-c', script.replace(/^exec baffle join/, 'echo')], {
      env: { ...env, JOB_COMPLETION_INDEX: '3', PATH: process.env.PATH },
      encoding: 'utf8',
    });
    assert.match(sh.stdout, new RegExp(`--client ${3 * M} --virtual ${M} `));
    // Bad input and a refusal fail the Job at once; retries are for the rest.
    const fail = j.spec.podFailurePolicy.rules.find((r: any) => r.action === 'FailJob');
    assert.deepEqual(fail.onExitCodes.values, [2, 3]);
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
  });

  it('passes kubectl apply --dry-run=client', (t) => {
    const r = kubectl(['apply', '--dry-run=client', '-k', dir]);
    if (r.status !== 0 && /connection refused|unable to recognize|failed to download openapi|no such host|dial tcp/.test(r.stderr)) {
      // kubectl asks the API server which kinds exist (discovery) and for its OpenAPI schema even on a client
      // dry run; without a cluster it cannot.
      t.skip(`needs a cluster: kubectl apply --dry-run=client asks an API server for its resource types (${r.stderr.trim().split('\n').at(-1)})`);
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /deployment\.apps\/baffle-server created \(dry run\)/);
    assert.match(r.stdout, /job\.batch\/baffle-clients created \(dry run\)/);
  });
});

describe('Containerfile and its build context', () => {
  const cf = readFileSync(join(ROOT, 'Containerfile'), 'utf8');
  const lines = cf.split('\n').filter((l) => !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.startsWith(`${name} `));

  it('defaults to the official Node LTS slim image, overridable with --build-arg BASE', () => {
    assert.deepEqual(instr('ARG'), ['ARG BASE=docker.io/library/node:24-slim']);
    assert.deepEqual(instr('FROM'), ['FROM ${BASE} AS build', 'FROM ${BASE}']);
  });

  it('installs production dependencies only, as locked, trusting a host CA through a build secret only', () => {
    assert.match(cf, /npm ci --omit=dev/);
    assert.match(cf, /COPY package\.json package-lock\.json \.npmrc \.\//);
    assert.match(cf, /RUN --mount=type=secret,id=ca /);
    assert.match(cf, /NODE_EXTRA_CA_CERTS=\/run\/secrets\/ca/);
    assert.doesNotMatch(cf, /https?:\/\/|registry=/, 'no address and no registry setting in the image recipe (npm uses its default)');
    // The runtime stage copies node_modules from the build stage (no npm, no cache, no secret in it).
    assert.ok(instr('COPY').includes('COPY --from=build /app/node_modules ./node_modules'));
  });

  it('runs as a non-root user, baffle as ENTRYPOINT, /data a volume, port 7100, a node health check', () => {
    const user = instr('USER');
    assert.equal(user.length, 1);
    assert.doesNotMatch(user[0]!, /^USER (root|0)(:|$)/);
    assert.deepEqual(instr('ENTRYPOINT'), ['ENTRYPOINT ["baffle"]']);
    assert.deepEqual(instr('VOLUME'), ['VOLUME /data']);
    assert.deepEqual(instr('EXPOSE'), ['EXPOSE 7100']);
    const hc = instr('HEALTHCHECK');
    assert.equal(hc.length, 1);
    assert.match(hc[0]!, /CMD \["node", "\/app\/deploy\/healthcheck\.mjs"\]$/);
    assert.doesNotMatch(lines.join('\n'), /\bcurl\b|\bwget\b/, 'no curl or wget in the instructions');
    // The user is made before USER, and owns /data.
    assert.ok(cf.indexOf('useradd') < cf.indexOf('\nUSER '));
    assert.match(cf, /chown baffle:baffle \/data/);
  });

  it('builds from an allow-list context: no tests, bench data, runs, docs or node_modules', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything left out first');
    const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
    assert.ok(ignore.slice(1).every((l) => l.startsWith('!')));
    for (const out of ['test', 'bench', 'runs', 'node_modules', 'docs', 'experiments']) assert.ok(!allowed.some((a) => a === out || a.startsWith(`${out}/`)), out);
    // Every COPY from the context names an allowed path.
    for (const c of instr('COPY').filter((l) => !l.includes('--from='))) {
      const srcs = c.split(/\s+/).slice(1, -1);
      for (const s of srcs) assert.ok(allowed.some((a) => s === a || s.startsWith(`${a}/`)), `${s} is in the build context`);
    }
  });
});

describe('deploy/start-server.sh (start or resume)', () => {
  // A stand-in `baffle` that prints its arguments, one per line.
  const dir = mkdtempSync(join(tmpdir(), 'baffle-start-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin/baffle'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
  chmodSync(join(dir, 'bin/baffle'), 0o755);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const start = (...args: string[]) => {
    const r = spawnSync(join(ROOT, 'deploy/start-server.sh'), args, {
      env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l && !l.startsWith('baffle-start-server:'));
  };
  const run = join(dir, 'run');

  it('starts a run in a directory that holds none, dropping flags whose value is empty', () => {
    assert.deepEqual(start(run, '/etc/run.toml', '--tokens', 't.json', '--dashboard-token', '', '--host', '0.0.0.0', '--quiet'), [
      'serve', '--out', run, '--config', '/etc/run.toml', '--tokens', 't.json', '--host', '0.0.0.0', '--quiet',
    ]);
  });

  it('resumes the run a directory holds (a finished one then exits 0 without training: serve --resume)', () => {
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'config.json'), '{}');
    assert.deepEqual(start(run, '/etc/run.toml', '--tokens', 't.json', '--set', 'quorum=0.5'), [
      'serve', '--resume', run, '--tokens', 't.json', '--set', 'quorum=0.5',
    ]);
  });

  it('refuses to run without RUN_DIR and CONFIG', () => {
    const r = spawnSync(join(ROOT, 'deploy/start-server.sh'), ['/data/run'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: baffle-start-server RUN_DIR CONFIG/);
  });
});
