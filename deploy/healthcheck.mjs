// Health check of the baffle image (Containerfile HEALTHCHECK, and the probes of deploy/k8s/server.yaml): GET
// /status of the `baffle serve` running in this container, by node itself (the image has no curl). Exit 0 when
// it answers 200, 1 otherwise.
//
// The address, the dashboard token and TLS come from the server's own command line (/proc/1/cmdline: --host,
// --port, --dashboard-token, --tls-cert) or the environment (BAFFLE_PORT, BAFFLE_DASHBOARD_TOKEN); a server
// not on a loopback host answers /status only with its dashboard token. A container that runs no server
// (`baffle join`) is healthy by definition: exit 0.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

let argv = [];
try {
  argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
} catch {
  // No /proc: fall back to the environment and the defaults.
}
const serving = argv.includes('serve') || argv.some((a) => a.endsWith('start-server') || a.endsWith('start-server.sh'));
if (argv.length > 0 && !serving) process.exit(0);

const flag = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
};
const port = Number(process.env.BAFFLE_PORT ?? flag('--port') ?? 7100);
const bound = flag('--host');
const host = !bound || bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
const token = process.env.BAFFLE_DASHBOARD_TOKEN || flag('--dashboard-token');
const tls = flag('--tls-cert') !== undefined;

const req = (tls ? https : http).get(
  {
    host,
    port,
    path: '/status',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    timeout: 4000,
    // The server's own certificate may name another host, or be self-signed: this checks liveness, not identity.
    rejectUnauthorized: false,
  },
  (res) => {
    res.resume();
    if (res.statusCode !== 200) console.error(`/status answered ${res.statusCode}`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
req.on('error', (e) => {
  console.error(`/status: ${e.message}`);
  process.exit(1);
});
