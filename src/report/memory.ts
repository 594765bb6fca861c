// The records of `baffle memory` and their table, as `baffle memory` writes them and `baffle report` reads them.

import type { MemoryMode, MemoryReport, MemorySample } from '../app/memory.ts';

export { MEMORY_MODES, type MemoryMode, type MemoryReport, type MemorySample } from '../app/memory.ts';

export function fmtMiB(bytes: number | null): string {
  return bytes === null ? '—' : (bytes / 2 ** 20).toFixed(1);
}

/** The sample of one client mode, if it was measured. */
export function sampleOf(r: MemoryReport, mode: MemoryMode): MemorySample | undefined {
  return r.samples.find((s) => s.mode === mode);
}

/** How much the resident set grew during the measured steps: peak above the process with engine and model loaded. */
export function stepGrowth(s: MemorySample): number {
  return Math.max(0, s.rssPeak - s.rssLoaded);
}

/** The markdown table of a memory report (also used by `baffle report`). */
export function memoryMarkdown(r: MemoryReport): string {
  const idle = sampleOf(r, 'idle');
  const rows = r.samples.map((s) => {
    const over = idle && s.mode !== 'idle' ? fmtMiB(s.rssPeak - idle.rssPeak) : '—';
    const growth = s.mode === 'idle' ? '—' : fmtMiB(stepGrowth(s));
    return (
      `| ${s.mode} | ${s.forwardPasses || '—'} | ${fmtMiB(s.rssPeak)} | ${over} | ${fmtMiB(s.rssLoaded)} | ${growth} | ` +
      `${fmtMiB(s.enginePeakBytes)} | ${fmtMiB(s.wasmHeapBytes)} | ${s.stepMs === null ? '—' : s.stepMs.toFixed(1)} |`
    );
  });
  return [
    `Model ${r.model} (${r.params.toLocaleString('en-US')} parameters), ${r.dataset} minibatch of ${r.batch}, ` +
      `K = ${r.K} (${r.scheme} differences), tfjs backend ${r.tfjsBackend}, ${r.steps} measured steps per mode, ` +
      `each mode in a fresh process (Node ${r.node}, ${r.cpus} CPUs).`,
    '',
    '| client mode | forward passes / step | peak RSS, MiB | peak RSS over idle, MiB | RSS with engine and model loaded, MiB | peak RSS above loaded (the steps), MiB | engine peak tensor memory in one step, MiB | wasm heap, MiB | ms / step |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Made by: \`${r.command}\``,
  ].join('\n');
}

