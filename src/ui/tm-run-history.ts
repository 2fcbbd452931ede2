import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { HistoryController } from './controllers/history-controller.js';
import { formatBytes, formatCount, formatDateTime, formatDuration } from './format.js';
import type { RunRecord } from './services/history-service.js';
import { panelStyles } from './styles/theme.js';
import { guestDowntime } from './tm-run-comparison.js';
import './tm-run-comparison.js';
import { toggled } from './toggled.js';

/**
 * Every migration this browser sent, kept in IndexedDB with its capabilities, parameters, round
 * records and result: reopen one (its table, charts and settings), pick two or more to compare,
 * export as JSON, delete.
 */
@customElement('tm-run-history')
export class TmRunHistory extends LitElement {
  static override styles = [
    panelStyles,
    css`
      ul {
        list-style: none;
        margin: 0;
        padding: 0;
        max-height: 16rem;
        overflow: auto;
        border: 1px solid var(--tm-border);
        border-radius: 8px;
      }
      li {
        display: grid;
        grid-template-columns: auto minmax(0, 1fr) auto;
        gap: 0.1rem 0.6rem;
        align-items: center;
        padding: 0.4rem 0.6rem;
        border-bottom: 1px solid var(--tm-border);
        font-size: 0.86rem;
      }
      li:last-child {
        border-bottom: none;
      }
      .meta {
        color: var(--tm-muted);
        font-size: 0.8rem;
        font-variant-numeric: tabular-nums;
      }
      .failed {
        color: var(--tm-danger);
      }
      button.small {
        padding: 0.2rem 0.55rem;
        font-size: 0.8rem;
      }
      .actions {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem;
        margin: 0.6rem 0;
      }
      details {
        margin-top: 0.6rem;
        font-size: 0.82rem;
      }
      pre {
        max-height: 12rem;
        overflow: auto;
        background: var(--tm-surface-2);
        padding: 0.5rem;
        border-radius: 6px;
      }
      .empty {
        color: var(--tm-muted);
        font-size: 0.9rem;
        margin: 0;
      }
    `,
  ];

  @state() private selected = new Set<number>();
  @state() private shown: RunRecord[] = [];
  private readonly history = new HistoryController(this);

  override render() {
    const h = this.history.service;
    if (!h) return nothing;
    const runs = h.runs;
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Run history</h2>
        <span class="aside">${runs.length} run${runs.length === 1 ? '' : 's'}</span>
        <p class="hint">Every migration this browser sent, kept in IndexedDB: settings, round records and result.</p>
      </div>
      <div class="panel-body">
        ${runs.length
          ? html`<ul aria-label="Past migrations">
              ${runs.map((r) => this.renderRun(r))}
            </ul>`
          : html`<p class="empty">Nothing yet: each migration this tab sends is kept here when it ends.</p>`}
        <div class="actions">
          <button ?disabled=${this.selected.size < 2} @click=${() => (this.shown = runs.filter((r) => this.selected.has(r.id!)).reverse())}>
            Compare selected (${this.selected.size})
          </button>
          <button ?disabled=${!runs.length} @click=${this.exportJson}>Export ${this.selected.size ? 'selected' : 'all'} as JSON</button>
          ${this.shown.length ? html`<button @click=${() => (this.shown = [])}>Close</button>` : nothing}
        </div>
        ${this.shown.length
          ? html`<tm-run-comparison .runs=${this.shown} caption=${this.shown.length === 1 ? 'This run' : 'The selected runs (best in green)'}></tm-run-comparison>`
          : nothing}
        ${this.shown.length === 1 ? this.renderSettings(this.shown[0]!) : nothing}
      </div>
    </section>`;
  }

  private renderRun(r: RunRecord) {
    const id = r.id!;
    const when = formatDateTime(r.started);
    const d = guestDowntime(r);
    const ok = r.result.status === 'completed';
    // Only the figures the run has: a failed one says why instead of a row of dashes.
    const figures = ok
      ? [
          r.result['total-time'] !== undefined ? formatDuration(r.result['total-time']) : null,
          d !== undefined ? `down ${formatCount(d)} ms` : null,
          r.result.ram ? formatBytes(r.result.ram.transferred) : null,
          `${r.rounds.length} round${r.rounds.length === 1 ? '' : 's'}`,
        ].filter(Boolean)
      : [r.result['error-desc'] ?? 'no reason recorded'];
    const name = `${r.label || r.method}${r.uri ? ` to ${r.uri}` : ''}`;
    return html`<li data-run-id=${id}>
      <input type="checkbox" aria-label="Select run ${id} (${when}, ${name})" .checked=${this.selected.has(id)} @change=${(e: Event) => this.select(id, (e.target as HTMLInputElement).checked)} />
      <div>
        <b>${r.label || r.method}</b>${r.uri ? html` <span class="meta">${r.uri}</span>` : nothing} <span class=${ok ? '' : 'failed'}>${r.result.status}</span>
        <div class="meta ${ok ? '' : 'failed'}" data-figures>${when} · ${figures.join(' · ')}</div>
      </div>
      <span>
        <button class="small" @click=${() => (this.shown = [r])} aria-label="Open run ${id} (${when}, ${name})">Open</button>
        <button class="small" @click=${() => void this.history.service?.delete(id)} aria-label="Delete run ${id} (${when}, ${name})">Delete</button>
      </span>
    </li>`;
  }

  private renderSettings(r: RunRecord) {
    const caps = Object.entries(r.capabilities)
      .filter(([, on]) => on)
      .map(([c]) => c);
    return html`<details>
      <summary>Capabilities (${caps.join(', ') || 'none'}) and parameters</summary>
      <pre tabindex="0" aria-label="Parameters of the run">${JSON.stringify(r.parameters, null, 2)}</pre>
    </details>`;
  }

  private select(id: number, on: boolean): void {
    this.selected = toggled(this.selected, id, on);
  }

  private readonly exportJson = () => {
    const h = this.history.service;
    if (!h) return;
    const json = h.exportJson(this.selected.size ? [...this.selected] : undefined);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    a.download = `tabmig-runs-${formatDateTime(Date.now()).replace(/[: ]/g, '-')}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-run-history': TmRunHistory;
  }
}
