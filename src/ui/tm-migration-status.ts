import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { formatBytes, formatCount, formatMbps, formatMs } from './format.js';
import { currentDirection, currentStatus, isSetupOrActive, type MigrationInfo, type MigrationRamInfo } from './services/migration-view.js';
import { describeError, type QmpErrorReply } from './services/qmp-client.js';
import { panelStyles, toneStyles } from './styles/theme.js';
import './tm-migration-badge.js';

/** query-migrate is asked this often while a migration is in setup or active states. */
export const POLL_MS = 250;

type Kind = 'ms' | 'bytes' | 'pages' | 'pages/s' | 'count' | 'mbps' | 'percent' | 'ratio';

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
  {
    key: 'expected-downtime',
    kind: 'ms',
    about: 'how long the switchover would stop the guest now: the pages left and bytes in flight at the measured wire rate, the handshake round trip, the stop and the start — the estimate the switchover decision uses',
    when: 'while active',
  },
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
  { key: 'mbps', kind: 'mbps', about: 'throughput in megabits per second: over the last 100 ms while active, over the whole transfer once completed' },
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
    case 'mbps': {
      const [value, unit] = formatMbps(v).split(' ');
      return { value: value!, unit: unit! };
    }
    case 'percent':
      return { value: String(v), unit: '%' };
    case 'count':
      return { value: formatCount(v), unit: '' };
    case 'ratio':
      return { value: v.toFixed(2), unit: '' };
  }
}

/** query-migrate's xbzrle-cache (present while the xbzrle capability is on). */
const XBZRLE: Field[] = [
  { key: 'cache-size', kind: 'bytes', about: 'xbzrle-cache-size: the page cache XBZRLE encodes against' },
  { key: 'bytes', kind: 'bytes', about: 'bytes of XBZRLE records sent' },
  { key: 'pages', kind: 'pages', about: 'pages sent as XBZRLE deltas instead of whole pages' },
  { key: 'cache-miss', kind: 'count', about: 'pages not in the cache: sent whole, and cached' },
  { key: 'cache-miss-rate', kind: 'ratio', about: 'misses per page looked up over the last round' },
  { key: 'overflow', kind: 'count', about: 'pages whose delta would not fit a page: sent whole' },
];

/** query-migrate's compression (present while the compress capability is on; QEMU 3.1). */
const COMPRESSION: Field[] = [
  { key: 'pages', kind: 'pages', about: 'pages sent zlib-compressed by the compress-threads workers' },
  { key: 'busy', kind: 'count', about: 'pages that waited because every compress worker was busy' },
  { key: 'busy-rate', kind: 'ratio', about: 'busy per page over the last round' },
  { key: 'compressed-size', kind: 'bytes', about: 'bytes of zlib data sent' },
  { key: 'compression-rate', kind: 'ratio', about: 'page bytes in per zlib byte out over the last round' },
];

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
      .panel-head .hint {
        order: 3;
        flex-basis: 100%;
      }
      .summary {
        display: grid;
        grid-template-columns: 1fr auto;
        gap: 0.2rem 1rem;
        align-items: center;
      }
      .bars {
        display: flex;
        flex-direction: column;
        gap: 0.45rem;
        min-width: 0;
      }
      .round {
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
        font-size: 2.1rem;
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
        justify-content: space-between;
        gap: 0 0.6rem;
        font-size: 0.86rem;
        color: var(--tm-muted);
        margin-bottom: 0.15rem;
      }
      .caption strong {
        font-family: var(--tm-mono);
        font-size: 1.05rem;
        color: var(--tm-text);
      }
      .bar {
        position: relative;
        height: 0.9rem;
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
      .bar.copied .fill {
        background: var(--tm-ok);
      }
      .bar .again {
        position: absolute;
        inset: 0 auto 0 auto;
        background: repeating-linear-gradient(-45deg, var(--tm-warn) 0 6px, #f0a640 6px 12px);
        transition: width 0.2s linear, left 0.2s linear;
      }
      .note {
        margin: 0.4rem 0 0;
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      h3 {
        margin: 0.8rem 0 0.35rem;
        font-size: 0.78rem;
        font-weight: 650;
        color: var(--tm-muted);
        text-transform: uppercase;
        letter-spacing: 0.06em;
      }
      h3 code {
        text-transform: none;
        letter-spacing: 0;
      }
      dl {
        margin: 0;
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(8.6rem, 1fr));
        gap: 0.35rem;
      }
      .tile {
        display: flex;
        flex-direction: column;
        padding: 0.25rem 0.5rem 0.3rem;
        border-radius: 6px;
        background: var(--tm-surface-2);
        min-width: 0;
      }
      .tile.wide {
        grid-column: 1 / -1;
      }
      dt {
        font-family: var(--tm-mono);
        font-size: 0.74rem;
        color: var(--tm-muted);
        overflow-wrap: anywhere;
      }
      dd {
        margin: 0;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
        font-weight: 650;
        font-size: 1.1rem;
        white-space: nowrap;
      }
      dd .unit {
        font-weight: 400;
        font-size: 0.78rem;
        color: var(--tm-muted);
        margin-left: 0.25rem;
      }
      .tile.absent dd {
        color: var(--tm-muted);
        font-weight: 400;
        font-size: 0.8rem;
        font-family: var(--tm-font);
        line-height: 1.65rem;
      }
      dd.error-desc {
        white-space: normal;
        color: var(--tm-danger);
        font-size: 0.9rem;
        overflow-wrap: anywhere;
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
  private again = false;
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

  /**
   * One query-migrate through QMP, never two at once; a change that comes in while one is out
   * asks again afterwards, so the last reply shown is never older than the last change.
   */
  private async refresh(): Promise<void> {
    if (!this.qmp.available) return;
    if (this.inflight) {
      this.again = true;
      return;
    }
    this.inflight = true;
    try {
      do {
        this.again = false;
        const reply = await this.qmp.execute({ execute: 'query-migrate' });
        if (reply.error) {
          this.error = reply.error;
        } else {
          this.error = null;
          this.info = (reply.return ?? {}) as MigrationInfo;
        }
      } while (this.again && this.isConnected);
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
        <p class="hint">QEMU's <code>query-migrate</code> reply, every field, as a monitoring tool reads it.</p>
        <span class="aside" title="How often query-migrate is asked">${this.polling ? `query-migrate ${Math.round(1000 / POLL_MS)}×/s` : 'on change'}</span>
      </div>
      <div class="panel-body">
        ${incoming ? this.renderIncoming() : this.renderProgress(info)}
        ${this.error ? html`<p class="error-text" role="alert">query-migrate → ${describeError(this.error)}</p>` : nothing}
        <h3>The reply, field by field</h3>
        <dl class="top">
          <div class="tile">
            <dt>status</dt>
            <dd>${info.status ? html`<tm-migration-badge .status=${info.status}></tm-migration-badge>` : html`<span class="unit">none yet: {}</span>`}</dd>
          </div>
          ${incoming ? nothing : TIMES.map((f) => this.renderField(f, (info as Record<string, unknown>)[f.key]))}
          ${info['error-desc'] !== undefined
            ? html`<div class="tile wide"><dt>error-desc</dt><dd class="error-desc">${info['error-desc']}</dd></div>`
            : nothing}
        </dl>
        ${incoming
          ? nothing
          : html`<h3><code>ram</code></h3>
              <dl class="ram">${RAM.map((f) => this.renderField(f, info.ram?.[f.key as keyof MigrationRamInfo]))}</dl>
              ${info['xbzrle-cache']
                ? html`<h3><code>xbzrle-cache</code></h3>
                    <dl class="ram">${XBZRLE.map((f) => this.renderField(f, (info['xbzrle-cache'] as unknown as Record<string, unknown>)[f.key]))}</dl>`
                : nothing}
              ${info.compression
                ? html`<h3><code>compression</code></h3>
                    <dl class="ram">${COMPRESSION.map((f) => this.renderField(f, (info.compression as unknown as Record<string, unknown>)[f.key]))}</dl>`
                : nothing}`}
      </div>
    </section>`;
  }

  private renderProgress(info: MigrationInfo) {
    const ram = info.ram;
    const round = ram?.['dirty-sync-count'];
    const roundBox = html`<div class="round" title="dirty-sync-count: each round sends the pages dirtied during the one before">
      <span class="n">${round ?? '—'}</span><span class="label">round</span>
    </div>`;
    if (!ram) {
      return html`<div class="summary">
        <p class="note">${info.status === 'setup' ? 'Setting up: no RAM sent yet.' : 'The progress shows here while this tab sends a migration.'}</p>
        ${roundBox}
      </div>`;
    }
    const total = ram.total || 1;
    const sent = ram.transferred;
    const remaining = ram.remaining ?? 0;
    const copied = Math.min(1, Math.max(0, (total - remaining) / total));
    // Past the RAM size, the extra is RAM the guest wrote again after it had been sent.
    const scale = Math.max(total, sent);
    const first = Math.min(sent, total) / scale;
    const again = Math.max(0, sent - total) / scale;
    return html`<div class="summary">
        <div class="bars">
          <div>
            <div class="caption">
              <span>copied: RAM size − <code>remaining</code></span><span><strong>${Math.round(copied * 100)} %</strong> · ${formatBytes(remaining)} left</span>
            </div>
            <div class="bar copied" role="progressbar" aria-label="RAM copied" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(copied * 100)}>
              <span class="fill" style="width:${(copied * 100).toFixed(2)}%"></span>
            </div>
          </div>
          <div>
            <div class="caption">
              <span><code>transferred</code> of <code>total</code></span>
              <span><strong class="transferred">${formatBytes(sent)}</strong> of ${formatBytes(ram.total)}</span>
            </div>
            <div class="bar sent" role="progressbar" aria-label="RAM transferred" aria-valuemin="0" aria-valuemax=${ram.total} aria-valuenow=${Math.min(sent, ram.total)}>
              <span class="fill" style="width:${(first * 100).toFixed(2)}%"></span>
              ${again > 0 ? html`<span class="again" style="left:${(first * 100).toFixed(2)}%;width:${(again * 100).toFixed(2)}%"></span>` : nothing}
            </div>
          </div>
        </div>
        ${roundBox}
      </div>
      <p class="note">
        Each round, pages the guest wrote meanwhile count as remaining again${again > 0 ? ', and are sent again (striped)' : ''}; zero pages travel as a
        few bytes, so <code>transferred</code> can end below the RAM size.
      </p>`;
  }

  private renderIncoming() {
    const m = this.migration.service!;
    return html`<p class="incoming">
      ${isSetupOrActive(m.incomingStatus) ? 'Receiving' : 'Received'}:
      <strong>${formatBytes(m.incomingBytesReceived)}</strong> of migration stream.
      <span class="hint">On the destination QEMU reports only the status (and error-desc): the counters belong to the source.</span>
    </p>`;
  }

  private renderField(f: Field, v: unknown) {
    if (typeof v !== 'number') {
      return html`<div class="tile absent" title=${f.about}>
        <dt>${f.key}</dt>
        <dd>— ${f.when ?? ''}</dd>
      </div>`;
    }
    const { value, unit } = formatValue(v, f.kind);
    const exact = f.kind === 'bytes' ? `${formatCount(v)} bytes` : f.kind === 'ms' ? formatMs(v) : String(v);
    return html`<div class="tile" title="${f.key}: ${f.about} (${exact})">
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
