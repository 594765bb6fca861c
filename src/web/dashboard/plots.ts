// The dashboard's plots: vega-lite specs compiled in the page (vega and vega-lite are bundled into the page's
// script), rendered to SVG, their data replaced as events land. Each container says how many points it shows
// (`data-points`), for people reading the page's DOM and for tests.
import { parse, View } from 'vega';
import { compile, type Config, type TopLevelSpec } from 'vega-lite';
import type { MetricsRecord, RoundRecord } from '../../core/protocol/status.ts';

const CONFIG: Config = {
  font: 'system-ui, sans-serif',
  axis: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: 600, gridColor: '#edf0f5', domainColor: '#b8c0cf', tickColor: '#b8c0cf' },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: 'bottom' },
  title: { fontSize: 14, anchor: 'start', fontWeight: 600, color: '#1d2330' },
  view: { stroke: '#dde2ea' },
};

/** One vega view in a container: its data named `name`, replaced whole on every update (renders are queued). */
class Plot {
  private readonly view: View;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly el: HTMLElement,
    spec: TopLevelSpec,
    private readonly name: string,
  ) {
    this.view = new View(parse(compile(spec).spec), { renderer: 'svg', container: el, hover: true });
    this.update([]);
  }

  update(rows: object[]): Promise<unknown> {
    const copy = rows.map((r) => ({ ...r }));
    this.queue = this.queue
      .then(() => this.view.data(this.name, copy).runAsync())
      .then(() => {
        this.el.dataset.points = String(copy.length);
      })
      .catch((e: Error) => {
        this.el.dataset.error = e.message;
      });
    return this.queue;
  }
}

/** Test accuracy, and test and train loss, over the server's steps: one point per evaluation. */
export function curvePlot(el: HTMLElement): { update(metrics: readonly MetricsRecord[]): Promise<unknown> } {
  const width = Math.max(220, Math.floor((el.clientWidth - 150) / 2));
  const x = { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1, labelFlush: false } } as const;
  const spec: TopLevelSpec = {
    data: { name: 'metrics' },
    config: CONFIG,
    background: 'white',
    padding: 8,
    // Axis labels and legends grow once data arrives: lay the view out again on every update.
    autosize: { type: 'pad', resize: true },
    hconcat: [
      {
        title: 'Test accuracy',
        width,
        height: 220,
        mark: { type: 'line', point: true, color: '#2857c5' },
        encoding: {
          x,
          y: { field: 'testAccuracy', type: 'quantitative', title: null, axis: { format: '.0%' }, scale: { zero: false } },
          tooltip: [
            { field: 'step', type: 'quantitative' },
            { field: 'epoch', type: 'quantitative' },
            { field: 'testAccuracy', type: 'quantitative', format: '.2%', title: 'accuracy' },
          ],
        },
      },
      {
        title: 'Loss',
        width,
        height: 220,
        transform: [{ fold: ['testLoss', 'trainLoss'], as: ['series', 'loss'] }],
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'loss', type: 'quantitative', title: null, scale: { zero: false } },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { domain: ['testLoss', 'trainLoss'], range: ['#c53a3a', '#e0862b'] },
            legend: { labelExpr: "datum.label === 'testLoss' ? 'test loss' : 'train loss (participants)'" },
          },
          tooltip: [
            { field: 'step', type: 'quantitative' },
            { field: 'series', type: 'nominal' },
            { field: 'loss', type: 'quantitative', format: '.4f' },
          ],
        },
      },
    ],
  };
  const plot = new Plot(el, spec, 'metrics');
  return { update: (metrics) => plot.update(metrics.map((m) => ({ step: m.step, epoch: m.epoch, testAccuracy: m.testAccuracy, testLoss: m.testLoss, trainLoss: m.trainLoss }))) };
}

/** Wall time of each committed round (waiting for results included), rounds with drops marked. */
export function roundTimePlot(el: HTMLElement): { update(rounds: readonly RoundRecord[]): Promise<unknown> } {
  const spec: TopLevelSpec = {
    data: { name: 'rounds' },
    config: CONFIG,
    background: 'white',
    padding: 8,
    // Axis labels and legends grow once data arrives: lay the view out again on every update.
    autosize: { type: 'pad', resize: true },
    title: 'Time per round',
    width: Math.max(220, el.clientWidth - 110),
    height: 150,
    layer: [
      { mark: { type: 'line', color: '#8d9ab3', strokeWidth: 1.5 } },
      {
        mark: { type: 'point', filled: true, size: 36 },
        encoding: {
          color: {
            field: 'outcome',
            type: 'nominal',
            title: null,
            scale: { domain: ['all counted', 'with drops', 'abandoned'], range: ['#2857c5', '#e0862b', '#c53a3a'] },
          },
          tooltip: [
            { field: 'step', type: 'quantitative', title: 'round' },
            { field: 'seconds', type: 'quantitative', format: '.3f' },
            { field: 'counted', type: 'quantitative' },
            { field: 'dropped', type: 'quantitative' },
            { field: 'attempts', type: 'quantitative' },
          ],
        },
      },
    ],
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'round', axis: { tickMinStep: 1, labelFlush: false } },
      y: { field: 'seconds', type: 'quantitative', title: 'seconds' },
    },
  };
  const plot = new Plot(el, spec, 'rounds');
  return {
    update: (rounds) =>
      plot.update(
        rounds.map((r) => ({
          step: r.step,
          seconds: r.ms / 1000,
          counted: r.counted.length,
          dropped: r.dropped.length,
          attempts: r.attempts,
          outcome: r.abandoned ? 'abandoned' : r.dropped.length > 0 ? 'with drops' : 'all counted',
        })),
      ),
  };
}
