// Small helpers shared by the benchmark sections: robust statistics, timing, synthetic batches, zoo configs,
// and plain-text / markdown tables.
import type { ModelConfig } from '../src/core/model/types.ts';
import type { Batch } from '../src/core/engine/types.ts';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : 0.5 * (s[m - 1]! + s[m]!);
}

export function min(xs: readonly number[]): number {
  return xs.reduce((a, b) => Math.min(a, b), Infinity);
}

export function max(xs: readonly number[]): number {
  return xs.reduce((a, b) => Math.max(a, b), -Infinity);
}

/** Wall-clock milliseconds (monotonic). */
export const now = (): number => performance.now();

/** Spread of repeated measurements: relative half-range around the median, e.g. 0.05 = ±5 %. */
export function spread(xs: readonly number[]): number {
  const m = median(xs);
  return m > 0 ? (max(xs) - min(xs)) / 2 / m : 0;
}

/** A deterministic synthetic batch (images in [0, 1), labels 0..classes-1). Content does not change the cost. */
export function syntheticBatch(inputShape: readonly number[], count: number, classes: number, salt = 1): Batch {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(count * size);
  let s = (0x9e3779b9 ^ salt) >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s >>> 8) / 16777216;
  }
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) y[i] = i % classes;
  return { x, y, count };
}

const BASE = { activation: 'hardswish', hidden: [128], depth: 10, width: 2, classes: 10 } as const;

export interface ZooEntry {
  /** Short id used in tables and JSON. */
  id: string;
  label: string;
  config: ModelConfig;
}

/** The models of the client-step table (spec §5 plus the default MLP). */
export const ZOO: readonly ZooEntry[] = [
  { id: 'mlp', label: 'MLP 1024-128-10', config: { ...BASE, hidden: [128], model: 'mlp', norm: 'none', inputShape: [1, 32, 32] } },
  { id: 'lenet', label: 'LeNet 1×32×32', config: { ...BASE, hidden: [], model: 'lenet', norm: 'none', inputShape: [1, 32, 32] } },
  { id: 'lenet-gn', label: 'LeNet+GN 1×32×32', config: { ...BASE, hidden: [], model: 'lenet', norm: 'groupnorm', inputShape: [1, 32, 32] } },
  { id: 'wrn-gn-1', label: 'WRN-10-2+GN 1×32×32', config: { ...BASE, hidden: [], model: 'wrn', norm: 'groupnorm', inputShape: [1, 32, 32] } },
  { id: 'wrn-gn-3', label: 'WRN-10-2+GN 3×32×32', config: { ...BASE, hidden: [], model: 'wrn', norm: 'groupnorm', inputShape: [3, 32, 32] } },
];

export function zooEntry(id: string): ZooEntry {
  const e = ZOO.find((z) => z.id === id);
  if (!e) throw new Error(`unknown zoo model ${id}`);
  return e;
}

// ---- tables ----

export type Cell = string | number;

export interface Table {
  title: string;
  head: string[];
  rows: Cell[][];
  /** Notes printed under the table. */
  notes?: string[];
}

function cellText(c: Cell): string {
  return typeof c === 'number' ? fmtNum(c) : c;
}

/** Numbers with 3 significant digits (integers ≥ 1000 as they are, with thin grouping). */
export function fmtNum(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a === 0) return '0';
  return x.toPrecision(digits).replace(/\.?0+$/, (m) => (m.includes('.') ? '' : m));
}

export function textTable(t: Table): string {
  const cells = [t.head, ...t.rows.map((r) => r.map(cellText))];
  const widths = t.head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [`== ${t.title}`, line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)];
  for (const n of t.notes ?? []) out.push(`   ${n}`);
  return out.join('\n');
}

export function markdownTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    `### ${t.title}`,
    '',
    `| ${t.head.map(esc).join(' | ')} |`,
    `|${t.head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map((c) => esc(cellText(c))).join(' | ')} |`),
  ];
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `- ${n}`));
  return out.join('\n');
}
