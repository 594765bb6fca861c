// Section 'scaling': measured seconds per FedSGD step of simulate() along four axes — directions K, clients,
// model size, workers — and a PNG of the curves (vega-lite → SVG → @resvg/resvg-js).
//
// Each point is a real simulation (bench/e2e.ts: first step and evaluation excluded). Two figures per point:
// the wall-clock step time (what this shared machine gave), and process on-CPU seconds per step ÷ workers,
// the step time on an otherwise idle machine (the work spreads evenly over the workers; see docs/performance.md).
import { existsSync, writeFileSync } from 'node:fs';
import type { Dataset } from '../src/core/data/types.ts';
import { benchE2e, type E2eRecipe } from './e2e.ts';
import { fmtNum, type Table } from './lib.ts';

export type Axis = 'K' | 'clients' | 'params' | 'workers';

export interface ScalingPoint {
  axis: Axis;
  /** Series within the axis (e.g. 'MLP' and 'conv' on the model-size axis). */
  series: string;
  label: string;
  x: number;
  K: number;
  clients: number;
  params: number;
  workers: number;
  passesPerStep: number;
  directionsPerStep: number;
  steps: number;
  wallSecPerStep: number;
  cpuSecPerStep: number;
  idleSecPerStep: number;
}

const LENET = { model: 'lenet', norm: 'none', activation: 'hardswish', scheme: 'forward', seedPolicy: 'per-client' };

interface Plan {
  axis: Axis;
  series: string;
  label: string;
  x: (p: { K: number; clients: number; params: number; workers: number }) => number;
  overrides: Record<string, unknown>;
  workers?: number;
}

function plans(quick: boolean, cores: number): Plan[] {
  const out: Plan[] = [];
  for (const K of quick ? [10, 50, 100] : [10, 25, 50, 100, 200]) {
    out.push({ axis: 'K', series: 'LeNet, 10 clients', label: `LeNet K=${K}`, x: (p) => p.K, overrides: { ...LENET, K, clients: 10 } });
  }
  for (const clients of quick ? [1, 5, 10] : [1, 2, 5, 10, 20]) {
    out.push({ axis: 'clients', series: 'LeNet, K=100', label: `LeNet ${clients} clients`, x: (p) => p.clients, overrides: { ...LENET, K: 100, clients } });
  }
  for (const hidden of quick ? [32, 512] : [8, 32, 128, 512, 2048]) {
    out.push({
      axis: 'params',
      series: 'MLP 1024-h-10',
      label: `MLP h=${hidden}`,
      x: (p) => p.params,
      overrides: { model: 'mlp', norm: 'none', hidden: [hidden], K: 20, clients: 5 },
    });
  }
  out.push({ axis: 'params', series: 'conv (LeNet, WRN-10-2+GN)', label: 'LeNet K=20', x: (p) => p.params, overrides: { ...LENET, K: 20, clients: 5 } });
  if (!quick) {
    out.push({
      axis: 'params',
      series: 'conv (LeNet, WRN-10-2+GN)',
      label: 'WRN-10-2+GN K=20',
      x: (p) => p.params,
      overrides: { model: 'wrn', norm: 'groupnorm', activation: 'hardswish', depth: 10, width: 2, K: 20, clients: 5 },
    });
  }
  for (let w = 1; w <= cores; w++) {
    out.push({ axis: 'workers', series: 'paper recipe (LeNet, K=100, 10 clients)', label: `paper recipe, ${w} worker(s)`, x: (p) => p.workers, overrides: { ...LENET, K: 100, clients: 10 }, workers: w });
  }
  return out;
}

export async function benchScaling(
  dataset: Dataset,
  opts: { quick?: boolean; workers: number; log?: (s: string) => void },
): Promise<ScalingPoint[]> {
  const log = opts.log ?? console.log;
  const out: ScalingPoint[] = [];
  for (const plan of plans(opts.quick ?? false, opts.workers)) {
    const recipe: E2eRecipe = { id: plan.label, label: plan.label, overrides: plan.overrides };
    const workers = plan.workers ?? opts.workers;
    const r = await benchE2e(recipe, dataset, workers, opts.quick ? 1 : 2);
    const clients = r.clients;
    const point: ScalingPoint = {
      axis: plan.axis,
      series: plan.series,
      label: plan.label,
      x: 0,
      K: r.K,
      clients,
      params: r.params,
      workers: r.workers,
      passesPerStep: r.passesPerStep,
      directionsPerStep: r.directionsPerStep,
      steps: r.steps,
      wallSecPerStep: r.secPerStep,
      cpuSecPerStep: r.cpuSecPerStep,
      idleSecPerStep: r.idleEstimateSecPerStep,
    };
    point.x = plan.x(point);
    log(`  ${plan.label.padEnd(34)} ${fmtNum(point.wallSecPerStep)} s/step wall, ${fmtNum(point.idleSecPerStep)} s/step idle-machine estimate`);
    out.push(point);
  }
  return out;
}

export function scalingTable(points: readonly ScalingPoint[]): Table | null {
  if (!points.length) return null;
  const axisName: Record<Axis, string> = { K: 'vs K', clients: 'vs clients', params: 'vs model size', workers: 'vs workers' };
  return {
    title: 'Scaling: seconds per FedSGD step of simulate() (per-client seeds, forward differences, batch 32)',
    head: ['curve', 'point', 'params', 'K', 'clients', 'workers', 'passes/step', 'directions/step', 'wall s/step', 'CPU s/step', 'idle-machine s/step'],
    rows: points.map((p) => [
      axisName[p.axis],
      p.label,
      p.params,
      p.K,
      p.clients,
      p.workers,
      p.passesPerStep,
      p.directionsPerStep,
      p.wallSecPerStep,
      p.cpuSecPerStep,
      p.idleSecPerStep,
    ]),
    notes: [
      'Each point is a real simulate() run; the first step and the evaluations are excluded. idle-machine s/step = process on-CPU seconds per step ÷ workers.',
      'The PNG next to this file (scaling.png) plots both figures per axis.',
    ],
  };
}

/** Renders the four curves to a PNG (and returns the SVG). Fonts: Debian fonts-dejavu-core. */
export async function renderScalingPng(points: readonly ScalingPoint[], pngPath: string, subtitle = ''): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const { Resvg } = await import('@resvg/resvg-js');
  const rows = points.flatMap((p) => [
    { axis: p.axis, series: p.series, x: p.x, figure: 'idle-machine estimate (on-CPU s ÷ workers)', seconds: p.idleSecPerStep, label: p.label },
    { axis: p.axis, series: p.series, x: p.x, figure: 'wall clock (shared machine)', seconds: p.wallSecPerStep, label: p.label },
  ]);
  const titles: Record<Axis, { title: string; x: string; log: boolean }> = {
    K: { title: 'vs directions K (LeNet, 10 clients)', x: 'K (directions per client)', log: false },
    clients: { title: 'vs clients (LeNet, K = 100)', x: 'clients per round', log: false },
    params: { title: 'vs model size (K = 20, 5 clients)', x: 'parameters n', log: true },
    workers: { title: 'vs workers (paper recipe)', x: 'worker threads', log: false },
  };
  const panel = (axis: Axis) => {
    const values = rows.filter((r) => r.axis === axis);
    const x = {
      field: 'x',
      type: 'quantitative',
      title: titles[axis].x,
      scale: titles[axis].log ? { type: 'log' } : { zero: false },
      axis: axis === 'workers' ? { tickMinStep: 1, format: 'd' } : {},
    };
    const y = { field: 'seconds', type: 'quantitative', title: 's per FedSGD step', scale: titles[axis].log ? { type: 'log' } : {} };
    const color = { field: 'figure', type: 'nominal', title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 600 } };
    const layers: object[] = [
      { mark: { type: 'line', point: true }, encoding: { x, y, color, detail: { field: 'series', type: 'nominal' } } },
    ];
    if (axis === 'params') {
      // name the points: MLP widths and the conv models
      // name the points: MLP widths (right of the point, below) and the conv models (left, above)
      const onlyIdle = "datum.figure != 'wall clock (shared machine)'";
      layers.push({
        transform: [{ filter: `${onlyIdle} && indexof(datum.series, 'MLP') === 0` }],
        mark: { type: 'text', dy: 12, dx: 4, fontSize: 9, align: 'left' },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      });
      layers.push({
        transform: [{ filter: `${onlyIdle} && indexof(datum.series, 'MLP') !== 0` }],
        mark: { type: 'text', dy: -10, dx: -6, fontSize: 9, align: 'right' },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      });
    }
    return { title: titles[axis].title, width: 330, height: 210, data: { values }, layer: layers };
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'BAFFLE: seconds per FedSGD step', subtitle },
    config: { font: 'DejaVu Sans', view: { stroke: '#ddd' } },
    vconcat: [
      { hconcat: [panel('K'), panel('clients')] },
      { hconcat: [panel('params'), panel('workers')] },
    ],
    resolve: { scale: { color: 'shared' } },
    background: 'white',
    padding: 12,
  };
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  const fonts = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'].filter((f) => existsSync(f));
  if (fonts.length === 0) console.warn('scaling.png: no DejaVu fonts (apt-get install fonts-dejavu-core): text will be missing');
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: fonts.length === 0, fontFiles: fonts, defaultFontFamily: 'DejaVu Sans' },
    background: 'white',
  })
    .render()
    .asPng();
  writeFileSync(pngPath, png);
  return svg;
}
