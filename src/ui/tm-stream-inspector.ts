import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MACHINE_TYPE } from '../migration/migration-service.js';
import { SectionType } from '../migration/stream/format.js';
import { MachineController } from './controllers/machine-controller.js';
import { SnapshotsController } from './controllers/snapshots-controller.js';
import { StreamLogController } from './controllers/stream-log-controller.js';
import { formatBytes } from './format.js';
import { checkStream } from './services/stream-check.js';
import { TYPE_NAMES, type RamSummary, type StreamRow } from './stream-rows.js';
import { panelStyles } from './styles/theme.js';
import './tm-stream-table.js';

/**
 * The stream as it is built: every section (name, id, version, size) and command, RAM records
 * summarised. During a migration, on both tabs, the stream as it passes: the migration worker
 * (source) and the incoming worker (destination) note each item in a shared log as their
 * savevm/loadvm loop writes or reads it (stream-log.ts), and this reads it on animation frames;
 * RAM is summarised per round. A saved stream (a downloaded `file:` migration, or a snapshot in
 * this browser) is walked by the destination's own loadvm loop and load handlers
 * (stream-check.ts), with a tap that notes each item; nothing is loaded. Both show in the same
 * table (tm-stream-table).
 */
@customElement('tm-stream-inspector')
export class TmStreamInspector extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .pick {
        display: grid;
        grid-template-columns: auto minmax(0, 1fr);
        gap: 0.4rem 0.7rem;
        align-items: center;
        font-size: 0.88rem;
      }
      input[type='file'] {
        font-size: 0.84rem;
        min-width: 0;
      }
      .summary {
        margin: 0.5rem 0 0;
        font-size: 0.86rem;
      }
      h3 {
        font-size: 0.9rem;
        margin: 0.9rem 0 0.2rem;
      }
    `,
  ];

  @state() private rows: StreamRow[] = [];
  @state() private source = '';
  @state() private status = '';
  @state() private error = '';

  private readonly machine = new MachineController(this);
  private readonly snapshots = new SnapshotsController(this);
  private readonly live = new StreamLogController(this);

  override render() {
    const snaps = this.snapshots.service?.snapshots ?? [];
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Stream inspector</h2>
        <p class="hint">
          What a migration stream is made of: QEMU's sections and commands in order, with RAM records summarised. Read by the
          destination's own loader, nothing loaded.
        </p>
      </div>
      <div class="panel-body">
        <div class="pick">
          <label for="insp-file">Stream file</label>
          <input id="insp-file" type="file" @change=${this.onFile} />
          ${snaps.length
            ? html`<label for="insp-snap">or snapshot</label>
                <select id="insp-snap" @change=${this.onSnapshot}>
                  <option value="">—</option>
                  ${snaps.map((s) => html`<option value=${s.name}>idb:${s.name}</option>`)}
                </select>`
            : nothing}
        </div>
        ${this.error ? html`<p class="error-text" role="alert">${this.error}</p>` : nothing}
        ${this.status ? html`<p class="summary" aria-live="polite">${this.status}</p>` : nothing}
        ${this.rows.length ? html`<tm-stream-table .rows=${this.rows} label="Sections and commands of ${this.source}"></tm-stream-table>` : nothing}
        ${this.renderLive()}
      </div>
    </section>`;
  }

  /** This tab's own migration stream, as its worker writes or reads it. */
  private renderLive() {
    const { rows, side, dropped } = this.live;
    if (!side || rows.length === 0) return nothing;
    // (The other end may be a tab, or a snapshot in IndexedDB or a file.)
    const what = side === 'source' ? 'written' : 'read';
    const withPages = new Set(rows.filter((r) => r.round).map((r) => r.round)).size;
    const total = rows.reduce((n, r) => n + (r.nested ? 0 : r.bytes), 0);
    // The round count is the source's one figure (dirty-sync-count, the round records); a round
    // whose sync found nothing to send writes no RAM part, so this table may list fewer.
    const rounds = side === 'source' ? (this.live.migration.service?.rounds.count ?? 0) : 0;
    return html`<h3>This tab's migration stream, live (${side})</h3>
      <p class="summary" data-live-summary>
        ${rows.length} items ${what}, ${formatBytes(total)}${rounds
          ? html`; <span data-rounds=${rounds}>${rounds} round${rounds === 1 ? '' : 's'}</span>${withPages < rounds ? `, ${withPages} of them with RAM pages` : ''}`
          : nothing}.
        ${side === 'destination'
          ? html`<span class="hint">The stream does not mark rounds: a page arriving again shows the source synced and re-sent it.</span>`
          : nothing}
        ${dropped ? html`<span class="hint">(${dropped} earlier items no longer kept)</span>` : nothing}
      </p>
      <tm-stream-table live .rows=${rows} label="Sections and commands of this tab's migration stream, as the ${side} saw them"></tm-stream-table>`;
  }

  private readonly onFile = (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void this.inspect(file, file.name);
  };

  private readonly onSnapshot = async (e: Event) => {
    const name = (e.target as HTMLSelectElement).value;
    const svc = this.snapshots.service;
    if (!name || !svc) return;
    try {
      void this.inspect(await svc.exportBlob(name), `idb:${name}`);
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
  };

  /** Walks `blob` with the destination's loader, listing each section and command. */
  async inspect(blob: Blob, label: string): Promise<void> {
    const ramSize = this.machine.service?.ramSize ?? 0;
    const rows: StreamRow[] = [];
    let ramStats: RamSummary | null = null;
    this.rows = [];
    this.error = '';
    this.source = label;
    this.status = `Reading ${label}…`;
    try {
      const result = await checkStream(
        blob,
        { machineType: MACHINE_TYPE, ramSize },
        undefined,
        {
          ramPart: (s) => (ramStats = { pages: s.pages, zeroPages: s.zeroPages, xbzrlePages: s.xbzrlePages, compressedPages: s.compressedPages }),
          section: (s) => {
            const kind = TYPE_NAMES[s.type] ?? `0x${s.type.toString(16)}`;
            const stats = ramStats as RamSummary | null;
            ramStats = null;
            const prev = rows[rows.length - 1];
            // Consecutive RAM parts fold into one row (a stream may hold hundreds).
            if (stats && prev?.ram && prev.kind === kind && kind === 'PART' && prev.name === s.name) {
              prev.parts = (prev.parts ?? 1) + 1;
              prev.bytes += s.bytes;
              prev.ram.pages += stats.pages;
              prev.ram.zeroPages += stats.zeroPages;
              prev.ram.xbzrlePages += stats.xbzrlePages;
              prev.ram.compressedPages += stats.compressedPages;
              return;
            }
            rows.push({
              offset: s.offset,
              kind,
              name: s.name,
              id: s.type === SectionType.CONFIGURATION ? null : s.sectionId,
              version: s.version,
              bytes: s.bytes,
              ...(stats ? { ram: { ...stats }, parts: 1 } : {}),
            });
          },
          command: (cmd, offset, bytes) => {
            const value = 'value' in cmd ? ` ${cmd.value}` : '';
            rows.push({ offset, kind: 'COMMAND', name: cmd.type, id: null, version: null, bytes, detail: `MIG_CMD_${cmd.type}${value}` });
          },
          marker: (type, offset, bytes) => {
            rows.push({ offset, kind: TYPE_NAMES[type]!, name: type === SectionType.EOF ? 'EOF' : 'VM description', id: null, version: null, bytes });
          },
        },
      );
      this.rows = rows;
      this.status = `${label}: ${formatBytes(result.bytes)}, ${result.sections} sections, machine ${result.machineType ?? '?'}.`;
    } catch (e) {
      this.rows = rows;
      this.status = '';
      this.error = e instanceof Error ? e.message : String(e);
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-stream-inspector': TmStreamInspector;
  }
}
