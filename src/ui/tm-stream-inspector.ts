import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MACHINE_TYPE } from '../migration/migration-service.js';
import { SectionType } from '../migration/stream/format.js';
import { MachineController } from './controllers/machine-controller.js';
import { RoundsController } from './controllers/rounds-controller.js';
import { SnapshotsController } from './controllers/snapshots-controller.js';
import { formatBytes, formatCount } from './format.js';
import { checkStream } from './services/stream-check.js';
import { panelStyles } from './styles/theme.js';

const TYPE_NAMES: Record<number, string> = {
  [SectionType.START]: 'START',
  [SectionType.PART]: 'PART',
  [SectionType.END]: 'END',
  [SectionType.FULL]: 'FULL',
  [SectionType.CONFIGURATION]: 'CONFIGURATION',
  [SectionType.COMMAND]: 'COMMAND',
};

/** What each item of a stream is, in a sentence (the rows' tooltips). */
const TYPE_EXPLAIN: Record<string, string> = {
  CONFIGURATION: 'QEMU_VM_CONFIGURATION: the machine type, so a destination of another kind refuses the stream at once.',
  START: 'QEMU_VM_SECTION_START: an iterable section (RAM) begins; its setup data (the RAM block list).',
  PART: 'QEMU_VM_SECTION_PART: one iteration of an iterable section: RAM page records.',
  END: 'QEMU_VM_SECTION_END: the last part, sent with the guest stopped.',
  FULL: 'QEMU_VM_SECTION_FULL: a device\u2019s whole state (vmstate fields), sent with the guest stopped.',
  COMMAND: 'QEMU_VM_COMMAND: an instruction to the destination (open the return path, ping, postcopy steps).',
};

interface Row {
  offset: number;
  kind: string;
  name: string;
  id: number | null;
  version: number | null;
  bytes: number;
  /** Several RAM parts folded into one row. */
  parts?: number;
  pages?: number;
  zeroPages?: number;
  detail?: string;
}

/**
 * The stream as it is built: every section (name, id, version, size) and command, RAM records
 * summarised. A saved stream (a downloaded `file:` migration, or a snapshot in this browser) is
 * walked by the destination's own loadvm loop and load handlers (stream-check.ts), with a tap
 * that notes each item; nothing is loaded. During a migration, the RAM of each round as the
 * migration worker recorded it (the shared round records) shows on the source, and the commands
 * the incoming thread reports (the service's log) with the bytes read so far on the destination.
 * (Sections as they pass live would need a tap in the workers; see the issue's notes.)
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

  @state() private rows: Row[] = [];
  @state() private source = '';
  @state() private status = '';
  @state() private error = '';

  private readonly machine = new MachineController(this);
  private readonly snapshots = new SnapshotsController(this);
  private readonly rounds = new RoundsController(this);

  override render() {
    const snaps = this.snapshots.service?.snapshots ?? [];
    const records = this.rounds.records;
    const m = this.rounds.service;
    const incoming = m !== undefined && m.outgoingStatus === 'none' && m.incomingStatus !== 'none';
    const commands = incoming ? m.log.filter((e) => e.text.startsWith('stream command ')) : [];
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
        ${this.rows.length ? this.renderTable() : nothing}
        ${records.length
          ? html`<h3>This tab's migration: RAM per round (as sent)</h3>
              <div class="table-wrap" data-live>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Round</th>
                      <th scope="col" title="The ram section's iteration">Section</th>
                      <th scope="col" class="num">Pages</th>
                      <th scope="col" class="num" title="RAM_SAVE_FLAG_ZERO records: one byte instead of a page">Zero</th>
                      <th scope="col" class="num">Bytes</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${records.map(
                      (r, i) => html`<tr>
                        <td>${r.round}</td>
                        <td><span class="kind kind-${i === 0 ? 'START' : 'PART'}">${i === 0 ? 'START+PART' : 'PART'}</span> ram</td>
                        <td class="num">${formatCount(r.pagesSent)}</td>
                        <td class="num">${formatCount(r.zeroPages)}</td>
                        <td class="num">${formatBytes(r.bytesSent)}</td>
                      </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`
          : nothing}
        ${incoming
          ? html`<h3>This tab's incoming stream, live</h3>
              <p class="summary" data-live-incoming>
                ${m.incomingStatus}: ${formatBytes(m.incomingBytesReceived)} of stream read so far; the memory map shows each page as it
                lands.
              </p>
              ${commands.length
                ? html`<div class="table-wrap">
                    <table aria-label="Commands received">
                      <thead>
                        <tr>
                          <th scope="col">Time</th>
                          <th scope="col">Command</th>
                        </tr>
                      </thead>
                      <tbody>
                        ${commands.map(
                          (e) => html`<tr data-kind="COMMAND">
                            <td class="mono">${new Date(e.t).toLocaleTimeString()}</td>
                            <td><span class="kind kind-COMMAND" title=${TYPE_EXPLAIN.COMMAND!}>COMMAND</span> ${e.text.slice('stream command '.length)}</td>
                          </tr>`,
                        )}
                      </tbody>
                    </table>
                  </div>`
                : nothing}`
          : nothing}
      </div>
    </section>`;
  }

  private renderTable() {
    return html`<div class="table-wrap">
      <table data-inspector-table aria-label="Sections and commands of ${this.source}">
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
          ${this.rows.map(
            (r) => html`<tr data-kind=${r.kind}>
              <td class="num mono">${r.offset.toString(16).padStart(6, '0')}</td>
              <td><span class="kind kind-${r.kind}" title=${TYPE_EXPLAIN[r.kind] ?? ''}>${r.kind}${r.parts && r.parts > 1 ? ` ×${r.parts}` : ''}</span></td>
              <td>
                <span class="mono">${r.name}</span>
                ${r.pages !== undefined || r.detail
                  ? html`<div class="detail">
                      ${r.pages !== undefined ? `${formatCount(r.pages)} pages, ${formatCount(r.zeroPages ?? 0)} of them zero` : r.detail}
                    </div>`
                  : nothing}
              </td>
              <td class="num">${r.id ?? ''}</td>
              <td class="num">${r.version ?? ''}</td>
              <td class="num">${formatBytes(r.bytes)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
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
    const rows: Row[] = [];
    let ramStats: { pages: number; zeroPages: number } | null = null;
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
          ramPart: (s) => (ramStats = { pages: s.pages, zeroPages: s.zeroPages }),
          section: (s) => {
            const kind = TYPE_NAMES[s.type] ?? `0x${s.type.toString(16)}`;
            const stats = ramStats as { pages: number; zeroPages: number } | null;
            ramStats = null;
            const prev = rows[rows.length - 1];
            // Consecutive RAM parts fold into one row (a stream may hold hundreds).
            if (stats && prev && prev.kind === kind && kind === 'PART' && prev.name === s.name) {
              prev.parts = (prev.parts ?? 1) + 1;
              prev.bytes += s.bytes;
              prev.pages! += stats.pages;
              prev.zeroPages! += stats.zeroPages;
              return;
            }
            rows.push({
              offset: s.offset,
              kind,
              name: s.name,
              id: s.type === SectionType.CONFIGURATION ? null : s.sectionId,
              version: s.versionId,
              bytes: s.bytes,
              ...(stats ? { pages: stats.pages, zeroPages: stats.zeroPages, parts: 1 } : {}),
            });
          },
          command: (cmd, offset, bytes) => {
            const value = 'value' in cmd ? ` ${cmd.value}` : '';
            rows.push({ offset, kind: 'COMMAND', name: cmd.type, id: null, version: null, bytes, detail: `MIG_CMD_${cmd.type}${value}` });
          },
        },
      );
      this.rows = rows;
      this.status = `${label}: ${formatBytes(result.bytes)}, ${result.sections} sections, machine ${result.machineType ?? '?'}; ends with EOF and the VM description (JSON).`;
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
