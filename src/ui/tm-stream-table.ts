import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { ifDefined } from 'lit/directives/if-defined.js';
import { formatBytes } from './format.js';
import { TYPE_EXPLAIN, ramText, type StreamRow } from './stream-rows.js';

/**
 * A migration stream's items as a table: offset, kind, name (RAM records summarised under it),
 * section id, version, size. The stream inspector shows a saved file and the live stream with
 * this one element, so both read the same way.
 */
@customElement('tm-stream-table')
export class TmStreamTable extends LitElement {
  static override styles = css`
    :host {
      display: block;
    }
    .table-wrap {
      max-height: 22rem;
      overflow: auto;
      margin-top: 0.6rem;
      border: 1px solid var(--tm-border);
      border-radius: 8px;
    }
    table {
      width: 100%;
      border-collapse: collapse;
      font-size: 0.82rem;
      font-variant-numeric: tabular-nums;
    }
    th,
    td {
      padding: 0.3rem 0.5rem;
      border-bottom: 1px solid var(--tm-border);
      text-align: left;
      white-space: nowrap;
    }
    thead th {
      position: sticky;
      top: 0;
      background: var(--tm-surface-2);
      color: var(--tm-muted);
      font-weight: 600;
    }
    td.num {
      text-align: right;
    }
    .mono {
      font-family: var(--tm-mono);
    }
    .kind {
      font-family: var(--tm-mono);
      font-size: 0.76rem;
      padding: 0.05rem 0.4rem;
      border-radius: 4px;
      background: var(--tm-neutral-soft);
      cursor: help;
    }
    .kind-START,
    .kind-PART,
    .kind-END {
      background: var(--tm-accent-soft);
      color: #24399b;
    }
    .kind-FULL {
      background: var(--tm-ok-soft);
      color: #1d6a2f;
    }
    .kind-COMMAND {
      background: var(--tm-warn-soft);
      color: #7a4300;
    }
    .detail {
      color: var(--tm-muted);
      font-size: 0.76rem;
      white-space: normal;
    }
    /* The name column wraps, so the id, version and size columns stay in view in a narrow panel. */
    td:nth-child(3) {
      white-space: normal;
      overflow-wrap: anywhere;
      min-width: 7rem;
    }
  `;

  @property({ attribute: false }) rows: readonly StreamRow[] = [];
  /** What the table lists (its accessible name). */
  @property() label = '';
  /** The live stream (true) or a saved file: marks the table for tests and scripts. */
  @property({ type: Boolean }) live = false;

  override render() {
    // The wrap scrolls a long stream: it takes the keyboard focus, so it scrolls without a mouse.
    return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${this.label}>
      <table
        aria-label=${this.label}
        data-inspector-table=${ifDefined(this.live ? undefined : '')}
        data-live-table=${ifDefined(this.live ? '' : undefined)}
      >
        <thead>
          <tr>
            <th scope="col" class="num">Offset</th>
            <th scope="col">Kind</th>
            <th scope="col">Name</th>
            <th scope="col" class="num" title="Section id (assigned by the source, in order)">Id</th>
            <th scope="col" class="num" title="The section's version_id; the destination refuses a newer one">Ver</th>
            <th scope="col" class="num">Size</th>
          </tr>
        </thead>
        <tbody>
          ${this.rows.map((r) => this.renderRow(r))}
        </tbody>
      </table>
    </div>`;
  }

  private renderRow(r: StreamRow) {
    const detail = r.ram ? `${r.round ? `round ${r.round}: ` : ''}${ramText(r.ram)}` : r.detail;
    return html`<tr data-kind=${r.kind} data-round=${ifDefined(r.round)}>
      <td class="num mono" title=${ifDefined(r.nested ? 'Inside the PACKAGED command above: its offset is in the package' : undefined)}>
        ${r.offset === null ? (r.nested ? 'in pkg' : '') : r.offset.toString(16).padStart(6, '0')}
      </td>
      <td>
        <span class="kind kind-${r.kind}" title=${TYPE_EXPLAIN[r.kind] ?? ''}>${r.kind}${r.parts && r.parts > 1 ? ` ×${r.parts}` : ''}</span>
      </td>
      <td>
        <span class="mono">${r.name}</span>
        ${detail ? html`<div class="detail">${detail}</div>` : nothing}
      </td>
      <td class="num">${r.id ?? ''}</td>
      <td class="num">${r.version ?? ''}</td>
      <td class="num">${formatBytes(r.bytes)}</td>
    </tr>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-stream-table': TmStreamTable;
  }
}
