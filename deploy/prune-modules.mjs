// Build stage of the Containerfile: removes from node_modules what the image never loads (run in /app after
// `npm ci --omit=dev`; prints what it freed):
// - onnxruntime-node's prebuilt binaries for other platforms (darwin, win32, the other Linux architecture);
// - onnxruntime-web's builds that the server does not serve to browser clients: it serves the files matching
//   ORT_FILE in src/node/net/web.ts (read from that file, so the two cannot drift apart; when it is not found
//   nothing is removed) and needs the package's main entry to locate them;
// - source maps (*.map) of dependencies.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const [, , webTs] = process.argv;
let freed = 0;
const size = (p) => {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : s.size;
};
const remove = (p) => {
  freed += size(p);
  rmSync(p, { recursive: true, force: true });
};

// onnxruntime-node: keep bin/napi-v*/linux/<this arch> only.
const ortNode = 'node_modules/onnxruntime-node/bin';
for (const napi of safeList(ortNode)) {
  for (const os of safeList(join(ortNode, napi))) {
    if (os !== 'linux') remove(join(ortNode, napi, os));
    else for (const arch of safeList(join(ortNode, napi, os))) if (arch !== process.arch) remove(join(ortNode, napi, os, arch));
  }
}

// onnxruntime-web: keep what web.ts serves, and the main entry.
const m = webTs ? /const ORT_FILE = \/(.+)\/;/.exec(readFileSync(webTs, 'utf8')) : null;
if (m) {
  const served = new RegExp(m[1]);
  const pkg = JSON.parse(readFileSync('node_modules/onnxruntime-web/package.json', 'utf8'));
  const main = basename(pkg.main);
  const dist = 'node_modules/onnxruntime-web/dist';
  for (const f of safeList(dist)) if (!served.test(f) && f !== main) remove(join(dist, f));
} else console.log(`prune-modules: no ORT_FILE in ${webTs}: onnxruntime-web kept whole`);

// Source maps.
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.map')) remove(p);
  }
})('node_modules');

console.log(`prune-modules: removed ${(freed / 1e6).toFixed(0)} MB`);

function safeList(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
