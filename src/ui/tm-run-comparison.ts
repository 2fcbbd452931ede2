import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import uPlot from 'uplot';
import { variantById } from './compare-variants.js';
import { PlotSet } from './controllers/plot-set.js';
import { formatBytes, formatCount, formatShort } from './format.js';
import type { RunRecord } from './services/history-service.js';
import { panelStyles } from './styles/theme.js';
import { uplotStyles } from './styles/uplot.js';

/**
 * One colour per run in a comparison (stop-and-copy, precopy, postcopy, then the four reducers):
 * as many as Compare has variants, so no two of one comparison share a line colour.
 */
export const RUN_COLOURS = ['#c92a2a', '#3451d1', '#7b2cbf', '#2b8a3e', '#d97706', '#0b7285', '#d6336c', '#495057'];

/** What each method means, for the table's tooltips. */
const METHOD_EXPLAIN: Record<string, string> = {
  'stop-and-copy': 'What a user does without live migration: stop the guest, migrate it, cont on the destination. The guest is down for the whole copy.',
  precopy: 'Live migration: RAM is copied while the guest runs, round after round, then a short stop for the last dirty pages and the devices.',
  postcopy: 'The guest moves early and runs on the destination; pages it touches before they arrive are fetched on demand (page faults).',
};

export function guestDowntime(run: RunRecord): number | undefined {
  return run.guestDowntime ?? run.result.downtime;
}

/**
 * Runs side by side: a table of total time, guest-seen downtime, bytes sent and rounds (the
 * figures Clark et al. compare), and two overlaid charts, one line per run, of the pages sent per
 * round and what remained after each. Fed with run records (a Compare, or two picked from the
 * history); reads nothing live.
 */
@customElement('tm-run-comparison')
export class TmRunComparison extends LitElement {
  static override styles = [
    panelStyles,
    uplotStyles,
    css`
      .table-wrap {
        overflow-x: auto;
      }
      table {
        width: 100%;
        border-collapse: collapse;
        font-size: 0.82rem;
        font-variant-numeric: tabular-nums;
      }
      caption {
        text-align: left;
        font-weight: 650;
        padding-bottom: 0.3rem;
      }
      th,
      td {
        padding: 0.35rem 0.4rem;
        border-bottom: 1px solid var(--tm-border);
        text-align: right;
        white-space: nowrap;
      }
      /* Headers and run names wrap, so every column fits a narrow panel; figures stay on one line. */
      thead th,
      tbody th {
        white-space: normal;
        overflow-wrap: break-word;
      }
      th,
      td {
        padding: 0.3rem 0.3rem;
      }

      caption {
        overflow-wrap: anywhere;
      }
      th:first-child,
      td:first-child {
        text-align: left;
      }
      thead th {
        color: var(--tm-muted);
        font-weight: 600;
        font-size: 0.78rem;
        cursor: help;
      }
      tbody tr:hover {
        background: var(--tm-surface-2);
      }
      .best {
        font-weight: 700;
        color: var(--tm-ok);
      }
      .sw {
        display: inline-block;
        width: 0.7rem;
        height: 0.7rem;
        border-radius: 2px;
        margin-right: 0.4rem;
        vertical-align: -0.05rem;
      }
      .status-failed {
        color: var(--tm-danger);
      }
      h3 {
        margin: 0.9rem 0 0.1rem;
        font-size: 0.9rem;
      }
      .uplot {
        font-family: var(--tm-font);
        width: 100%;
      }
      .u-legend {
        font-size: 0.78rem;
      }
    `,
  ];

  @property({ attribute: false }) runs: readonly RunRecord[] = [];
  /** The table's caption. */
  @property() caption = 'Same guest, one method after another (best in green)';

  /** The overlaid charts and the width they are drawn at. */
  private readonly charts = new PlotSet(this);

  override render() {
    const runs = this.runs;
    if (!runs.length) return nothing;
    const ok = runs.filter((r) => r.result.status === 'completed');
    const best = (f: (r: RunRecord) => number | undefined) => {
      const vals = ok.map(f).filter((v): v is number => typeof v === 'number');
      return vals.length > 1 ? Math.min(...vals) : NaN;
    };
    const bestTotal = best((r) => r.result['total-time']);
    const bestDown = best(guestDowntime);
    const bestQemuDown = best((r) => r.result.downtime);
    const bestBytes = best((r) => r.result.ram?.transferred);
    const cell = (v: number | undefined, b: number, fmt: (v: number) => string) =>
      html`<td class=${v === b ? 'best' : ''}>${v === undefined ? '–' : fmt(v)}</td>`;
    return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${this.caption}><table data-compare-table>
        <caption>
          ${this.caption}
        </caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col" title="query-migrate total-time: from migrate to completed">Total time</th>
            <th scope="col" title="query-migrate downtime (what info migrate says): from the switchover's stop to the guest's start on the destination; for postcopy, the switch">downtime</th>
            <th scope="col" title="The longest pause the guest itself saw (its own clock; the stress guest prints it). For stop-and-copy it spans stop → cont, so it is longer than the migration's total time; for postcopy it adds the waits for pages">Guest saw</th>
            <th scope="col" title="query-migrate ram.transferred: stream bytes sent">Bytes</th>
            <th scope="col" title="dirty-sync-count: dirty-log syncs, the rounds (the round records count the same)">Rounds</th>
          </tr>
        </thead>
        <tbody>
          ${runs.map(
            (r, i) => html`<tr data-run=${r.method} data-label=${r.label}>
              <th scope="row" title=${variantById(r.label)?.explain ?? METHOD_EXPLAIN[r.method] ?? ''}>
                <span class="sw" style="background:${RUN_COLOURS[i % RUN_COLOURS.length]}"></span>${r.label || r.method}
                ${r.result.status !== 'completed' ? html`<span class="status-failed">(${r.result.status})</span>` : nothing}
              </th>
              ${cell(r.result['total-time'], bestTotal, (v) => `${(v / 1000).toFixed(2)} s`)}
              ${cell(r.result.downtime, bestQemuDown, (v) => `${formatCount(v)} ms`)}
              ${cell(guestDowntime(r), bestDown, (v) => `${formatCount(v)} ms`)}
              ${cell(r.result.ram?.transferred, bestBytes, formatBytes)}
              <td>${r.result.ram?.['dirty-sync-count'] ?? r.rounds.length}</td>
            </tr>`,
          )}
        </tbody>
      </table></div>
      <h3>Pages sent per round</h3>
      <div data-plot="pages" role="img" aria-label="Pages sent per round, one line per run"></div>
      <h3>Remaining after each round</h3>
      <div data-plot="remaining" role="img" aria-label="Bytes remaining after each round, one line per run"></div>`;
  }

  protected override updated(_changed: PropertyValues<this>): void {
    const width = Math.max(260, this.charts.width);
    for (const [key, value, fmt] of [
      ['pages', (r: RunRecord['rounds'][number]) => r.pagesSent, (v: number) => formatShort(v)],
      ['remaining', (r: RunRecord['rounds'][number]) => r.remaining, (v: number) => formatBytes(v)],
    ] as const) {
      const el = this.renderRoot.querySelector<HTMLElement>(`[data-plot=${key}]`);
      this.charts.plots.get(key)?.destroy();
      this.charts.plots.delete(key);
      if (!el || !this.runs.length) continue;
      const maxRound = Math.max(1, ...this.runs.map((r) => r.rounds.length));
      const xs = Array.from({ length: maxRound }, (_, i) => i + 1);
      const data = [xs, ...this.runs.map((r) => xs.map((x) => (r.rounds[x - 1] ? value(r.rounds[x - 1]!) : null)))] as uPlot.AlignedData;
      const axis = { stroke: '#586475', grid: { stroke: '#e3e7ed', width: 1 }, ticks: { stroke: '#d5dbe3', width: 1 }, font: '11px system-ui, sans-serif' };
      const plot = new uPlot(
        {
          width,
          height: 140,
          scales: { x: { time: false, range: (_u, min, max) => [min - 0.3, Math.max(max, 2) + 0.3] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] } },
          axes: [
            { ...axis, incrs: [1, 2, 5, 10, 20, 50, 100], values: (_u, v) => v.map((x) => (x == null ? '' : `round ${x}`)) },
            { ...axis, size: 64, values: (_u, v) => v.map((x) => (x == null ? '' : fmt(x))) },
          ],
          cursor: { drag: { x: false, y: false } },
          series: [
            { label: 'round' },
            ...this.runs.map((r, i) => ({
              label: r.label || r.method,
              stroke: RUN_COLOURS[i % RUN_COLOURS.length],
              width: 2,
              points: { show: true, size: 5, fill: RUN_COLOURS[i % RUN_COLOURS.length] },
              value: (_u: uPlot, v: number | null) => (v == null ? '–' : fmt(v)),
            })),
          ],
        },
        data,
        el,
      );
      this.charts.plots.set(key, plot);
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-run-comparison': TmRunComparison;
  }
}
