import { LitElement, css, html, nothing, svg } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { RoundsController } from './controllers/rounds-controller.js';
import { formatBytes, formatSeconds, formatShort } from './format.js';
import type { RoundRecord } from './services/migration-view.js';
import { panelStyles } from './styles/theme.js';

const HEIGHT = 92;
const PAD = { left: 58, right: 10, top: 14, bottom: 20 };

interface Series {
  key: string;
  title: string;
  field: string;
  colour: string;
  value: (r: RoundRecord) => number;
  axis: (v: number) => string;
  now: (v: number) => string;
}

const SERIES: Series[] = [
  {
    key: 'mbps',
    title: 'Throughput',
    field: 'bandwidth',
    colour: 'var(--tm-accent)',
    // bytes/s over the round, in Mbit/s as query-migrate's mbps reads.
    value: (r) => (r.bandwidth * 8) / 1e6,
    axis: (v) => `${formatShort(v)} Mb/s`,
    now: (v) => `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} Mbit/s`,
  },
  {
    key: 'remaining',
    title: 'Remaining',
    field: 'remaining',
    colour: 'var(--tm-warn)',
    value: (r) => r.remaining,
    axis: (v) => formatBytes(v),
    now: (v) => formatBytes(v),
  },
  {
    key: 'dirty',
    title: 'Dirty rate',
    field: 'dirtyPages ÷ duration',
    colour: '#9c36b5',
    // Pages the sync found dirtied, over how long the round took to dirty them.
    value: (r) => (r.duration > 0 ? (r.dirtyPages * 1000) / r.duration : 0),
    axis: (v) => `${formatShort(v)}/s`,
    now: (v) => `${Math.round(v).toLocaleString('en-US')} pages/s`,
  },
];

/** A round maximum for the y axis (1, 2, 5 × 10^n), so gridline labels read cleanly. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** Bytes axes step in powers of two, so "16 MiB" rather than "16.8 MiB". */
function niceBytes(v: number): number {
  if (!(v > 0)) return 1;
  return 2 ** Math.ceil(Math.log2(v));
}

/**
 * Small hand-drawn SVG charts of the outgoing migration, one point per dirty-sync round from the
 * shared round records (DESIGN §9, written by the migration worker): throughput, RAM still to
 * send and the guest's dirty rate, against time since migrate. A dashed line marks the sync that
 * closed each round: remaining jumps back up as the pages dirtied meanwhile are counted.
 */
@customElement('tm-migration-charts')
export class TmMigrationCharts extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .chart + .chart {
        margin-top: 0.5rem;
      }
      .title {
        display: flex;
        align-items: baseline;
        gap: 0.5rem;
        font-size: 0.9rem;
        font-weight: 650;
      }
      .title .field {
        font-family: var(--tm-mono);
        font-size: 0.78rem;
        color: var(--tm-muted);
        font-weight: 400;
      }
      .title .now {
        margin-left: auto;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
      }
      svg {
        display: block;
        width: 100%;
        overflow: visible;
      }
      .grid {
        stroke: var(--tm-border);
        stroke-width: 1;
      }
      .axis-label {
        font-family: var(--tm-mono);
        font-size: 11px;
        fill: var(--tm-muted);
      }
      .round-tick {
        stroke: #8893a4;
        stroke-width: 1;
        stroke-dasharray: 3 3;
      }
      .round-label {
        font-family: var(--tm-mono);
        font-size: 10px;
        fill: #6b7686;
      }
      .line {
        fill: none;
        stroke-width: 2;
        stroke-linejoin: round;
      }
      .area {
        opacity: 0.13;
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
    `,
  ];

  @state() private width = 0;

  private readonly rounds = new RoundsController(this);
  private readonly resize = new ResizeObserver((entries) => {
    const w = Math.floor(entries[0]?.contentRect.width ?? 0);
    if (w !== this.width) this.width = w;
  });

  override connectedCallback(): void {
    super.connectedCallback();
    this.resize.observe(this);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.resize.disconnect();
  }

  override render() {
    if (!this.rounds.service) return nothing;
    const records = this.rounds.records;
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Charts</h2>
        <p class="hint">The outgoing migration round by round (one point per dirty sync); dashed lines mark each round's end.</p>
      </div>
      <div class="panel-body">
        ${records.length < 1
          ? html`<p class="empty">The charts draw while this tab sends a migration, once its first round ends.</p>`
          : SERIES.map((s) => this.renderChart(s, records))}
      </div>
    </section>`;
  }

  /** A round's label right of its line, or left of it near the right edge. */
  private roundLabel(x: number, width: number, label: string) {
    const flip = x + 4 + 6.5 * label.length > width;
    return svg`<text class="round-label" x=${flip ? x - 2 : x + 2} y=${PAD.top - 4} text-anchor=${flip ? 'end' : 'start'}>${label}</text>`;
  }

  private renderChart(series: Series, records: readonly RoundRecord[]) {
    // The panel body's padding (1rem each side) is not part of the chart.
    const width = Math.max(200, this.width - 32);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const t0 = 0;
    const last = records[records.length - 1]!;
    const tEnd = Math.max(last.time, t0 + 1000);
    // At most about one point per pixel (a long migration may have hundreds of rounds).
    const stride = Math.max(1, Math.ceil(records.length / plotW));
    const points: RoundRecord[] = [];
    for (let i = 0; i < records.length; i += stride) points.push(records[i]!);
    if (points[points.length - 1] !== last) points.push(last);
    const peak = Math.max(...records.map(series.value));
    const yMax = series.key === 'remaining' ? niceBytes(peak) : niceMax(peak);
    const x = (t: number) => PAD.left + ((t - t0) / (tEnd - t0)) * plotW;
    const y = (v: number) => PAD.top + plotH - (Math.max(0, v) / yMax) * plotH;
    const line = points.map((p) => `${x(p.time).toFixed(1)},${y(series.value(p)).toFixed(1)}`).join(' ');
    const area = `${x(points[0]!.time).toFixed(1)},${y(0)} ${line} ${x(last.time).toFixed(1)},${y(0)}`;
    // Every round gets its line; labels only where there is room for them.
    const rounds = records.map((r) => ({ t: r.time, label: `r${r.round}` }));
    let lastLabel = -Infinity;
    const labelled = rounds.map((r) => {
      const show = x(r.t) - lastLabel >= 8 + 6.5 * r.label.length;
      if (show) lastLabel = x(r.t);
      return show;
    });
    const latest = series.value(last);
    return html`<div class="chart" data-series=${series.key}>
      <div class="title">
        ${series.title} <span class="field">${series.field}</span>
        <span class="now" style="color:${series.colour}">${series.now(latest)}</span>
      </div>
      <svg width=${width} height=${HEIGHT} viewBox="0 0 ${width} ${HEIGHT}" role="img" aria-label="${series.title} over time">
        ${[0, 0.5, 1].map(
          (f) => svg`<line class="grid" x1=${PAD.left} x2=${width - PAD.right} y1=${y(f * yMax)} y2=${y(f * yMax)}></line>
            <text class="axis-label" x=${PAD.left - 6} y=${y(f * yMax) + 4} text-anchor="end">${series.axis(f * yMax)}</text>`,
        )}
        ${rounds.map(
          (r, i) => svg`<line class="round-tick" x1=${x(r.t)} x2=${x(r.t)} y1=${PAD.top - 2} y2=${PAD.top + plotH}></line>
            ${labelled[i] ? this.roundLabel(x(r.t), width, r.label) : nothing}`,
        )}
        <polygon class="area" points=${area} style="fill:${series.colour}"></polygon>
        <polyline class="line" points=${line} style="stroke:${series.colour}"></polyline>
        ${points.length <= 24 ? points.map((p) => svg`<circle class="point" cx=${x(p.time)} cy=${y(series.value(p))} r="2.5" style="fill:${series.colour}"></circle>`) : nothing}
        <text class="axis-label" x=${PAD.left} y=${HEIGHT - 4} text-anchor="start">${formatSeconds(t0)}</text>
        <text class="axis-label" x=${width - PAD.right} y=${HEIGHT - 4} text-anchor="end">${formatSeconds(tEnd)}</text>
        <text class="axis-label" x=${PAD.left + plotW / 2} y=${HEIGHT - 4} text-anchor="middle">time since migrate</text>
      </svg>
    </div>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-charts': TmMigrationCharts;
  }
}
