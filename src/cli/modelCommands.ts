// `baffle inspect`, `baffle export` and `baffle eval`: the commands about model files.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { overridesToLayer, resolveConfig, ConfigError } from '../core/config/index.ts';
import { describeModel, formatDescription } from '../core/model/onnx/inspect.ts';
import { decodeModel } from '../core/model/onnx/read.ts';
import { loadConfigFile } from '../node/config.ts';
import { checkOutputFile, readUserFile } from '../node/files.ts';
import { UsageError } from './usage.ts';
import * as fmt from '../app/format.ts';

export const INSPECT_USAGE = `  baffle inspect MODEL.onnx [--set trainable=SELECTORS] [--json]
      What baffle sees in an ONNX model: inputs, outputs, the logits it trains on, op counts, unsupported ops,
      and every float initializer with its consumers, shape and whether the selectors would train it.
`;
export const EXPORT_USAGE = `  baffle export DIR [--out FILE]
      Write DIR/model.onnx (or FILE) from a run directory: the evaluated weights of its last checkpoint (a
      stopped run) or of its weights.bin (a finished one) in the model's own graph, loadable by any runtime.
`;
export const EVAL_USAGE = `  baffle eval MODEL.onnx [--config FILE] [--set dataset=NAME] [--set dataDir=DIR] [--set inputMean=M]
              [--set inputStd=S] [--set testSubset=N] [--set classSubset=[...]] [--json]
      Test accuracy and loss of any ONNX classifier on a data set's test split (plain onnxruntime session).
`;

function readModelFile(path: string): Uint8Array {
  return readUserFile(path, 'model file');
}

export async function inspectCommand(args: string[], say: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { set: { type: 'string', multiple: true }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('inspect: give exactly one model file (MODEL.onnx)');
  const file = positionals[0]!;
  const layer = overridesToLayer(values.set ?? []);
  const other = Object.keys(layer).filter((k) => k !== 'trainable');
  if (other.length > 0) throw new UsageError(`inspect: only --set trainable=… applies (not ${other.join(', ')})`);
  const selectors = resolveConfig([layer], ['--set']).trainable;
  const proto = decodeModel(readModelFile(file), file);
  const d = describeModel(proto, selectors, file);
  say(values.json ? JSON.stringify(d, null, 1) : formatDescription(d));
  return 0;
}

export async function exportCommand(args: string[], say: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('export: give exactly one run directory');
  const dir = resolve(positionals[0]!);
  const out = resolve(values.out ?? join(dir, 'model.onnx'));
  checkOutputFile(out, `export: --out ${out}`);
  const { exportRun } = await import('../app/modelFiles.ts');
  const { from } = await exportRun(dir, out);
  say(`wrote ${out} (weights from ${from})`);
  return 0;
}

const EVAL_KEYS = new Set(['dataset', 'dataDir', 'inputMean', 'inputStd', 'testSubset', 'classSubset']);

export async function evalCommand(args: string[], say: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string' }, set: { type: 'string', multiple: true }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('eval: give exactly one model file (MODEL.onnx)');
  const layers = [...(values.config ? [loadConfigFile(values.config)] : []), overridesToLayer(values.set ?? [])];
  const given = layers.flatMap((l) => Object.keys(l)).filter((k) => !EVAL_KEYS.has(k));
  if (given.length > 0) throw new ConfigError(`eval: only ${[...EVAL_KEYS].join(', ')} apply (not ${[...new Set(given)].join(', ')})`);
  const c = resolveConfig(layers, [...(values.config ? [values.config] : []), '--set']);
  const file = positionals[0]!;
  readModelFile(file);
  const { evaluateOnnx } = await import('../app/modelFiles.ts');
  const r = await evaluateOnnx(file, c);
  if (values.json) say(JSON.stringify({ model: file, dataset: c.dataset, ...r }));
  else say(`${file} on ${c.dataset} (${r.count} test examples, output '${r.output.name}' as ${r.output.kind}): accuracy ${fmt.percent(r.accuracy)}, loss ${r.loss.toFixed(4)}`);
  return 0;
}
