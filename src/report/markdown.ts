// The report's text: tables and readings built from run data only (no number is typed by hand).
import { basename, relative } from 'node:path';
import { isOnnxPath, type RunConfig } from '../core/config/index.ts';
import { fmtMiB, memoryMarkdown, sampleOf, stepGrowth } from './memory.ts';
import {
  accuracyAt,
  algorithmName,
  baselinePairs,
  bytes,
  count,
  duration,
  fineTunePairs,
  isBp,
  kVaries,
  matchBaseline,
  numbers,
  pct,
  showValue,
  suiteVaryingKeys,
  type MemoryData,
  type RunData,
  type SuiteData,
} from './data.ts';
import type { Plot } from './plots.ts';
import { privacyTable, robustnessReading, robustnessTable } from './robustness.ts';

export interface MarkdownContext {
  /** Directory the markdown file lives in (links are made relative to it). */
  mdDir: string;
  /** Directory the PNGs are written to. */
  outDir: string;
  /** The `baffle report …` command line. */
  command: string;
}

const link = (ctx: MarkdownContext, path: string) => relative(ctx.mdDir, path).split('\\').join('/') || '.';

/** Whether key `k` means anything for this run (e.g. K does not for backprop, localLr not for FedSGD). */
export function relevant(run: RunData, k: keyof RunConfig): boolean {
  const c = run.config;
  if (isBp(run) && ['K', 'sigma', 'scheme', 'seedPolicy', 'clip'].includes(k)) return false;
  if (c.fedopt === 'fedsgd' && ['localSteps', 'localLr', 'localOptimizer'].includes(k)) return false;
  if (c.partition !== 'dirichlet' && k === 'alpha') return false;
  if (c.partition !== 'shards' && k === 'shardsPerClient') return false;
  if (c.model !== 'wrn' && (k === 'depth' || k === 'width')) return false;
  if (c.model !== 'mlp' && k === 'hidden') return false;
  if (!c.ema && (k === 'emaDecay' || k === 'emaEvery')) return false;
  if (k === 'trimFraction' && c.aggregator !== 'trimmed-mean') return false;
  if ((k === 'byzantine' || k === 'krumSelect') && c.aggregator !== 'krum' && c.aggregator !== 'multi-krum') return false;
  if ((k === 'centeredClipTau' || k === 'centeredClipIterations') && c.aggregator !== 'centered-clip') return false;
  if (k === 'screenFactor' && c.aggregator !== 'norm-screen' && c.aggregator !== 'cosine-screen') return false;
  if (k === 'attackScale' && c.attack !== 'scale') return false;
  if (k === 'attackNoise' && c.attack !== 'gaussian') return false;
  if (['noiseMultiplier', 'targetEpsilon', 'dpDelta', 'dpNoise'].includes(k) && c.dpClip === null) return false;
  return true;
}

/** Settings that set a run apart from the rest of its suite (the suite's independent variables). */
function settings(run: RunData, varying: readonly (keyof RunConfig)[]): string {
  const shown = varying.filter((k) => k !== 'algorithm' && relevant(run, k));
  // Paths by their last component: where a run lived on the machine that made it is no setting of it.
  const value = (k: keyof RunConfig) => {
    const v = run.config[k];
    return (k === 'init' || k === 'model' || k === 'dataDir') && typeof v === 'string' && /[\\/]/.test(v) ? basename(v) : showValue(v);
  };
  return shown.map((k) => `${k}=${value(k)}`).join(', ') || '—';
}

function gapPoints(baffle: number, bp: number | null): string {
  if (bp === null) return '—';
  const d = 100 * (bp - baffle);
  return `${d >= 0 ? '' : '−'}${Math.abs(d).toFixed(2)}`;
}

/** How the suite's runs were cut short, if they were (budget runs), read from the recorded overrides. */
function budgetNote(suite: SuiteData): string | null {
  const o = suite.overrides;
  if (Object.keys(o).length === 0) return null;
  const parts = Object.entries(o).map(([k, v]) => `${k} = ${showValue(v)}`);
  const capped = typeof o.maxSteps === 'number';
  const planned = suite.runs.map((r) => `${r.config.epochs}`);
  const epochs = [...new Set(planned)].join(' / ');
  return (
    `**${capped ? 'Budget run' : 'Modified run'}.** Every run of this suite was made with ${parts.join(', ')} on top of the suite's ` +
    `configuration${capped ? ` (the full suite trains ${epochs} epochs)` : ''}. ` +
    (suite.source ? `Full version: \`baffle suite ${suite.source} --out runs/${basename(suite.source)}\`.` : '')
  );
}

export function suiteTable(suite: SuiteData, ctx: MarkdownContext): string {
  const varying = suiteVaryingKeys(suite.runs);
  const header =
    '| run | algorithm | settings | steps | final test accuracy | best | backprop, same steps | gap, points | forward passes / client / round | uplink / client / round | total uplink | wall time |';
  const rows = suite.runs.map((r) => {
    const n = numbers(r);
    const id = `[${r.id}](${link(ctx, r.dir)})`;
    if (!n) return `| ${id} | ${algorithmName(r)} | ${settings(r, varying)} | — | not run (${r.status}) | | | | | | | |`;
    const m = isBp(r) ? null : matchBaseline(r, suite.runs);
    const bp = m ? accuracyAt(m.run, n.steps) : null;
    const bpCell = m ? `${pct(bp)} (${m.run.id}${m.differs.length ? `; differs in ${m.differs.join(', ')}` : ''})` : isBp(r) ? '(is the baseline)' : '—';
    const unfinished = r.finished ? '' : ' (unfinished)';
    return (
      `| ${id} | ${algorithmName(r)} | ${settings(r, varying)} | ${n.steps}${unfinished} | ${pct(n.finalAccuracy)} | ${pct(n.bestAccuracy)} | ` +
      `${bpCell} | ${isBp(r) ? '—' : gapPoints(n.finalAccuracy, bp)} | ${count(n.forwardPerClientRound)}${isBp(r) ? ' (+ backward)' : ''} | ` +
      `${bytes(n.uplinkPerClientRound)} | ${bytes(n.uplinkBytes)} | ${duration(n.wallSeconds)} |`
    );
  });
  return [header, '|---|---|---|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

/** A few sentences stating what the suite's numbers say (generated from the runs). */
export function suiteReading(suite: SuiteData): string[] {
  const out: string[] = [];
  const pairs = baselinePairs(suite.runs);
  if (pairs.length === 0) return out;
  const baffle = pairs.map((p) => p.r);
  const best = pairs.reduce((a, b) => (b.n.finalAccuracy > a.n.finalAccuracy ? b : a));
  const worst = pairs.reduce((a, b) => (b.n.finalAccuracy < a.n.finalAccuracy ? b : a));
  const steps = [...new Set(pairs.map((p) => p.n.steps))];
  const stepText = steps.length === 1 ? `${steps[0]} steps` : `${Math.min(...steps)}–${Math.max(...steps)} steps`;
  out.push(
    `After ${stepText}, the BAFFLE runs reached ${pct(worst.n.finalAccuracy)} (${worst.r.id}) to ${pct(best.n.finalAccuracy)} ` +
      `(${best.r.id}) test accuracy.`,
  );
  if (best.m && best.bp !== null) {
    const bpN = numbers(best.m.run)!;
    const ratio = bpN.uplinkPerClientRound / best.n.uplinkPerClientRound;
    const gap = 100 * (best.bp - best.n.finalAccuracy);
    out.push(
      `The best of them is ${Math.abs(gap).toFixed(2)} points ${gap >= 0 ? 'behind' : 'ahead of'} its backprop baseline ` +
        `(${best.m.run.id}: ${pct(best.bp)} at the same step), having run ${count(best.n.forwardPerClientRound)} forward passes per ` +
        `client per round against one forward and one backward pass, and uploaded ${bytes(best.n.uplinkPerClientRound)} per client per ` +
        `round against ${bytes(bpN.uplinkPerClientRound)} (${ratio > 1.1 ? `${ratio.toFixed(0)}× less` : ratio < 0.9 ? `${(1 / ratio).toFixed(1)}× more` : 'about the same'}).`,
    );
    out.push(
      `Wall time of the whole simulated federation: ${duration(best.n.wallSeconds)} for ${best.r.id} against ` +
        `${duration(numbers(best.m.run)!.wallSeconds)} for ${best.m.run.id}.`,
    );
  }
  const gaps = pairs.filter((p) => p.bp !== null).map((p) => ({ id: p.r.id, gap: (p.bp as number) - p.n.finalAccuracy }));
  if (gaps.length > 1) {
    const g = [...gaps].sort((a, b) => a.gap - b.gap);
    const pts = (x: number) => `${x < 0 ? '−' : ''}${Math.abs(100 * x).toFixed(2)}`;
    out.push(
      `Gap to backprop at equal steps (backprop − BAFFLE, points): from ${pts(g[0]!.gap)} (${g[0]!.id}) to ` +
        `${pts(g[g.length - 1]!.gap)} (${g[g.length - 1]!.id}).`,
    );
  }
  // An ablation (a run named 'base' and variants of it): how much each change moves BAFFLE, and its baseline.
  const base = pairs.find((p) => p.r.id === 'base');
  if (base && base.bp !== null && pairs.length > 1) {
    const pts = (x: number) => `${x < 0 ? '−' : '+'}${Math.abs(100 * x).toFixed(2)}`;
    const items = pairs
      .filter((p) => p !== base)
      .map((p) => {
        const bpMove = p.bp !== null && p.m && p.m.run !== base.m?.run ? ` (its backprop baseline ${pts(p.bp - base.bp!)})` : ' (same backprop baseline)';
        return `${p.r.id} ${pts(p.n.finalAccuracy - base.n.finalAccuracy)}${bpMove}`;
      });
    out.push(
      `Against the base run (${pct(base.n.finalAccuracy)}; backprop ${pct(base.bp)}), in points of test accuracy at the last step: ${items.join(', ')}.`,
    );
  }
  if (kVaries(suite)) {
    const byDataset = new Map<string, RunData[]>();
    for (const r of baffle) byDataset.set(r.config.dataset, [...(byDataset.get(r.config.dataset) ?? []), r]);
    for (const [dataset, runs] of byDataset) {
      const items = [...runs]
        .sort((a, b) => a.config.K - b.config.K || a.id.localeCompare(b.id))
        .map((r) => `${r.id} (K = ${r.config.K}) ${pct(numbers(r)!.finalAccuracy)}`);
      out.push(`By K on ${dataset}: ${items.join(', ')}.`);
    }
  }
  return out;
}

/** Fine-tuning runs against backprop and against training from scratch (null when the suite has none). */
export function fineTuneTable(suite: SuiteData, ctx: MarkdownContext): string | null {
  const rows = fineTunePairs(suite.runs);
  if (rows.length === 0) return null;
  const trains = (r: RunData) =>
    r.params === null ? '—' : `${r.params.toLocaleString('en-US')}${r.frozenParams ? ` of ${(r.params + r.frozenParams).toLocaleString('en-US')}` : ''}`;
  const body = rows.map(({ pair: { r, n, m, bp }, scratch, scratchAccuracy }) => {
    const start = isOnnxPath(r.config.model) ? `imported ${basename(r.config.model)}` : `init ${basename(r.config.init ?? '')}`;
    const vsScratch = scratchAccuracy === null ? '—' : gapPoints(scratchAccuracy, n.finalAccuracy).replace(/^(?!−)/, '+');
    return (
      `| [${r.id}](${link(ctx, r.dir)}) | ${start}, trainable ${showValue(r.config.trainable)}, K = ${r.config.K} | ${trains(r)} | ${n.steps} | ` +
      `${pct(n.finalAccuracy)} | ${m ? `${pct(bp)} (${m.run.id})` : '—'} | ${gapPoints(n.finalAccuracy, bp)} | ` +
      `${scratch ? `${pct(scratchAccuracy)} (${scratch.id})` : '—'} | ${vsScratch} |`
    );
  });
  return [
    '| run | starts from, trains | trained parameters | steps | BAFFLE | backprop, same steps | gap to backprop, points | BAFFLE from scratch, same steps | fine-tuning − scratch, points |',
    '|---|---|---|---|---|---|---|---|---|',
    ...body,
  ].join('\n');
}

export function suiteSection(suite: SuiteData, plots: readonly Plot[], ctx: MarkdownContext): string {
  const lines: string[] = [`## ${suite.title}`, ''];
  if (suite.description) lines.push(suite.description.replace(/\n/g, ' '), '');
  if (suite.commands.length > 1) {
    lines.push(`**Made by** (in parts; output in \`${link(ctx, suite.dir)}\`):`, '', ...suite.commands.map((c) => `- \`${c}\``), '');
  } else if (suite.command) lines.push(`**Made by:** \`${suite.commands[0] ?? suite.command}\` (output in \`${link(ctx, suite.dir)}\`).`, '');
  else lines.push(`**Run directories:** \`${link(ctx, suite.dir)}\`.`, '');
  const budget = budgetNote(suite);
  if (budget) lines.push(budget, '');
  lines.push(`**This table and these plots:** \`${ctx.command}\`.`, '');
  lines.push(suiteTable(suite, ctx), '');
  lines.push(
    '“backprop, same steps”: test accuracy of the backprop run that matches the BAFFLE run in everything but the estimator ' +
      '(K, σ, scheme, seeds, clip), at the same server step; gap = backprop − BAFFLE. Uplink counts the protocol framing ' +
      '(K floats + 20 bytes for BAFFLE FedSGD; n floats + 20 bytes for a gradient or model delta).',
    '',
  );
  const runLink = (r: RunData) => link(ctx, r.dir);
  // The suite's special tables, each with its caption, where they apply.
  const captioned: [string, string | null][] = [
    [
      '**Fine-tuning against backprop and against training from scratch**, at the last step of each run ' +
        '(“trained parameters”: trained of all; the rest are frozen in the graph).',
      fineTuneTable(suite, ctx),
    ],
    [
      '**Final test accuracy per aggregator under each attack**, BAFFLE beside backprop (same attack, same rule, same seed); ' +
        'in brackets the change from the same rule and algorithm without attackers, in points.',
      robustnessTable(suite, runLink),
    ],
    [
      '**Accuracy against the privacy budget**, (ε, δ) client-level DP from the RDP accountant (docs/privacy.md): the target ε, ' +
        'the ε the run spent (at its last step) and the noise multiplier chosen for it; the change is from the run without DP.',
      privacyTable(suite, runLink),
    ],
  ];
  for (const [caption, table] of captioned) if (table) lines.push(caption, '', table, '');
  for (const p of plots) lines.push(`![${p.title}](${link(ctx, `${ctx.outDir}/${p.file}`)})`, '');
  const reading = [...robustnessReading(suite), ...suiteReading(suite)];
  if (reading.length > 0 || suite.notes) {
    lines.push('### Reading', '');
    if (reading.length > 0) lines.push(`**Measured.** ${reading.join(' ')}`, '');
    if (suite.notes) lines.push(suite.notes, '');
  }
  return lines.join('\n');
}

export function summaryTable(suites: readonly SuiteData[], ctx: MarkdownContext): string | null {
  const rows: string[] = [];
  for (const s of suites) {
    const pairs = baselinePairs(s.runs);
    // A suite over several datasets (the K sweep) gets one row per dataset: accuracies across datasets don't compare.
    const datasets = [...new Set(pairs.map((p) => p.r.config.dataset))];
    for (const dataset of datasets) {
      const mine = pairs.filter((p) => p.r.config.dataset === dataset);
      const best = mine.reduce((a, b) => (b.n.finalAccuracy > a.n.finalAccuracy ? b : a));
      const bpUp = best.m ? numbers(best.m.run)!.uplinkPerClientRound : null;
      rows.push(
        `| [${s.title}](#${anchor(s.title)})${datasets.length > 1 ? `, ${dataset}` : ''} | ${best.r.id} | ${best.n.steps} | ${pct(best.n.finalAccuracy)} | ` +
          `${best.m ? `${pct(best.bp)} (${best.m.run.id})` : '—'} | ${gapPoints(best.n.finalAccuracy, best.bp)} | ` +
          `${bytes(best.n.uplinkPerClientRound)} | ${bpUp === null ? '—' : bytes(bpUp)} |`,
      );
    }
  }
  if (rows.length === 0) return null;
  void ctx;
  return [
    '| suite | best BAFFLE run | steps | its test accuracy | backprop, same steps | gap, points | BAFFLE uplink / client / round | backprop uplink / client / round |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** One row per memory measurement: BAFFLE's client memory as a fraction of backprop's. */
export function memorySummaryTable(memory: readonly MemoryData[]): string | null {
  const rows: string[] = [];
  for (const mem of memory) {
    const r = mem.report;
    const idle = sampleOf(r, 'idle');
    const ort = sampleOf(r, 'baffle-ort');
    const bp = sampleOf(r, 'bp-tfjs');
    const fwd = sampleOf(r, 'baffle-tfjs');
    if (!idle || !ort || !bp) continue;
    const over = (s: typeof bp) => s.rssPeak - idle.rssPeak;
    const share = (a: number, b: number) => pct(a / b, 0);
    rows.push(
      `| [${r.model}](#${anchor(`Client memory, ${r.model}: BAFFLE against backprop`)}) | ${r.batch} | ${r.K} | ${fmtMiB(over(ort))} | ${fmtMiB(over(bp))} | ` +
        `**${share(over(ort), over(bp))}** | ${fmtMiB(stepGrowth(ort))} | ${fmtMiB(stepGrowth(bp))} | **${share(stepGrowth(ort), stepGrowth(bp))}** | ` +
        `${fwd?.enginePeakBytes && bp.enginePeakBytes ? `${fmtMiB(fwd.enginePeakBytes)} / ${fmtMiB(bp.enginePeakBytes)} = **${share(fwd.enginePeakBytes, bp.enginePeakBytes)}**` : '—'} |`,
    );
  }
  if (rows.length === 0) return null;
  return [
    '| model | batch | K | BAFFLE client (ONNX Runtime): peak RSS over idle, MiB | backprop client (tfjs): peak RSS over idle, MiB | BAFFLE as a fraction of backprop | BAFFLE: RSS growth during the steps, MiB | backprop: RSS growth, MiB | fraction | same engine (tfjs): peak tensor memory of a step, BAFFLE / backprop, MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
export function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

export function memorySection(mem: MemoryData, plot: Plot | null, ctx: MarkdownContext): string {
  const r = mem.report;
  const lines = [`## Client memory, ${r.model}: BAFFLE against backprop`, '', memoryMarkdown(r), '', `(from \`${link(ctx, mem.dir)}\`)`, ''];
  if (plot) lines.push(`![${plot.title}](${link(ctx, `${ctx.outDir}/${plot.file}`)})`, '');
  const idle = sampleOf(r, 'idle');
  const ort = sampleOf(r, 'baffle-ort');
  const fwd = sampleOf(r, 'baffle-tfjs');
  const bp = sampleOf(r, 'bp-tfjs');
  const mib = (b: number) => `${fmtMiB(b)} MiB`;
  const sentences: string[] = [];
  if (idle && ort && bp) {
    sentences.push(
      `The BAFFLE client (ONNX Runtime) needs ${pct((ort.rssPeak - idle.rssPeak) / (bp.rssPeak - idle.rssPeak), 0)} of the backprop ` +
        `client's memory over an idle process (peak resident set), and its resident set grows during the steps by ` +
        `${pct(stepGrowth(ort) / stepGrowth(bp), 0)} of what the backprop client's grows.`,
    );
  }
  if (fwd && bp && fwd.enginePeakBytes !== null && bp.enginePeakBytes !== null) {
    sentences.push(
      `On the same engine (tfjs, ${r.tfjsBackend}), one backprop step peaked at ${mib(bp.enginePeakBytes)} of tensor memory against ` +
        `${mib(fwd.enginePeakBytes)} for one of BAFFLE's forward passes (${(bp.enginePeakBytes / fwd.enginePeakBytes).toFixed(1)}×): ` +
        'backprop holds the activations saved for the backward pass together with their gradients and the parameter gradients, ' +
        'a forward pass only the activations of the pass in flight (tfjs frees them when the pass ends).',
    );
  }
  if (ort && bp) {
    const growth = (s: typeof bp) => mib(stepGrowth(s));
    sentences.push(
      `Resident memory grew during the training steps (peak minus the process with engine and model loaded) by ${growth(ort)} for ` +
        `the BAFFLE client on ONNX Runtime${fwd ? `, ${growth(fwd)} for BAFFLE on tfjs` : ''} and ${growth(bp)} for the backprop client.`,
    );
  }
  if (idle && ort && bp) {
    sentences.push(
      `Whole-process peak above an idle process, engine code and allocator included: ${mib(ort.rssPeak - idle.rssPeak)} (BAFFLE, ONNX Runtime), ` +
        `${fwd ? `${mib(fwd.rssPeak - idle.rssPeak)} (BAFFLE, tfjs), ` : ''}${mib(bp.rssPeak - idle.rssPeak)} (backprop, tfjs).`,
    );
  }
  if (ort && bp && ort.stepMs !== null && bp.stepMs !== null) {
    sentences.push(
      `Client compute: ${ort.stepMs.toFixed(0)} ms for a BAFFLE step (${ort.forwardPasses} forward passes, ONNX Runtime) against ` +
        `${bp.stepMs.toFixed(0)} ms for a backprop step (tfjs), ${(ort.stepMs / bp.stepMs).toFixed(1)}×${r.loadAvg1 === undefined ? '' : ` (one-minute load average ${r.loadAvg1.toFixed(1)} on ${r.cpus} CPUs when measured)`}.`,
    );
  }
  if (sentences.length > 0) lines.push('### Reading', '', `**Measured.** ${sentences.join(' ')}`, '');
  return lines.join('\n');
}
