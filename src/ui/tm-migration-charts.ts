import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import uPlot from 'uplot';
import { PlotSet } from './controllers/plot-set.js';
import { RoundsController } from './controllers/rounds-controller.js';
import { formatBytes, formatCount, formatMbps, formatShort } from './format.js';
import { explainDifference, predictPrecopy, type ModelRound, type PrecopyPrediction } from './precopy-model.js';
import type { MigrationView, RoundRecord } from './services/migration-view.js';
import { panelStyles } from './styles/theme.js';
import { uplotStyles } from './styles/uplot.js';
import './tm-state-timeline.js';

const HEIGHT = 150;
const MODEL = '#7b2cbf';

interface SeriesDef {
  label: string;
  colour: string;
  dash?: number[];
  /** Right-hand axis (scale 'y2'). */
  right?: boolean;
  /** null: nothing to plot for that round. */
  measured?: (r: RoundRecord) => number | null;
  model?: (m: ModelRound) => number;
  /** A horizontal line (e.g. downtime-limit), from the parameters. */
  constant?: (limit: number) => number;
}

interface ChartDef {
  key: string;
  title: string;
  /** What the chart shows and what QEMU does with it, in a sentence. */
  explain: string;
  axis: (v: number) => string;
  axis2?: (v: number) => string;
  series: SeriesDef[];
  /** Logarithmic y: a geometric series (the model) is a straight line. */
  log?: boolean;
  /** The headline value of the last round. */
  now: (r: RoundRecord) => string;
}

/**
 * A round too short to time (the stop-and-copy's is over in a moment, a sync that found nothing
 * lasts a millisecond) has no meaningful rate: bytes over ~0 ms would read as hundreds of MB/s.
 */
export const MIN_RATE_ROUND_MS = 20;
export function hasRate(r: RoundRecord): boolean {
  return r.duration >= MIN_RATE_ROUND_MS && r.bytesSent > 0;
}

const CHARTS: ChartDef[] = [
  {
    key: 'pages',
    title: 'Pages per round',
    explain:
      'At each dirty-log sync QEMU counts the pages the guest wrote during the round (dirty) and sends them next round. Live migration converges when the rounds shrink; the dashed line is the model.',
    axis: (v) => formatShort(v),
    series: [
      { label: 'dirty found', colour: '#d97706', measured: (r) => r.dirtyPages },
      { label: 'sent', colour: '#3451d1', measured: (r) => r.pagesSent },
      { label: 'of which zero', colour: '#8a94a3', measured: (r) => r.zeroPages },
      { label: 'model: sent', colour: MODEL, dash: [6, 4], model: (m) => m.pages },
    ],
    now: (r) => `${r.dirtyPages.toLocaleString('en-US')} dirty`,
  },
  {
    key: 'bytes',
    title: 'Bytes sent and bandwidth',
    explain:
      'Stream bytes per round (left) and the bandwidth the round achieved (right; none for a round under 20 ms, too short to time). Zero pages cost a few bytes each, so a round of them runs far faster than one of data; max-bandwidth caps the rate.',
    axis: (v) => formatBytes(v),
    axis2: (v) => `${formatShort(v / 1e6)} MB/s`,
    series: [
      { label: 'bytes sent', colour: '#3451d1', measured: (r) => r.bytesSent },
      { label: 'bandwidth', colour: '#2b8a3e', right: true, measured: (r) => (hasRate(r) ? r.bandwidth : null) },
    ],
    now: (r) => (hasRate(r) ? `${(r.bandwidth / 1e6).toFixed(1)} MB/s` : `${formatBytes(r.bytesSent)} sent`),
  },
  {
    key: 'remaining',
    title: 'Remaining against the threshold',
    explain:
      'Bytes still to send after each sync. QEMU stops the guest for the last copy once this falls under the threshold: bandwidth × downtime-limit. Log scale: rounds that shrink by a constant factor fall on a straight line.',
    axis: (v) => formatBytes(v),
    log: true,
    series: [
      { label: 'remaining', colour: '#d97706', measured: (r) => r.remaining },
      { label: 'threshold', colour: '#2b8a3e', dash: [2, 3], measured: (r) => r.threshold },
      { label: 'model: remaining', colour: MODEL, dash: [6, 4], model: (m) => m.remaining },
    ],
    now: (r) => formatBytes(r.remaining),
  },
  {
    key: 'downtime',
    title: 'Expected downtime against downtime-limit',
    explain:
      'How long the guest would be stopped if QEMU switched over now: remaining ÷ bandwidth. It switches over once this is within downtime-limit (log scale).',
    axis: (v) => `${formatShort(v)} ms`,
    log: true,
    series: [
      { label: 'expected downtime', colour: '#c92a2a', measured: (r) => r.expectedDowntime },
      { label: 'downtime-limit', colour: '#16202c', dash: [2, 3], constant: (limit) => limit },
      { label: 'model', colour: MODEL, dash: [6, 4], model: (m) => m.expectedDowntime },
    ],
    now: (r) => `${r.expectedDowntime.toFixed(0)} ms`,
  },
  {
    key: 'throttle',
    title: 'vCPU throttle',
    explain:
      'With auto-converge, QEMU takes this share of the vCPU\u2019s time when rounds stop shrinking, so the guest dirties less (cpu-throttle-initial, then + cpu-throttle-increment).',
    axis: (v) => `${formatShort(v)} %`,
    series: [{ label: 'throttle', colour: '#1c6fc4', measured: (r) => r.throttle }],
    now: (r) => `${r.throttle} %`,
  },
];

/**
 * The outgoing migration round by round, from the shared round records (DESIGN §9): pages,
 * bytes and bandwidth, remaining against the threshold, expected downtime against downtime-limit,
 * throttle. uPlot draws them: 40 KiB, canvas, built for time series that grow by appending, with
 * a hover legend that reads every series at a round. The analytic precopy model, fed with the
 * first round, is drawn dashed over the measurement with a paragraph on why they differ; the
 * state timeline underneath marks setup, rounds, switchover, postcopy and the downtime.
 */
@customElement('tm-migration-charts')
export class TmMigrationCharts extends LitElement {
  static override styles = [
    panelStyles,
    uplotStyles,
    css`
      .chart + .chart {
        margin-top: 0.9rem;
      }
      .title {
        display: flex;
        align-items: baseline;
        gap: 0.5rem;
        font-size: 0.92rem;
        font-weight: 650;
      }
      .title .now {
        margin-left: auto;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
        font-weight: 500;
      }
      .explain {
        margin: 0.1rem 0 0.2rem;
        color: var(--tm-muted);
        font-size: 0.8rem;
        line-height: 1.35;
      }
      .plot {
        min-height: ${HEIGHT}px;
      }
      .uplot {
        font-family: var(--tm-font);
        width: 100%;
      }
      .u-legend {
        font-size: 0.78rem;
        color: var(--tm-text);
      }
      .u-legend .u-marker {
        width: 0.8em;
        height: 0.8em;
      }
      .model {
        margin: 1rem 0 0;
        padding: 0.7rem 0.9rem;
        border-left: 4px solid #7b2cbf;
        background: #f6f0fb;
        border-radius: 0 8px 8px 0;
        font-size: 0.86rem;
      }
      .model h3 {
        margin: 0 0 0.3rem;
        font-size: 0.9rem;
        color: #4a1a78;
      }
      .model dl {
        display: grid;
        grid-template-columns: repeat(3, auto);
        gap: 0.1rem 1.2rem;
        margin: 0.4rem 0 0;
        justify-content: start;
      }
      .model dt {
        color: var(--tm-muted);
        font-size: 0.78rem;
      }
      .model dd {
        margin: 0;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
      }
      .model p {
        margin: 0.4rem 0 0;
        line-height: 1.45;
      }
      .empty {
        margin: 0;
        padding: 1.2rem 0.8rem;
        text-align: center;
        color: var(--tm-muted);
        font-size: 0.9rem;
        border: 1px dashed var(--tm-border);
        border-radius: 8px;
        background: var(--tm-surface-2);
      }
      tm-state-timeline {
        display: block;
        margin-bottom: 0.9rem;
      }
      :host([compact]) .explain,
      :host([compact]) .panel-head .hint {
        display: none;
      }
    `,
  ];

  /** The migration view: each chart's explanation goes into its title's tooltip, to fit the screen. */
  @property({ type: Boolean, reflect: true }) compact = false;
  private readonly rounds = new RoundsController(this);
  /** The per-round charts and the width they are drawn at. */
  private readonly charts = new PlotSet(this);

  private get limit(): number {
    const v = this.rounds.service?.options.queryParameters()['downtime-limit'];
    return typeof v === 'number' ? v : 300;
  }

  private prediction(records: readonly RoundRecord[]): PrecopyPrediction | null {
    return predictPrecopy(records, this.limit);
  }

  override render() {
    const m = this.rounds.service;
    if (!m) return nothing;
    const records = this.rounds.records;
    const last = records[records.length - 1];
    const p = this.prediction(records);
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Rounds</h2>
        <span class="aside">${records.length ? `${records.length} round${records.length === 1 ? '' : 's'}` : ''}</span>
        <p class="hint">
          The outgoing migration, one point per dirty-log sync (QEMU's <code>dirty-sync-count</code>). Point at a chart to read every
          series at that round.
        </p>
      </div>
      <div class="panel-body">
        <tm-state-timeline></tm-state-timeline>
        ${records.length < 1 || !last
          ? html`<p class="empty">The charts draw while this tab sends a migration, once its first round ends.</p>`
          : CHARTS.map(
              (c) => html`<div class="chart" data-series=${c.key}>
                <div class="title" title=${c.explain}>${c.title}<span class="now" data-now=${c.key}>${this.headline(c, last, m)}</span></div>
                <p class="explain">${c.explain}</p>
                <div class="plot" data-plot=${c.key} role="img" aria-label="${c.title}, by round"></div>
              </div>`,
            )}
        ${p && records.length ? this.renderModel(p, records, m) : nothing}
      </div>
    </section>`;
  }

  /**
   * The figure beside a chart's title: the last round's, named as such; once the migration is over
   * the bandwidth is the migration's own average, query-migrate's mbps (the live status tile says
   * the same), since the last round is the stop-and-copy's, too short to measure a rate over.
   */
  private headline(c: ChartDef, last: RoundRecord, m: MigrationView): string {
    if (c.key === 'bytes' && m.outgoingStatus === 'completed') {
      const mbps = m.queryMigrate().ram?.mbps;
      if (mbps !== undefined) return `average ${(mbps / 8).toFixed(1)} MB/s (mbps ${formatMbps(mbps)})`;
    }
    return `round ${last.round}: ${c.now(last)}`;
  }

  private renderModel(p: PrecopyPrediction, records: readonly RoundRecord[], m: MigrationView) {
    const info = m.outgoingStatus === 'completed' ? m.queryMigrate() : null;
    const measuredTotal = info?.['total-time'];
    return html`<div class="model" data-model>
      <h3>The model over the measurement</h3>
      <dl>
        <dt>rounds</dt>
        <dt>total time</dt>
        <dt>downtime</dt>
        <dd>${p.converges ? p.rounds.length : '∞'} <span class="hint">/ ${records.length} measured</span></dd>
        <dd>${p.converges ? `${(p.totalTime / 1000).toFixed(2)} s` : '∞'}${measuredTotal !== undefined ? html` <span class="hint">/ ${(measuredTotal / 1000).toFixed(2)} s</span>` : nothing}</dd>
        <dd>${p.converges ? `${p.downtime.toFixed(0)} ms` : '–'}${info?.downtime !== undefined ? html` <span class="hint">/ ${formatCount(info.downtime)} ms</span>` : nothing}</dd>
      </dl>
      <p>${explainDifference(p, records, info?.downtime)}</p>
    </div>`;
  }

  protected override updated(_changed: PropertyValues<this>): void {
    const records = this.rounds.records;
    if (records.length < 1) {
      this.charts.clear();
      return;
    }
    const p = this.prediction(records);
    const width = Math.max(260, this.charts.width - 32);
    for (const c of CHARTS) {
      const el = this.renderRoot.querySelector<HTMLElement>(`[data-plot=${c.key}]`);
      if (!el) continue;
      const data = chartData(c, records, p, this.limit);
      let plot = this.charts.plots.get(c.key);
      if (plot && plot.root.parentElement !== el) {
        plot.destroy();
        plot = undefined;
      }
      if (!plot) {
        plot = new uPlot(plotOptions(c, width), data, el);
        this.charts.plots.set(c.key, plot);
      } else {
        plot.setData(data);
        if (plot.width !== width) plot.setSize({ width, height: HEIGHT });
      }
    }
  }
}

/** Aligned columns for uPlot: x = round number, over measured and model rounds. */
function chartData(c: ChartDef, records: readonly RoundRecord[], p: PrecopyPrediction | null, limit: number): uPlot.AlignedData {
  const model = p?.rounds ?? [];
  const xs = [...new Set([...records.map((r) => r.round), ...(c.series.some((s) => s.model) ? model.map((m) => m.round) : [])])].sort((a, b) => a - b);
  const byTime = new Map(records.map((r) => [r.round, r]));
  const modelByTime = new Map(model.map((m) => [m.round, m]));
  const cols: (number | null)[][] = c.series.map((s) =>
    xs.map((t) => {
      if (s.constant) return s.constant(limit);
      if (s.measured) {
        const r = byTime.get(t);
        return r ? s.measured(r) : null;
      }
      const m = modelByTime.get(t);
      return m && s.model ? s.model(m) : null;
    }),
  );
  // A log axis has no zero: an empty round leaves a gap.
  if (c.log) for (const col of cols) col.forEach((v, i) => v !== null && v <= 0 && (col[i] = null));
  return [xs, ...cols] as uPlot.AlignedData;
}

function plotOptions(c: ChartDef, width: number): uPlot.Options {
  const axisStyle = { stroke: '#586475', grid: { stroke: '#e3e7ed', width: 1 }, ticks: { stroke: '#d5dbe3', width: 1 }, font: '11px system-ui, sans-serif' };
  const axes: uPlot.Axis[] = [
    { ...axisStyle, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500], values: (_u, vals) => vals.map((v) => (v == null ? '' : `round ${v}`)) },
    { ...axisStyle, size: 64, values: (_u, vals) => vals.map((v) => (v == null ? '' : c.axis(v))) },
  ];
  if (c.axis2) axes.push({ ...axisStyle, side: 1, scale: 'y2', size: 70, grid: { show: false }, values: (_u, vals) => vals.map((v) => (v == null ? '' : c.axis2!(v))) });
  return {
    width,
    height: HEIGHT,
    scales: {
      x: { time: false, range: (_u, min, max) => [Math.min(min, 1) - 0.3, Math.max(max, 2) + 0.3] },
      y: c.log ? { distr: 3, log: 10 } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] },
      y2: { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] } },
    axes,
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { show: true, live: true },
    series: [
      { label: 'round', value: (_u, v) => (v == null ? '–' : `${v}`) },
      ...c.series.map<uPlot.Series>((s) => ({
        label: s.label,
        stroke: s.colour,
        width: s.dash ? 1.6 : 2,
        dash: s.dash,
        scale: s.right ? 'y2' : 'y',
        spanGaps: true,
        points: { show: !s.constant, size: s.model ? 4 : 5, fill: s.colour },
        value: (_u, v) => (v == null ? '–' : s.right ? `${(v / 1e6).toFixed(1)} MB/s` : c.axis(v)),
      })),
    ],
  };
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-charts': TmMigrationCharts;
  }
}
