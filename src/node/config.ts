// The configuration's Node side: reading config files, and 'auto' worker counts from the machine.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fsReason } from './files.ts';
import { ConfigError, configFormat, isOnnxPath, overridesToLayer, parseConfigText, resolveConfig, type RunConfig } from '../core/config/index.ts';

/**
 * Read a .json or .toml configuration file into a plain record (not yet validated; pass it to
 * resolveConfig). Errors are ConfigErrors naming the file, and the line:column when known.
 */
export function loadConfigFile(path: string): Record<string, unknown> {
  configFormat(path); // a wrong extension is refused before touching the disk
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`config file '${path}': cannot read it (${fsReason(e)})`);
  }
  return parseConfigText(path, text);
}

/** Number of worker threads to use ('auto' = one per core). */
export function resolveWorkers(config: Pick<RunConfig, 'workers'>): number {
  return config.workers === 'auto' ? Math.max(1, availableParallelism()) : config.workers;
}

/** The configuration of a command: defaults ← the --config file (if any) ← the --set overrides, validated. */
export function configFromArgs(configFile: string | undefined, sets: readonly string[]): RunConfig {
  const layers: Record<string, unknown>[] = [];
  const sources: string[] = [];
  if (configFile) {
    layers.push(loadConfigFile(configFile));
    sources.push(configFile);
  }
  layers.push(overridesToLayer(sets));
  sources.push('--set');
  return resolvePaths(resolveConfig(layers, sources));
}

/**
 * The configuration with its file paths (an ONNX `model`, `init`, `dataDir`) made absolute against `base`, so
 * that config.json and checkpoints name the same files from any working directory (`--resume`).
 */
export function resolvePaths<C extends Pick<RunConfig, 'model' | 'init' | 'dataDir'>>(config: C, base = process.cwd()): C {
  return {
    ...config,
    model: isOnnxPath(config.model) ? resolve(base, config.model) : config.model,
    init: config.init === null ? null : resolve(base, config.init),
    dataDir: config.dataDir === null ? null : resolve(base, config.dataDir),
  };
}
