// The report's views of the trust suites: accuracy per aggregator under each attack (BAFFLE beside backprop),
// and accuracy against the privacy budget ε. Built from run data only, like the rest of the report.
import type { RunConfig } from '../core/config/index.ts';
import { algorithmName, isBp, numbers, pct, type RunData, type SuiteData } from './data.ts';

const finished = (runs: readonly RunData[]) => runs.filter((r) => numbers(r) !== null);

// ---------------------------------------------------------------------------------------------------
// Byzantine clients

/** An attack condition: which attack, on what fraction of the clients ('clean' when there is none). */
export interface AttackCondition {
  key: string;
  label: string;
  attack: RunConfig['attack'];
  fraction: number;
}

export function attackCondition(c: RunConfig): AttackCondition {
  if (c.attack === 'none' || c.attackFraction === 0) return { key: 'none', label: 'clean', attack: 'none', fraction: 0 };
  const share = `${Math.round(c.attackFraction * 100)}%`;
  return { key: `${c.attack}@${c.attackFraction}`, label: `${share} ${c.attack}`, attack: c.attack, fraction: c.attackFraction };
}

/** Whether the suite is about attacks and aggregators: some run is attacked, or aggregators other than the mean are compared. */
export function isRobustnessSuite(suite: SuiteData): boolean {
  const runs = finished(suite.runs);
  return runs.some((r) => r.config.attack !== 'none' && r.config.attackFraction > 0) && new Set(runs.map((r) => attackCondition(r.config).key)).size > 1;
}

function conditionOrder(a: AttackCondition, b: AttackCondition): number {
  if (a.attack === 'none' || b.attack === 'none') return a.attack === 'none' ? (b.attack === 'none' ? 0 : -1) : 1;
  return a.attack === b.attack ? a.fraction - b.fraction : a.attack.localeCompare(b.attack);
}

const AGGREGATOR_ORDER = ['mean', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'centered-clip', 'norm-screen', 'cosine-screen'];

/** One row per aggregator and algorithm, one column per attack condition; each cell the final test accuracy. */
export function robustnessGrid(suite: SuiteData): {
  conditions: AttackCondition[];
  rows: { aggregator: string; algorithm: string; cells: (RunData | null)[] }[];
} | null {
  if (!isRobustnessSuite(suite)) return null;
  const runs = finished(suite.runs);
  const byKey = new Map<string, AttackCondition>();
  for (const r of runs) byKey.set(attackCondition(r.config).key, attackCondition(r.config));
  const conditions = [...byKey.values()].sort(conditionOrder);
  const aggregators = [...new Set(runs.map((r) => r.config.aggregator))].sort((a, b) => AGGREGATOR_ORDER.indexOf(a) - AGGREGATOR_ORDER.indexOf(b));
  const rows = [];
  for (const aggregator of aggregators) {
    for (const algorithm of ['BAFFLE', 'backprop']) {
      const mine = runs.filter((r) => r.config.aggregator === aggregator && algorithmName(r) === algorithm);
      if (mine.length === 0) continue;
      rows.push({ aggregator, algorithm, cells: conditions.map((c) => mine.find((r) => attackCondition(r.config).key === c.key) ?? null) });
    }
  }
  return { conditions, rows };
}

/** The grid as a markdown table, with each attacked cell's change from the same rule's clean run. */
export function robustnessTable(suite: SuiteData, link: (r: RunData) => string): string | null {
  const grid = robustnessGrid(suite);
  if (!grid) return null;
  const cleanAt = grid.conditions.findIndex((c) => c.attack === 'none');
  const body = grid.rows.map(({ aggregator, algorithm, cells }) => {
    const clean = cleanAt >= 0 ? cells[cleanAt] : null;
    const cleanAcc = clean ? numbers(clean)!.finalAccuracy : null;
    const shown = cells.map((r, i) => {
      if (!r) return '—';
      const acc = numbers(r)!.finalAccuracy;
      const delta = i !== cleanAt && cleanAcc !== null ? ` (${signedPoints(acc - cleanAcc)})` : '';
      return `[${pct(acc)}](${link(r)})${delta}`;
    });
    return `| ${aggregator} | ${algorithm} | ${shown.join(' | ')} |`;
  });
  return [
    `| aggregator | algorithm | ${grid.conditions.map((c) => c.label).join(' | ')} |`,
    `|---|---|${grid.conditions.map(() => '---|').join('')}`,
    ...body,
  ].join('\n');
}

/** Sentences on what the grid says: per attack condition, the best robust rule against the mean, for BAFFLE. */
export function robustnessReading(suite: SuiteData): string[] {
  const grid = robustnessGrid(suite);
  if (!grid) return [];
  const out: string[] = [];
  const baffle = grid.rows.filter((r) => r.algorithm === 'BAFFLE');
  const cleanAt = grid.conditions.findIndex((c) => c.attack === 'none');
  const acc = (r: RunData | null | undefined) => (r ? numbers(r)!.finalAccuracy : null);
  grid.conditions.forEach((c, i) => {
    if (i === cleanAt) return;
    const mean = baffle.find((r) => r.aggregator === 'mean');
    const robust = baffle.filter((r) => r.aggregator !== 'mean' && r.cells[i]);
    if (robust.length === 0) return;
    const best = robust.reduce((a, b) => (acc(b.cells[i])! > acc(a.cells[i])! ? b : a));
    const parts = [`At ${c.label}, BAFFLE with ${best.aggregator} reached ${pct(acc(best.cells[i]))}`];
    const bestClean = cleanAt >= 0 ? acc(best.cells[cleanAt]) : null;
    if (bestClean !== null) parts.push(`(${signedPoints(acc(best.cells[i])! - bestClean)} from its clean run)`);
    const meanAcc = mean ? acc(mean.cells[i]) : null;
    if (meanAcc !== null) {
      const meanClean = cleanAt >= 0 && mean ? acc(mean.cells[cleanAt]) : null;
      parts.push(`against the mean's ${pct(meanAcc)}${meanClean !== null ? ` (${signedPoints(meanAcc - meanClean)})` : ''}`);
    }
    out.push(`${parts.join(' ')}.`);
  });
  return out;
}

function signedPoints(d: number): string {
  const p = 100 * d;
  return `${p >= 0 ? '+' : '−'}${Math.abs(p).toFixed(2)}`;
}

/** Points of the accuracy-against-attackers plot: one per finished run of a single attack (plus the clean runs). */
export function attackFractionPoints(suite: SuiteData): { aggregator: string; algorithm: string; fraction: number; accuracy: number; run: string }[] | null {
  if (!isRobustnessSuite(suite)) return null;
  const runs = finished(suite.runs);
  const attacks = new Set(runs.map((r) => attackCondition(r.config)).filter((c) => c.attack !== 'none').map((c) => c.attack));
  const fractions = new Set(runs.map((r) => attackCondition(r.config).fraction));
  if (attacks.size !== 1 || fractions.size < 3) return null;
  return runs.map((r) => ({
    aggregator: r.config.aggregator,
    algorithm: algorithmName(r),
    fraction: attackCondition(r.config).fraction,
    accuracy: numbers(r)!.finalAccuracy,
    run: r.id,
  }));
}

// ---------------------------------------------------------------------------------------------------
// Differential privacy

const isPrivate = (r: RunData) => r.config.dpClip !== null;

/** ε as a table cell: the target (or the noise multiplier that was set), ∞ without DP. */
function budgetKey(r: RunData): string {
  if (!isPrivate(r)) return '∞';
  return r.config.targetEpsilon !== null ? String(r.config.targetEpsilon) : `σ=${r.config.noiseMultiplier}`;
}

/** One row per privacy budget: BAFFLE and backprop, each with the ε spent, its noise multiplier and its drop from no DP. */
export function privacyTable(suite: SuiteData, link: (r: RunData) => string): string | null {
  const runs = finished(suite.runs);
  if (!runs.some(isPrivate)) return null;
  const budgets = [...new Set(runs.map(budgetKey))].sort((a, b) => budgetRank(a) - budgetRank(b));
  const find = (bp: boolean, key: string) => runs.find((r) => isBp(r) === bp && budgetKey(r) === key) ?? null;
  const cell = (r: RunData | null, reference: RunData | null): string[] => {
    if (!r) return ['—', '—', '—', '—'];
    const acc = numbers(r)!.finalAccuracy;
    const eps = r.privacy ? (r.privacy.epsilon === null ? '∞' : r.privacy.epsilon.toFixed(2)) : '∞';
    const sigma = r.privacy ? r.privacy.noiseMultiplier.toFixed(3) : '0';
    const drop = reference && reference !== r ? signedPoints(acc - numbers(reference)!.finalAccuracy) : '—';
    return [`[${pct(acc)}](${link(r)})`, eps, sigma, drop];
  };
  const body = budgets.map((key) => {
    const b = find(false, key);
    const p = find(true, key);
    const delta = (b ?? p)?.privacy?.delta;
    return `| ${key}${delta !== undefined ? ` (δ = ${delta < 1e-3 ? delta.toExponential().replace('e-', 'e−') : delta})` : ''} | ${[...cell(b, find(false, '∞')), ...cell(p, find(true, '∞'))].join(' | ')} |`;
  });
  return [
    '| target ε | BAFFLE | ε spent | noise multiplier | change from no DP, points | DP backprop | ε spent | noise multiplier | change from no DP, points |',
    '|---|---|---|---|---|---|---|---|---|',
    ...body,
  ].join('\n');
}

function budgetRank(key: string): number {
  if (key === '∞') return Number.POSITIVE_INFINITY;
  const n = Number(key);
  return Number.isFinite(n) ? n : Number.MAX_VALUE;
}
