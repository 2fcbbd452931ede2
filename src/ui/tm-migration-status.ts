import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { formatBytes, formatCount, formatMs } from './format.js';
import { currentDirection, currentStatus, isSetupOrActive, type MigrationInfo, type MigrationRamInfo } from './services/migration-view.js';
import { describeError, type QmpErrorReply } from './services/qmp-client.js';
import { panelStyles, toneStyles } from './styles/theme.js';
import './tm-migration-badge.js';

/** query-migrate is asked this often while a migration is in setup or active states. */
export const POLL_MS = 250;

type Kind = 'ms' | 'bytes' | 'pages' | 'pages/s' | 'count' | 'mbps' | 'percent';

interface Field {
  key: string;
  kind: Kind;
  /** What the field means, for the tooltip. */
  about: string;
  /** When QEMU leaves it out, why. */
  when?: string;
}

const TIMES: Field[] = [
  { key: 'total-time', kind: 'ms', about: 'time since the migration started' },
  { key: 'setup-time', kind: 'ms', about: 'time spent in setup before the first page was sent' },
  { key: 'expected-downtime', kind: 'ms', about: 'how long the final stop would take now, at the current bandwidth', when: 'while active' },
  { key: 'downtime', kind: 'ms', about: 'how long the guest was actually stopped for the switchover', when: 'once completed' },
  { key: 'cpu-throttle-percentage', kind: 'percent', about: 'CPU time auto-converge takes from the guest', when: 'while throttling' },
];

const RAM: Field[] = [
  { key: 'transferred', kind: 'bytes', about: 'bytes of RAM sent so far, including pages sent again' },
  { key: 'remaining', kind: 'bytes', about: 'dirty RAM still to send in this round', when: 'until completed' },
  { key: 'total', kind: 'bytes', about: 'guest RAM size' },
  { key: 'duplicate', kind: 'pages', about: 'zero pages: sent as one byte instead of a page' },
  { key: 'skipped', kind: 'pages', about: 'pages skipped (always 0 since QEMU 2.x)' },
  { key: 'normal', kind: 'pages', about: 'pages sent in full' },
  { key: 'normal-bytes', kind: 'bytes', about: 'normal × page-size' },
  { key: 'dirty-sync-count', kind: 'count', about: 'how many times the dirty log was read: the round number' },
  { key: 'dirty-pages-rate', kind: 'pages/s', about: 'how fast the guest dirties pages', when: 'until completed' },
  { key: 'mbps', kind: 'mbps', about: 'throughput over the last interval, in megabits per second' },
  { key: 'page-size', kind: 'bytes', about: 'target page size' },
  { key: 'postcopy-requests', kind: 'count', about: 'pages the destination asked for in postcopy' },
  { key: 'multifd-bytes', kind: 'bytes', about: 'bytes sent over multifd channels' },
];

function formatValue(v: number, kind: Kind): { value: string; unit: string } {
  switch (kind) {
    case 'ms':
      return { value: formatCount(v), unit: 'ms' };
    case 'bytes': {
      const [value, unit] = formatBytes(v).split(' ');
      return { value: value!, unit: unit! };
    }
    case 'pages':
      return { value: formatCount(v), unit: 'pages' };
    case 'pages/s':
      return { value: formatCount(v), unit: 'pages/s' };
    case 'mbps':
      return { value: v >= 100 ? v.toFixed(0) : v.toFixed(1), unit: 'Mbit/s' };
    case 'percent':
      return { value: String(v), unit: '%' };
    case 'count':
      return { value: formatCount(v), unit: '' };
  }
}

/**
 * Every field of query-migrate, live: asked through QMP four times a second while a migration is
 * in setup or active states, otherwise whenever the migration changes. With a progress bar (RAM
 * sent against RAM size) and the round counter (dirty-sync-count).
 */
@customElement('tm-migration-status')
export class TmMigrationStatus extends LitElement {
  static override styles = [
    panelStyles,
    toneStyles,
    css`
      .summary {
        display: grid;
        grid-template-columns: 1fr auto;
        gap: 0.35rem 1rem;
        align-items: end;
      }
      .round {
        grid-row: 1 / span 2;
        grid-column: 2;
        text-align: center;
        padding: 0.35rem 0.8rem;
        border-radius: 10px;
        background: var(--tm-surface-2);
        border: 1px solid var(--tm-border);
        min-width: 5.5rem;
      }
      .round .n {
        display: block;
        font-family: var(--tm-mono);
        font-size: 2rem;
        font-weight: 750;
        line-height: 1.1;
        color: var(--tm-accent);
      }
      .round .label {
        font-size: 0.72rem;
        text-transform: uppercase;
        letter-spacing: 0.07em;
        color: var(--tm-muted);
        font-weight: 650;
      }
      .caption {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 0.2rem 0.8rem;
        font-size: 0.92rem;
      }
      .caption strong {
        font-family: var(--tm-mono);
        font-size: 1.15rem;
      }
      .caption .muted {
        color: var(--tm-muted);
      }
      .bar {
        position: relative;
        height: 1.1rem;
        border-radius: 999px;
        background: var(--tm-neutral-soft);
        border: 1px solid var(--tm-border);
        overflow: hidden;
      }
      .bar .fill {
        position: absolute;
        inset: 0 auto 0 0;
        background: var(--tm-accent);
        transition: width 0.2s linear;
      }
      .bar .again {
        position: absolute;
        inset: 0 auto 0 auto;
        background: repeating-linear-gradient(-45deg, var(--tm-warn) 0 6px, #f0a640 6px 12px);
        transition: width 0.2s linear, left 0.2s linear;
      }
      .bar.done .fill {
        background: var(--tm-ok);
      }
      .legend {
        display: flex;
        flex-wrap: wrap;
        gap: 0.2rem 1rem;
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      .legend i {
        display: inline-block;
        width: 0.7rem;
        height: 0.7rem;
        border-radius: 2px;
        margin-right: 0.3rem;
        vertical-align: -0.05rem;
        background: var(--tm-accent);
      }
      .legend i.again {
        background: var(--tm-warn);
      }
      h3 {
        margin: 0.9rem 0 0.3rem;
        font-size: 0.8rem;
        font-weight: 650;
        color: var(--tm-muted);
        text-transform: uppercase;
        letter-spacing: 0.06em;
      }
      dl {
        margin: 0;
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(15.5rem, 1fr));
        column-gap: 1.2rem;
      }
      .row {
        display: flex;
        align-items: baseline;
        justify-content: space-between;
        gap: 0.6rem;
        padding: 0.22rem 0;
        border-bottom: 1px dotted var(--tm-border);
      }
      dt {
        font-family: var(--tm-mono);
        font-size: 0.86rem;
        color: #3c4655;
      }
      dd {
        margin: 0;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
        font-weight: 650;
        font-size: 1rem;
        text-align: right;
        white-space: nowrap;
      }
      dd .unit {
        font-weight: 400;
        font-size: 0.8rem;
        color: var(--tm-muted);
        margin-left: 0.25rem;
      }
      dd.absent {
        color: #a3adbb;
        font-weight: 400;
        font-size: 0.82rem;
        font-family: var(--tm-font);
      }
      .incoming {
        margin: 0;
        font-size: 0.95rem;
      }
      .incoming strong {
        font-family: var(--tm-mono);
        font-size: 1.15rem;
      }
      .error-text {
        margin: 0.4rem 0 0;
      }
      .idle {
        margin: 0;
        color: var(--tm-muted);
        font-size: 0.9rem;
      }
    `,
  ];

  /** The last query-migrate reply. */
  @state() private info: MigrationInfo | null = null;
  @state() private error: QmpErrorReply | null = null;
  @state() private polling = false;

  private timer: ReturnType<typeof setInterval> | undefined;
  private inflight = false;
  private asked = false;

  private readonly migration = new MigrationController(this, { onChange: () => this.onChange() });
  private readonly qmp = new QmpController(this);

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.setPolling(false);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.asked = false;
  }

  protected override willUpdate(): void {
    // The first ask once both services have arrived.
    if (!this.asked && this.qmp.available && this.migration.service) {
      this.asked = true;
      this.onChange();
    }
  }

  private onChange(): void {
    const m = this.migration.service;
    if (!m) return;
    const s = currentStatus(m);
    const live = isSetupOrActive(s) || s === 'cancelling';
    this.setPolling(live);
    if (!live) void this.refresh();
  }

  private setPolling(on: boolean): void {
    on &&= this.isConnected;
    if (on === this.polling) return;
    this.polling = on;
    clearInterval(this.timer);
    this.timer = on ? setInterval(() => void this.refresh(), POLL_MS) : undefined;
    if (on) void this.refresh();
  }

  /** One query-migrate through QMP (never two at once). */
  private async refresh(): Promise<void> {
    if (this.inflight || !this.qmp.available) return;
    this.inflight = true;
    try {
      const reply = await this.qmp.execute({ execute: 'query-migrate' });
      if (reply.error) {
        this.error = reply.error;
      } else {
        this.error = null;
        this.info = (reply.return ?? {}) as MigrationInfo;
      }
    } finally {
      this.inflight = false;
    }
  }

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const info = this.info ?? {};
    const incoming = currentDirection(m) === 'incoming';
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Live status</h2>
        <p class="hint">Every field of QEMU's <code>query-migrate</code> reply, as a monitoring tool would read it.</p>
        <span class="aside" title="How often query-migrate is asked">${this.polling ? `query-migrate ${Math.round(1000 / POLL_MS)}×/s` : 'on change'}</span>
      </div>
      <div class="panel-body">
        ${incoming ? this.renderIncoming() : this.renderProgress(info)}
        ${this.error ? html`<p class="error-text" role="alert">query-migrate → ${describeError(this.error)}</p>` : nothing}
        <h3>Reply</h3>
        <dl class="top">
          <div class="row">
            <dt>status</dt>
            <dd>${info.status ? html`<tm-migration-badge .status=${info.status}></tm-migration-badge>` : html`<span class="unit">— (no migration yet: {})</span>`}</dd>
          </div>
          ${TIMES.map((f) => this.renderField(f, (info as Record<string, unknown>)[f.key]))}
          ${info['error-desc'] !== undefined ? html`<div class="row"><dt>error-desc</dt><dd class="error-text">${info['error-desc']}</dd></div>` : nothing}
        </dl>
        <h3>ram</h3>
        <dl class="ram">${RAM.map((f) => this.renderField(f, info.ram?.[f.key as keyof MigrationRamInfo]))}</dl>
      </div>
    </section>`;
  }

  private renderProgress(info: MigrationInfo) {
    const ram = info.ram;
    const round = ram?.['dirty-sync-count'] ?? 0;
    if (!ram) {
      return html`<div class="summary">
        <p class="idle">${info.status === 'setup' ? 'Setting up: no RAM sent yet.' : 'The progress shows here while this tab sends a migration.'}</p>
        <div class="round"><span class="n">${round || '—'}</span><span class="label">round</span></div>
      </div>`;
    }
    const total = ram.total || 1;
    const sent = ram.transferred;
    // Past 100 %, the extra is RAM the guest wrote again after it had been sent: sent twice.
    const scale = Math.max(total, sent);
    const first = Math.min(sent, total) / scale;
    const again = Math.max(0, sent - total) / scale;
    const done = info.status === 'completed';
    return html`<div class="summary">
      <div class="caption">
        <span><strong class="transferred">${formatBytes(sent)}</strong> <span class="muted">transferred of</span> <strong>${formatBytes(ram.total)}</strong> RAM</span>
        ${ram.remaining !== undefined ? html`<span class="muted">remaining ${formatBytes(ram.remaining)}</span>` : nothing}
        <span class="muted">${Math.round((sent / total) * 100)} %</span>
      </div>
      <div class="round" title="dirty-sync-count: each round sends the pages dirtied during the one before">
        <span class="n">${round}</span><span class="label">round</span>
      </div>
      <div
        class="bar ${done ? 'done' : ''}"
        role="progressbar"
        aria-label="RAM transferred"
        aria-valuemin="0"
        aria-valuemax=${ram.total}
        aria-valuenow=${Math.min(sent, ram.total)}
      >
        <span class="fill" style="width:${(first * 100).toFixed(2)}%"></span>
        ${again > 0 ? html`<span class="again" style="left:${(first * 100).toFixed(2)}%;width:${(again * 100).toFixed(2)}%"></span>` : nothing}
      </div>
    </div>
    <div class="legend">
      <span><i></i>transferred, up to the RAM size</span>
      ${again > 0 ? html`<span><i class="again"></i>beyond it: pages written again and re-sent</span>` : nothing}
      <span>zero pages travel as a few bytes, so a mostly empty RAM finishes early</span>
    </div>`;
  }

  private renderIncoming() {
    const m = this.migration.service!;
    return html`<p class="incoming">
      Receiving side: <strong>${formatBytes(m.incomingBytesReceived)}</strong> of stream received.
      <span class="hint">QEMU reports only the status here: the counters belong to the source.</span>
    </p>`;
  }

  private renderField(f: Field, v: unknown) {
    if (typeof v !== 'number') {
      return html`<div class="row" title=${f.about}>
        <dt>${f.key}</dt>
        <dd class="absent">— ${f.when ? `(${f.when})` : ''}</dd>
      </div>`;
    }
    const { value, unit } = formatValue(v, f.kind);
    const exact = f.kind === 'bytes' ? `${formatCount(v)} bytes` : f.kind === 'ms' ? formatMs(v) : String(v);
    return html`<div class="row" title="${f.about} (${exact})">
      <dt>${f.key}</dt>
      <dd data-field=${f.key}>${value}${unit ? html`<span class="unit">${unit}</span>` : nothing}</dd>
    </div>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-status': TmMigrationStatus;
  }
}
