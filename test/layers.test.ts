// Layers point down: src/core is platform-free (it must run in a browser), nothing below the CLI imports it,
// and each layer imports only from itself and the layers beneath (core < node, web < app < report < cli);
// node and web stand side by side and never import each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const LAYERS = ['core', 'node', 'web', 'app', 'report', 'cli'] as const;
const RANK: Record<(typeof LAYERS)[number], number> = { core: 0, node: 1, web: 1, app: 2, report: 3, cli: 4 };
/** Packages the platform-free core may use: they run in browsers as they do in Node. */
const CORE_PACKAGES = new Set(['msgpackr', 'onnx-proto', 'smol-toml']);
/** Browser packages the pages may use besides: the join page's onnxruntime-web, the dashboard's plots. */
const WEB_PACKAGES = new Set(['onnxruntime-web', 'vega', 'vega-lite']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports (static, dynamic, type-only and re-exports), and worker URLs. */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)(['"])([^'"]+)\1/g;
  // A directory (trailing slash) or a server path ('/ort/') is no module: new URL() takes those too.
  for (let m = re.exec(source); m; m = re.exec(source)) if (!m[2]!.endsWith('/') && !m[2]!.startsWith('/')) out.push(m[2]!);
  return out;
}

const layerOf = (file: string) => relative(SRC, file).split(/[\\/]/)[0] as (typeof LAYERS)[number];

test('the import scanner sees every kind of import (so the checks below can fail)', () => {
  const s = `import a from 'node:fs';\nimport type { B } from "../cli/x.ts";\nexport * from './y.ts';\nconst c = await import('ws');\nnew URL('./w.ts', import.meta.url); new URL('../web/', import.meta.url)`;
  assert.deepEqual(specifiers(s), ['node:fs', '../cli/x.ts', './y.ts', 'ws', './w.ts']);
});

test('src/core and src/web import no node: module and no Node-only package', () => {
  const bad: string[] = [];
  for (const f of [...files(join(SRC, 'core')), ...files(join(SRC, 'web'))]) {
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (s.startsWith('.')) continue;
      const browserOnly = layerOf(f) === 'web' && WEB_PACKAGES.has(s);
      if (s.startsWith('node:') || (!CORE_PACKAGES.has(s.split('/')[0]!) && !browserOnly)) bad.push(`${relative(SRC, f)} imports '${s}'`);
    }
  }
  assert.deepEqual(bad, []);
});

test('every layer imports only from itself and the layers beneath it', () => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const mine = layerOf(f);
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (!s.startsWith('.')) continue;
      const target = resolve(dirname(f), s);
      if (!target.startsWith(SRC)) continue;
      const theirs = layerOf(target);
      const sideways = theirs !== mine && RANK[theirs] === RANK[mine];
      if (RANK[theirs] > RANK[mine] || sideways) bad.push(`${relative(SRC, f)} (${mine}) imports ${relative(SRC, target)} (${theirs})`);
    }
  }
  assert.deepEqual(bad, []);
});
