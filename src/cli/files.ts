// Run-directory files, written atomically (temp file + rename) so a crash never leaves a half-written file.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BuiltModel } from '../model/types.ts';

export function writeAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function writeJson(path: string, value: unknown): void {
  writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeJsonLines(path: string, records: readonly unknown[]): void {
  writeAtomic(path, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
}

/**
 * Final weights: `weights.bin` is the flat parameter vector as little-endian float32 in layout order;
 * `weights.json` describes it (model config, each parameter's name, shape and offset). See docs/formats.md.
 */
export function writeWeights(dir: string, model: BuiltModel, weights: Float32Array, kind: 'ema' | 'raw'): void {
  const bytes = new Uint8Array(weights.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < weights.length; i++) view.setFloat32(i * 4, weights[i], true);
  writeAtomic(join(dir, 'weights.bin'), bytes);
  writeJson(join(dir, 'weights.json'), {
    format: 'baffle-weights/1',
    dtype: 'float32',
    byteOrder: 'little-endian',
    weights: kind,
    params: model.layout.size,
    model: model.config,
    layout: model.layout.params.map((p) => ({ name: p.name, shape: p.shape, offset: p.offset, size: p.size })),
  });
}
