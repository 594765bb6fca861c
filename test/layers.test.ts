// Layers point down: src/core is platform-free (it must run in a browser), nothing below the CLI imports it,
// and each layer imports only from itself and the layers beneath (core < node < app < report < cli).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const LAYERS = ['core', 'node', 'app', 'report', 'cli'] as const;
/** Packages the platform-free core may use: they run in browsers as they do in Node. */
const CORE_PACKAGES = new Set(['msgpackr', 'onnx-proto', 'smol-toml']);

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
  for (let m = re.exec(source); m; m = re.exec(source)) out.push(m[2]!);
  return out;
}

const layerOf = (file: string) => relative(SRC, file).split(/[\\/]/)[0] as (typeof LAYERS)[number];

test('the import scanner sees every kind of import (so the checks below can fail)', () => {
  const s = `import a from 'node:fs';\nimport type { B } from "../cli/x.ts";\nexport * from './y.ts';\nconst c = await import('ws');\nnew URL('./w.ts', import.meta.url)`;
  assert.deepEqual(specifiers(s), ['node:fs', '../cli/x.ts', './y.ts', 'ws', './w.ts']);
});

test('src/core imports no node: module and no Node-only package', () => {
  const bad: string[] = [];
  for (const f of files(join(SRC, 'core'))) {
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (s.startsWith('.')) continue;
      if (s.startsWith('node:') || !CORE_PACKAGES.has(s.split('/')[0]!)) bad.push(`${relative(SRC, f)} imports '${s}'`);
    }
  }
  assert.deepEqual(bad, []);
});

test('every layer imports only from itself and the layers beneath it', () => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const mine = LAYERS.indexOf(layerOf(f));
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (!s.startsWith('.')) continue;
      const target = resolve(dirname(f), s);
      if (!target.startsWith(SRC)) continue;
      const theirs = LAYERS.indexOf(layerOf(target));
      if (theirs > mine) bad.push(`${relative(SRC, f)} (${LAYERS[mine]}) imports ${relative(SRC, target)} (${LAYERS[theirs]})`);
    }
  }
  assert.deepEqual(bad, []);
});
