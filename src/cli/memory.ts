// `baffle memory` on the command line (the measurement itself: src/app/memory.ts).
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isOnnxPath } from '../core/config/index.ts';
import { configFromArgs } from '../node/config.ts';
import { checkOutputDir, writeAtomic, writeJson } from '../node/files.ts';
import { MEMORY_MODES, memoryMarkdown, type MemoryMode } from '../report/memory.ts';
import { UsageError } from './usage.ts';
import { UserError } from '../core/errors.ts';

export const MEMORY_USAGE = `  baffle memory [--config FILE] [--set key=value]... [--out DIR] [--steps N] [--modes a,b,...]
      Peak memory of one client step, BAFFLE (forward passes only) vs backprop, each in a fresh process,
      for the model, dataset, batchSize, K and scheme of the configuration. Writes memory.json and
      memory.md to DIR (default runs/memory-<model>); \`baffle report\` includes them.
`;

export async function memoryCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      steps: { type: 'string', default: '3' },
      modes: { type: 'string', default: MEMORY_MODES.join(',') },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(MEMORY_USAGE);
    return 0;
  }
  const config = configFromArgs(values.config, values.set ?? []);
  const modes = values.modes!.split(',').map((m) => m.trim()) as MemoryMode[];
  for (const m of modes) {
    if (!MEMORY_MODES.includes(m)) throw new UserError(`--modes: unknown mode '${m}' (use ${MEMORY_MODES.join(', ')})`);
  }
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps must be a positive integer, got ${values.steps}`);
  const tfjs = modes.filter((m) => m === 'baffle-tfjs' || m === 'bp-tfjs');
  if (isOnnxPath(config.model) && tfjs.length > 0) {
    throw new UsageError(`memory: mode${tfjs.length > 1 ? 's' : ''} ${tfjs.join(', ')} run${tfjs.length > 1 ? '' : 's'} the zoo models in tfjs; an imported ONNX model has the 'idle' and 'baffle-ort' modes only`, 'add --modes idle,baffle-ort');
  }
  const outDir = resolve(values.out ?? `runs/memory-${config.model.replace(/^.*[\\/]/, '').replace(/\.onnx$/i, '')}`);
  checkOutputDir(outDir, `memory: --out ${outDir}`);
  (await import('../node/model/load.ts')).checkRunData(config);
  const { measureMemory } = await import('../app/memory.ts');
  const report = await measureMemory(config, modes, steps, `baffle memory ${argv.join(' ')}`.trim());
  writeJson(join(outDir, 'memory.json'), report);
  writeAtomic(join(outDir, 'memory.md'), `${memoryMarkdown(report)}\n`);
  process.stdout.write(`${memoryMarkdown(report)}\n\nwritten: ${join(outDir, 'memory.json')}, memory.md\n`);
  return 0;
}

