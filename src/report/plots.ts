// The report's plots: vega-lite specs built from run data, compiled to vega, rendered headless to SVG and
// rasterised to PNG with resvg (text in DejaVu Sans, Debian fonts-dejavu-core).
import { existsSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import {
  accuracyAt,
  algorithmName,
  baselinePairs,
  isBp,
  kVaries,
  matchBaseline,
  numbers,
  participants,
  seriesOf,
  suiteVaryingKeys,
  type MemoryData,
  type RunData,
  type SuiteData,
} from './data.ts';
import { attackFractionPoints } from './robustness.ts';

type Spec = Record<string, unknown>;

const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => `${FONT_DIR}/${f}`);
const FONT = 'DejaVu Sans';

const CONFIG = {
  font: FONT,
  title: { fontSize: 17, anchor: 'start', subtitleFontSize: 13, subtitleColor: '#555', offset: 12 },
  axis: { labelFontSize: 13, titleFontSize: 14, titlePadding: 8, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 13, titleFontSize: 13, symbolSize: 120, labelLimit: 260 },
  header: { labelFontSize: 14, titleFontSize: 14 },
  view: { stroke: '#ccc' },
  range: { category: { scheme: 'tableau10' } },
};

/** Dashed lines for backprop, solid for BAFFLE. */
const DASH = { field: 'algorithm', type: 'nominal', legend: null, scale: { domain: ['BAFFLE', 'backprop'], range: [[1, 0], [7, 4]] } };

function chart(title: string, subtitle: string | undefined, body: Spec): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    // Long subtitles break at '; ' so that they do not set the image width.
    title: subtitle ? { text: title, subtitle: subtitle.split('; ') } : title,
    background: 'white',
    padding: 16,
    config: CONFIG,
    ...body,
  };
}

export interface Plot {
  /** File name (PNG) relative to the report's output directory. */
  file: string;
  title: string;
  spec: Spec;
}

/** Runs the chart will show: the ones with at least one evaluation. */
const withMetrics = (runs: readonly RunData[]) => runs.filter((r) => r.metrics.length > 0);

function multiDataset(runs: readonly RunData[]): boolean {
  return new Set(runs.map((r) => r.config.dataset)).size > 1;
}

// Vega's tableau20: ten hues, each as a dark and a light shade.
const TABLEAU20 = [
  '#4c78a8', '#9ecae9', '#f58518', '#ffbf79', '#54a24b', '#88d27a', '#b79a20', '#f2cf5b', '#439894', '#83bcb6',
  '#e45756', '#ff9d98', '#79706e', '#bab0ac', '#d67195', '#fcbfd2', '#b279a2', '#d6a5c9', '#9e765f', '#d8b5a5',
];

/**
 * Colour scale over run ids, the same in every chart of a suite: one colour per run, a backprop baseline in the
 * light shade of the hue of the first BAFFLE run it matches exactly (so each pair reads at a glance: same hue,
 * BAFFLE solid, backprop dashed); legend in that order.
 */
function runColor(runs: readonly RunData[]): Spec {
  const domain: string[] = [];
  const range: string[] = [];
  let hue = 0;
  const add = (id: string, color: string) => {
    domain.push(id);
    range.push(color);
  };
  for (const r of runs.filter((x) => !isBp(x))) {
    const h = hue++ % 10;
    add(r.id, TABLEAU20[2 * h]!);
    const m = matchBaseline(r, runs);
    if (m && m.differs.length === 0 && !domain.includes(m.run.id)) add(m.run.id, TABLEAU20[2 * h + 1]!);
  }
  for (const r of runs) if (!domain.includes(r.id)) add(r.id, TABLEAU20[2 * (hue++ % 10)]!);
  return { field: 'run', type: 'nominal', title: 'run', scale: { domain, range }, legend: { columns: domain.length > 14 ? 2 : 1 } };
}

function facetIfNeeded(runs: readonly RunData[], layerOrUnit: Spec, width = 620, height = 340): Spec {
  if (!multiDataset(runs)) return { width, height, ...layerOrUnit };
  const { data, ...inner } = layerOrUnit;
  return {
    data,
    facet: { column: { field: 'dataset', type: 'nominal', title: null, header: { labelFontSize: 15, labelFontWeight: 'bold' } } },
    spec: { width: Math.round(width * 0.62), height, ...inner },
    spacing: 56,
    bounds: 'flush',
    resolve: { scale: { x: 'independent' }, axis: { y: 'independent' } },
  };
}

/** The suite's title up to its colon (plus a trailing "(dir)" that tells two outputs of one suite apart). */
function short(suite: SuiteData): string {
  const head = suite.title.split(':')[0]!.trim();
  const tag = /\(([^()]+)\)$/.exec(suite.title);
  return tag && !head.endsWith(tag[0]) ? `${head} ${tag[0]}` : head;
}

function curveRows(runs: readonly RunData[]) {
  return runs.flatMap((r) =>
    r.metrics.map((m) => ({
      run: r.id,
      algorithm: algorithmName(r),
      dataset: r.config.dataset,
      epoch: m.epoch,
      step: m.step,
      accuracy: m.testAccuracy,
      forwardPerClient: m.forwardPasses / participants(r.config),
      wallMinutes: m.wallMs / 60000,
    })),
  );
}

type CurveRow = ReturnType<typeof curveRows>[number];

/** Where an accuracy axis starts: a little below the lowest value, on a 10% grid, so that differences show. */
function accuracyFloor(values: readonly number[]): number {
  return values.length === 0 ? 0 : Math.max(0, Math.floor((Math.min(...values) - 0.05) * 10) / 10);
}

/** Test accuracy against one measure of progress (epochs, compute, time): one line per run, backprop dashed. */
function accuracyAgainst(
  suite: SuiteData,
  x: { field: keyof CurveRow; title: string; log?: boolean; keep?: (r: CurveRow) => boolean },
  plot: { file: string; title: string; heading: string; subtitle: string },
): Plot | null {
  const runs = withMetrics(suite.runs);
  if (runs.length === 0) return null;
  const all = curveRows(runs);
  const rows = x.keep ? all.filter(x.keep) : all;
  const body = facetIfNeeded(runs, {
    data: { values: rows },
    mark: { type: 'line', point: { size: 30 }, strokeWidth: 2.2 },
    encoding: {
      x: { field: x.field, type: 'quantitative', title: x.title, ...(x.log ? { scale: { type: 'log' } } : {}) },
      y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '.0%' }, scale: { domain: [accuracyFloor(rows.map((r) => r.accuracy)), 1] } },
      color: runColor(runs),
      strokeDash: DASH,
      tooltip: [{ field: 'run' }, { field: 'step' }, { field: 'accuracy', format: '.2%' }],
    },
  });
  return { file: `${suite.name}-${plot.file}.png`, title: plot.title, spec: chart(`${short(suite)}: ${plot.heading}`, plot.subtitle, body) };
}

export function accuracyCurves(suite: SuiteData): Plot | null {
  return accuracyAgainst(
    suite,
    { field: 'epoch', title: 'epoch (pass over every client shard)' },
    { file: 'accuracy', title: 'Test accuracy over epochs', heading: 'test accuracy over epochs', subtitle: 'EMA weights where the run keeps an EMA; dashed = backprop baseline' },
  );
}

export function accuracyVsForwardPasses(suite: SuiteData): Plot | null {
  return accuracyAgainst(
    suite,
    { field: 'forwardPerClient', title: 'forward passes per client (log scale)', log: true, keep: (r) => r.forwardPerClient > 0 },
    {
      file: 'forward-passes',
      title: 'Accuracy against forward passes',
      heading: 'accuracy against compute',
      subtitle: 'each backprop forward pass also costs one backward pass (≈ 2 forward passes)',
    },
  );
}

export function accuracyVsWallTime(suite: SuiteData): Plot | null {
  return accuracyAgainst(
    suite,
    { field: 'wallMinutes', title: 'wall-clock minutes (whole federation)' },
    {
      file: 'wall-time',
      title: 'Accuracy against wall time',
      heading: 'accuracy against wall-clock time',
      subtitle: 'all clients simulated on one machine; times depend on its load',
    },
  );
}

export function accuracyVsK(suite: SuiteData): Plot | null {
  const baffle = withMetrics(suite.runs).filter((r) => !isBp(r));
  if (!kVaries(suite)) return null;
  const varying = suiteVaryingKeys(suite.runs);
  const points = baffle.map((r) => ({ series: seriesOf(r, varying), K: r.config.K, accuracy: numbers(r)!.finalAccuracy, run: r.id, line: 'BAFFLE' }));
  const rules: { series: string; accuracy: number; run: string; line: string }[] = [];
  for (const series of new Set(points.map((p) => p.series))) {
    const first = baffle.find((r) => seriesOf(r, varying) === series)!;
    const m = matchBaseline(first, suite.runs);
    const acc = m ? accuracyAt(m.run, numbers(first)!.steps) : null;
    if (m && acc !== null) rules.push({ series, accuracy: acc, run: m.run.id, line: 'backprop, same steps' });
  }
  const ks = [...new Set(points.map((p) => p.K))].sort((a, b) => a - b);
  const color = { field: 'series', type: 'nominal', title: 'BAFFLE runs', scale: { scheme: 'tableau10' } };
  const yFloor = accuracyFloor([...points.map((p) => p.accuracy), ...rules.map((r) => r.accuracy)]);
  return {
    file: `${suite.name}-accuracy-vs-K.png`,
    title: 'Final accuracy against K',
    spec: chart(`${short(suite)}: final test accuracy against K`, 'solid: BAFFLE at each K; dashed: the matching backprop run at the same step', {
      width: 620,
      height: 340,
      layer: [
        {
          data: { values: points },
          mark: { type: 'line', point: { size: 80, filled: true }, strokeWidth: 2.5 },
          encoding: {
            x: { field: 'K', type: 'quantitative', title: 'K, directions per client per step (log scale)', scale: { type: 'log' }, axis: { values: ks, format: 'd' } },
            y: { field: 'accuracy', type: 'quantitative', title: 'final test accuracy', axis: { format: '.0%' }, scale: { domain: [yFloor, 1] } },
            color,
          },
        },
        {
          // Value labels only where they cannot collide (one series).
          data: { values: new Set(points.map((p) => p.series)).size === 1 ? points : [] },
          mark: { type: 'text', dy: -12, fontSize: 12 },
          encoding: {
            x: { field: 'K', type: 'quantitative', scale: { type: 'log' } },
            y: { field: 'accuracy', type: 'quantitative' },
            text: { field: 'accuracy', type: 'quantitative', format: '.1%' },
            color,
          },
        },
        {
          data: { values: rules },
          mark: { type: 'rule', strokeDash: [7, 4], strokeWidth: 2 },
          encoding: { y: { field: 'accuracy', type: 'quantitative' }, color },
        },
      ],
    }),
  };
}

export function baffleVsBackprop(suite: SuiteData): Plot | null {
  const rows: { run: string; algorithm: string; accuracy: number }[] = [];
  for (const { r, n, bp } of baselinePairs(suite.runs)) {
    if (bp === null) continue;
    rows.push({ run: r.id, algorithm: 'BAFFLE', accuracy: n.finalAccuracy });
    rows.push({ run: r.id, algorithm: 'backprop (matched)', accuracy: bp });
  }
  if (rows.length === 0) return null;
  const runsShown = [...new Set(rows.map((r) => r.run))];
  const color = { field: 'algorithm', type: 'nominal', title: null, scale: { domain: ['BAFFLE', 'backprop (matched)'], range: ['#4c78a8', '#f58518'] }, legend: { orient: 'bottom', labelLimit: 420 } };
  return {
    file: `${suite.name}-baffle-vs-backprop.png`,
    title: 'BAFFLE against backprop',
    spec: chart(`${short(suite)}: BAFFLE against backprop`, 'final test accuracy of each BAFFLE run and of its backprop baseline at the same step', {
      data: { values: rows },
      width: 640,
      height: Math.max(140, runsShown.length * 46),
      encoding: {
        y: { field: 'run', type: 'nominal', title: null, sort: runsShown, axis: { labelFontSize: 13 } },
        yOffset: { field: 'algorithm', type: 'nominal', sort: ['BAFFLE', 'backprop (matched)'] },
        x: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '.0%' }, scale: { domain: [0, 1.08] } },
        color,
      },
      layer: [
        { mark: { type: 'bar', height: { band: 0.42 } } },
        { mark: { type: 'text', align: 'left', dx: 4, fontSize: 12 }, encoding: { text: { field: 'accuracy', type: 'quantitative', format: '.1%' }, color: { value: '#333' } } },
      ],
    }),
  };
}

export function bytesPerRound(suite: SuiteData): Plot | null {
  const runs = withMetrics(suite.runs);
  if (runs.length === 0) return null;
  const rows = runs.flatMap((r) => {
    const n = numbers(r)!;
    return [
      { run: r.id, direction: 'uplink', bytes: n.uplinkPerClientRound, algorithm: algorithmName(r) },
      { run: r.id, direction: 'downlink', bytes: n.downlinkPerClientRound, algorithm: algorithmName(r) },
    ];
  });
  const ids = runs.map((r) => r.id);
  const max = Math.max(...rows.map((r) => r.bytes));
  const floor = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...rows.map((r) => r.bytes)) / 3)));
  return {
    file: `${suite.name}-bytes.png`,
    title: 'Bytes per client per round',
    spec: chart(`${short(suite)}: bytes per client per round`, 'uplink = client → server, downlink = server → client (the model, every FedSGD round); log scale', {
      data: { values: rows },
      width: 640,
      height: Math.max(140, ids.length * 40),
      encoding: {
        y: { field: 'run', type: 'nominal', title: null, sort: ids },
        yOffset: { field: 'direction', type: 'nominal', sort: ['uplink', 'downlink'] },
        x: { field: 'bytes', type: 'quantitative', title: 'bytes per client per round (log scale)', scale: { type: 'log', domain: [floor, max * 4] }, axis: { format: '~s' } },
        color: { field: 'direction', type: 'nominal', title: null, sort: ['uplink', 'downlink'], scale: { range: ['#54a24b', '#b279a2'] }, legend: { orient: 'bottom', labelLimit: 420 } },
      },
      layer: [
        { mark: { type: 'bar', height: { band: 0.42 } }, encoding: { x2: { datum: floor } } },
        {
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
          transform: [
            {
              calculate: "datum.bytes >= 1e6 ? format(datum.bytes / 1e6, '.1f') + ' MB' : datum.bytes >= 1e3 ? format(datum.bytes / 1e3, '.1f') + ' KB' : format(datum.bytes, 'd') + ' B'",
              as: 'label',
            },
          ],
          encoding: { text: { field: 'label', type: 'nominal' }, color: { value: '#333' } },
        },
      ],
    }),
  };
}

export function memoryPlot(mem: MemoryData, name: string): Plot {
  const r = mem.report;
  const idle = r.samples.find((s) => s.mode === 'idle');
  const rows = r.samples
    .filter((s) => s.mode !== 'idle')
    .flatMap((s) => [
      { mode: s.mode, measure: 'peak RSS above an idle process', mib: (s.rssPeak - (idle?.rssPeak ?? 0)) / 2 ** 20 },
      { mode: s.mode, measure: 'peak RSS growth during the steps', mib: Math.max(0, s.rssPeak - s.rssLoaded) / 2 ** 20 },
      ...(s.enginePeakBytes !== null ? [{ mode: s.mode, measure: 'engine peak tensor memory (tfjs)', mib: s.enginePeakBytes / 2 ** 20 }] : []),
    ]);
  const modes = r.samples.filter((s) => s.mode !== 'idle').map((s) => s.mode);
  return {
    file: `${name}.png`,
    title: 'Client memory',
    spec: chart(
      `Client memory of one training step: ${r.model}, batch ${r.batch}`,
      `each mode in a fresh process; BAFFLE modes run K = ${r.K} (${r.scheme}) perturbed forward passes, bp-tfjs one forward + backward pass; growth during the steps = peak RSS minus RSS with engine and model loaded`,
      {
        data: { values: rows },
        width: 640,
        height: Math.max(160, modes.length * 66),
        encoding: {
          y: { field: 'mode', type: 'nominal', title: null, sort: modes },
          yOffset: { field: 'measure', type: 'nominal', sort: ['peak RSS above an idle process', 'peak RSS growth during the steps', 'engine peak tensor memory (tfjs)'] },
          x: { field: 'mib', type: 'quantitative', title: 'MiB' },
          color: { field: 'measure', type: 'nominal', title: null, sort: ['peak RSS above an idle process', 'peak RSS growth during the steps', 'engine peak tensor memory (tfjs)'], scale: { range: ['#bab0ac', '#e45756', '#4c78a8'] }, legend: { orient: 'bottom', labelLimit: 520, direction: 'vertical' } },
        },
        layer: [
          { mark: { type: 'bar', height: { band: 0.3 } } },
          { mark: { type: 'text', align: 'left', dx: 4, fontSize: 12 }, encoding: { text: { field: 'mib', type: 'quantitative', format: '.1f' }, color: { value: '#333' } } },
        ],
      },
    ),
  };
}

/** Final accuracy against the share of Byzantine clients: a line per aggregator, BAFFLE solid, backprop dashed. */
export function accuracyVsAttackFraction(suite: SuiteData): Plot | null {
  const points = attackFractionPoints(suite);
  if (!points) return null;
  const fractions = [...new Set(points.map((p) => p.fraction))].sort((a, b) => a - b);
  return {
    file: `${suite.name}-accuracy-vs-attackers.png`,
    title: 'Final accuracy against the share of Byzantine clients',
    spec: chart(`${short(suite)}: final test accuracy against the share of attackers`, 'solid: BAFFLE; dashed: backprop under the same attack and aggregator', {
      width: 620,
      height: 340,
      data: { values: points },
      mark: { type: 'line', point: { size: 80, filled: true }, strokeWidth: 2.5 },
      encoding: {
        x: { field: 'fraction', type: 'quantitative', title: 'share of Byzantine clients', axis: { values: fractions, format: '.0%' } },
        y: { field: 'accuracy', type: 'quantitative', title: 'final test accuracy', axis: { format: '.0%' }, scale: { domain: [accuracyFloor(points.map((p) => p.accuracy)), 1] } },
        color: { field: 'aggregator', type: 'nominal', title: 'aggregator', scale: { scheme: 'tableau10' } },
        strokeDash: DASH,
        detail: { field: 'algorithm' },
        tooltip: [{ field: 'run' }, { field: 'accuracy', format: '.2%' }],
      },
    }),
  };
}

/** The suite's plots, in reading order (those that do not apply are left out). */
export function suitePlots(suite: SuiteData): Plot[] {
  return [accuracyVsAttackFraction(suite), accuracyCurves(suite), accuracyVsK(suite), baffleVsBackprop(suite), bytesPerRound(suite), accuracyVsForwardPasses(suite), accuracyVsWallTime(suite)].filter(
    (p): p is Plot => p !== null,
  );
}

// ---------------------------------------------------------------------------------------------------
// Rendering

export async function specToSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let fontWarning = false;

/** SVG → PNG at twice the nominal size, text in DejaVu Sans. */
export function svgToPng(svg: string): Uint8Array {
  const fontFiles = FONT_FILES.filter((f) => existsSync(f));
  if (fontFiles.length === 0 && !fontWarning) {
    fontWarning = true;
    process.stderr.write(`baffle report: ${FONT_DIR} is missing (Debian package fonts-dejavu-core); PNG text falls back to system fonts\n`);
  }
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: fontFiles.length === 0, fontFiles, defaultFontFamily: FONT },
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
  });
  return resvg.render().asPng();
}

export async function renderPng(spec: Spec): Promise<Uint8Array> {
  return svgToPng(await specToSvg(spec));
}
