import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, query, state } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { SnapshotsController } from './controllers/snapshots-controller.js';
import { formatBytes, formatDateTime, formatTime } from './format.js';
import { incomingPageUrl, navigateTo, type Navigate } from './page-url.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { isDeferredIncoming } from './services/migration-view.js';
import { MACHINE_TYPE } from '../migration/migration-service.js';
import { SnapshotExistsError, type SnapshotInfo } from './services/snapshot-service.js';
import { panelStyles } from './styles/theme.js';

/** The snapshot name for a dropped or picked stream file: its name without `.qemu`. */
export function snapshotNameForFile(fileName: string): string {
  const base = fileName.replace(/\.(qemu|bin|mig|stream)$/i, '').trim();
  return base || 'imported';
}

function when(t: number): string {
  return formatDateTime(t);
}

function defaultName(): string {
  return `snap-${formatTime(Date.now()).replace(/:/g, '').slice(0, 4)}`;
}

function hasFiles(e: DragEvent): boolean {
  return Array.from(e.dataTransfer?.types ?? []).includes('Files');
}

type Import = {
  name: string;
  done: number;
  total: number;
  /** Checking the file is a loadable stream, then copying it into IndexedDB. */
  phase: 'checking' | 'copying';
  error?: string;
  /** The error is "name taken": the user may replace the old snapshot. */
  exists?: boolean;
  finished: boolean;
};

/**
 * Migration streams saved in this browser's IndexedDB: Save is `migrate idb:NAME` (a failed or
 * cancelled save never shows up), Restore starts this tab as the destination of one, Download
 * hands out the stream as a `.qemu` file, and a `.qemu` file picked or dropped anywhere on the
 * page is imported as a snapshot, ready to restore.
 */
@customElement('tm-snapshots')
export class TmSnapshots extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      .save {
        display: flex;
        gap: 0.5rem;
        align-items: center;
      }
      .save label {
        font-size: 0.85rem;
        color: var(--tm-muted);
        font-weight: 560;
      }
      .save input {
        flex: 1 1 auto;
        width: 6rem;
        font-family: var(--tm-mono);
      }
      .prefix {
        font-family: var(--tm-mono);
        color: var(--tm-muted);
        margin-right: -0.3rem;
      }
      ul {
        list-style: none;
        margin: 0.75rem 0 0;
        padding: 0;
        display: flex;
        flex-direction: column;
        gap: 0.4rem;
      }
      li.snap {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.3rem 0.5rem;
        padding: 0.45rem 0.6rem;
        border-radius: 8px;
        border: 1px solid var(--tm-border);
        background: var(--tm-surface-2);
      }
      li.snap.fresh {
        border-color: #9fd8ab;
        background: var(--tm-ok-soft);
      }
      .what {
        display: flex;
        flex-direction: column;
        flex: 1 1 9rem;
        min-width: 0;
      }
      .snap-name {
        font-family: var(--tm-mono);
        font-weight: 700;
        overflow-wrap: anywhere;
      }
      .meta {
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      .buttons {
        display: flex;
        gap: 0.35rem;
        margin-left: auto;
      }
      li.snap button {
        padding: 0.3rem 0.6rem;
        font-size: 0.85rem;
      }
      button.danger {
        color: var(--tm-danger);
      }
      button.danger.confirm {
        background: var(--tm-danger);
        border-color: var(--tm-danger);
        color: #fff;
      }
      li.snap .feedback {
        flex-basis: 100%;
        margin-top: 0;
      }
      .empty {
        margin: 0.75rem 0 0;
        color: var(--tm-muted);
        font-size: 0.9rem;
      }
      .drop {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 0.75rem;
        margin-top: 0.75rem;
        padding: 0.6rem 0.75rem;
        border: 2px dashed var(--tm-border);
        border-radius: 8px;
        color: var(--tm-muted);
        font-size: 0.88rem;
      }
      .drop.over {
        border-color: var(--tm-accent);
        background: var(--tm-accent-soft);
        color: var(--tm-accent);
      }
      input[type='file'] {
        display: none;
      }
      .progress {
        flex-basis: 100%;
        height: 0.5rem;
        border-radius: 999px;
        background: var(--tm-neutral-soft);
        overflow: hidden;
      }
      .progress span {
        display: block;
        height: 100%;
        background: var(--tm-accent);
      }
      .imported {
        flex-basis: 100%;
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        justify-content: space-between;
        gap: 0.4rem 0.6rem;
        color: var(--tm-ok);
        font-weight: 600;
      }
      .explain {
        margin: 0.6rem 0 0;
        font-size: 0.82rem;
        color: var(--tm-muted);
      }
      .overlay {
        position: fixed;
        inset: 0;
        z-index: 100;
        display: grid;
        place-items: center;
        background: rgb(52 81 209 / 18%);
        backdrop-filter: blur(2px);
        pointer-events: none;
      }
      .saving {
        display: flex;
        flex-direction: column;
        gap: 0.3rem;
        margin-top: 0.5rem;
        font-size: 0.85rem;
      }
      .overlay div {
        padding: 1.4rem 2rem;
        border-radius: 14px;
        border: 3px dashed var(--tm-accent);
        background: var(--tm-surface);
        color: var(--tm-accent);
        font-size: 1.3rem;
        font-weight: 700;
        box-shadow: var(--tm-shadow);
      }
    `,
  ];

  /** How the page is reloaded as a destination (tests replace it). */
  @property({ attribute: false }) navigate: Navigate = navigateTo;

  @state() private name = defaultName();
  @state() private saveOutcome: CommandOutcome | null = null;
  @state() private rowOutcome = new Map<string, CommandOutcome>();
  @state() private confirmDelete: string | null = null;
  @state() private dragging = false;
  @state() private importing: Import | null = null;
  /** navigator.storage.estimate(): what this origin uses and may use (IndexedDB included). */
  @state() private storage: { usage: number; quota: number } | null = null;
  private storageFor = '';
  @query('input[type=file]') private fileInput!: HTMLInputElement;

  private readonly snapshots = new SnapshotsController(this);
  /** A Save in progress: the guest runs on, as after QEMU's savevm, if it ran before. */
  @state() private saving: { name: string; wasRunning: boolean; done: boolean; error?: string; resumed?: boolean } | null = null;
  private readonly migration = new MigrationController(this, { onChange: () => this.followSave() });
  private readonly machine = new MachineController(this);
  private readonly qmp = new QmpController(this);
  private dragDepth = 0;

  override connectedCallback(): void {
    super.connectedCallback();
    // The whole page takes a dropped stream file, not only this panel.
    window.addEventListener('dragenter', this.onDragEnter);
    window.addEventListener('dragover', this.onDragOver);
    window.addEventListener('dragleave', this.onDragLeave);
    window.addEventListener('drop', this.onDrop);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('dragenter', this.onDragEnter);
    window.removeEventListener('dragover', this.onDragOver);
    window.removeEventListener('dragleave', this.onDragLeave);
    window.removeEventListener('drop', this.onDrop);
  }

  /** Re-reads the storage estimate whenever the list of snapshots changed. */
  protected override updated(): void {
    const key = (this.snapshots.service?.snapshots ?? []).map((s) => `${s.name}:${s.size}`).join();
    if (key === this.storageFor) return;
    this.storageFor = key;
    void navigator.storage?.estimate?.().then((e) => (this.storage = { usage: e.usage ?? 0, quota: e.quota ?? 0 }));
  }

  override render() {
    const store = this.snapshots.service;
    const list = store?.snapshots ?? [];
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Snapshots</h2>
        ${this.storage
          ? html`<span class="aside" data-storage title="navigator.storage.estimate(): this site's storage in use, and how much the browser lets it use"
              >${formatBytes(this.storage.usage)} used of ${formatBytes(this.storage.quota)}</span
            >`
          : nothing}
        <p class="hint">Migration streams saved in this browser (IndexedDB): QEMU's "migrate to a file".</p>
      </div>
      <div class="panel-body">
        <form class="save" @submit=${this.onSave}>
          <label for="snap-name">Save as</label>
          <span class="prefix">idb:</span>
          <input
            id="snap-name"
            spellcheck="false"
            autocomplete="off"
            aria-label="Snapshot name"
            .value=${this.name}
            @input=${(e: Event) => (this.name = (e.target as HTMLInputElement).value)}
          />
          <button
            class="primary"
            type="submit"
            ?disabled=${!this.name.trim() || this.saveOutcome?.pending || (this.saving !== null && !this.saving.done)}
            aria-label="Save a snapshot"
            title="QMP migrate {uri: idb:${this.name}}, then cont: the guest runs on, as after QEMU's savevm"
          >
            Save
          </button>
        </form>
        ${this.saving ? this.renderSaving() : renderOutcome(this.saveOutcome)}
        ${store?.error ? html`<p class="error-text" role="alert">${store.error}</p>` : nothing}
        ${list.length
          ? html`<ul aria-label="Saved snapshots">${list.map((s) => this.renderSnapshot(s))}</ul>`
          : html`<p class="empty">${store && !store.ready ? 'Reading the saved snapshots…' : 'No snapshots yet.'}</p>`}
        <div class="drop ${this.dragging ? 'over' : ''}">
          <button @click=${() => this.fileInput.click()} ?disabled=${this.importing !== null && !this.importing.finished} aria-label="Load a file… to import as a snapshot">Load a file…</button>
          <span>or drop a <code>.qemu</code> stream file anywhere on the page</span>
          <input type="file" accept=".qemu,application/octet-stream" @change=${this.onPick} />
          ${this.renderImport()}
        </div>
        <p class="explain">
          Restore loads a snapshot as an incoming migration: in a tab started with <code>?incoming=defer</code> by
          <code>migrate-incoming</code>, otherwise by reloading as <code>?incoming=idb:NAME</code> (same <code>-m</code>).
        </p>
      </div>
      ${this.dragging ? html`<div class="overlay" aria-hidden="true"><div>Drop a .qemu stream file to import it</div></div>` : nothing}
    </section>`;
  }

  /** The save as it goes (query-migrate's RAM figures), then what became of the guest. */
  private renderSaving() {
    const sv = this.saving!;
    const m = this.migration.service;
    if (sv.error) return html`<p class="feedback failed" role="alert">Saving idb:${sv.name}: <strong>${sv.error}</strong></p>`;
    if (sv.done) {
      return html`<p class="feedback" role="status" data-saved>
        ✓ Saved <code>idb:${sv.name}</code>.
        ${sv.wasRunning ? (sv.resumed ? 'The guest ran on (cont), as after QEMU’s savevm.' : 'The guest could not run on: see the event log.') : 'The guest stays stopped, as it was.'}
      </p>`;
    }
    const ram = m?.queryMigrate().ram;
    const total = ram?.total ?? 0;
    const copied = total ? Math.min(1, Math.max(0, (total - (ram?.remaining ?? total)) / total)) : 0;
    return html`<div class="saving" role="status" data-saving>
      <span>Saving <code>idb:${sv.name}</code>: ${Math.round(copied * 100)} % of RAM · ${formatBytes(ram?.transferred ?? 0)} written; the guest runs meanwhile</span>
      <span class="progress" role="progressbar" aria-label="Snapshot saved" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(copied * 100)}
        ><span style="width:${(copied * 100).toFixed(1)}%"></span
      ></span>
    </div>`;
  }

  /** Follows the save's migration; at its end runs the guest on if it ran before. */
  private followSave(): void {
    const sv = this.saving;
    const m = this.migration.service;
    if (!sv || sv.done || sv.error || !m || m.outgoingUri !== `idb:${sv.name}`) return;
    const st = m.outgoingStatus;
    if (st === 'failed' || st === 'cancelled') {
      this.saving = { ...sv, error: m.lastError ?? st };
    } else if (st === 'completed') {
      this.saving = { ...sv, done: true };
      if (sv.wasRunning) {
        void this.qmp.execute({ execute: 'cont' }).then((r) => {
          if (this.saving?.name === sv.name) this.saving = { ...this.saving, resumed: !r.error };
        });
      }
    }
  }

  private renderSnapshot(s: SnapshotInfo) {
    const confirming = this.confirmDelete === s.name;
    const fresh = this.importing?.finished && !this.importing.error && this.importing.name === s.name;
    return html`<li class="snap ${fresh ? 'fresh' : ''}" data-snapshot=${s.name}>
      <span class="what">
        <span class="snap-name">${s.name}</span>
        <span class="meta">${formatBytes(s.size)} · ${when(s.created)}</span>
      </span>
      <span class="buttons">
        <button class="restore" @click=${() => this.restore(s.name)} aria-label="Restore ${s.name}" title="Start this tab as the destination of idb:${s.name}">Restore</button>
        <button class="download" @click=${() => this.download(s.name)} aria-label="Download ${s.name}" title="Download the stream as ${s.name}.qemu">Download</button>
        <button
          class="danger ${confirming ? 'confirm' : ''}"
          @click=${() => this.deleteSnapshot(s.name)}
          @blur=${() => confirming && (this.confirmDelete = null)}
          aria-label=${confirming ? `Really delete? (${s.name})` : `Delete ${s.name}`}
          title="Delete this snapshot"
        >
          ${confirming ? 'Really delete?' : 'Delete'}
        </button>
      </span>
      ${renderOutcome(this.rowOutcome.get(s.name))}
    </li>`;
  }

  private renderImport() {
    const imp = this.importing;
    if (!imp) return nothing;
    if (imp.exists) {
      return html`<p class="feedback failed" role="alert">
        Importing ${imp.name}: <strong>${imp.error}</strong>
        <button class="danger replace-snapshot" @click=${() => this.replaceWithPending()}>Replace it</button>
        <button class="keep-snapshot" @click=${() => this.dropPending()}>Keep the old one</button>
      </p>`;
    }
    if (imp.error) return html`<p class="feedback failed" role="alert">Importing ${imp.name}: <strong>${imp.error}</strong></p>`;
    if (!imp.finished) {
      const pct = imp.total ? (imp.done / imp.total) * 100 : 0;
      const verb = imp.phase === 'checking' ? 'Checking' : 'Importing';
      return html`<span>${verb} <code>${imp.name}</code>: ${formatBytes(imp.done)} of ${formatBytes(imp.total)}</span>
        <span class="progress"><span style="width:${pct.toFixed(1)}%"></span></span>`;
    }
    return html`<span class="imported">
      <span>✓ Imported as <code>idb:${imp.name}</code> (${formatBytes(imp.total)})</span>
      <button class="primary restore-imported" @click=${() => this.restore(imp.name)} aria-label="Restore it: the imported ${imp.name}">Restore it</button>
    </span>`;
  }

  private setRow(name: string, o: CommandOutcome): void {
    this.rowOutcome = new Map(this.rowOutcome).set(name, o);
  }

  private async onSave(e: Event): Promise<void> {
    e.preventDefault();
    const name = this.name.trim();
    if (!name) return;
    const wasRunning = this.machine.service?.running ?? false;
    this.saving = null;
    const r = await runCommand(this.qmp, { execute: 'migrate', arguments: { uri: `idb:${name}` } }, (o) => (this.saveOutcome = o));
    if (!r.error) {
      this.saving = { name, wasRunning, done: false };
      this.followSave();
    }
  }

  private async restore(name: string): Promise<void> {
    const m = this.migration.service;
    if (m && isDeferredIncoming(m, this.machine.service?.runstate)) {
      await runCommand(this.qmp, { execute: 'migrate-incoming', arguments: { uri: `idb:${name}` } }, (o) => this.setRow(name, o));
      return;
    }
    this.navigate(incomingPageUrl(location.href, `idb:${name}`));
  }

  private async download(name: string): Promise<void> {
    const store = this.snapshots.service;
    if (!store) return;
    try {
      const blob = await store.exportBlob(name);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${name}.qemu`;
      a.style.display = 'none';
      this.renderRoot.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      this.setRow(name, { cmd: `download ${name}`, pending: false, error: { class: 'GenericError', desc: (e as Error).message } });
    }
  }

  private async deleteSnapshot(name: string): Promise<void> {
    if (this.confirmDelete !== name) {
      this.confirmDelete = name;
      return;
    }
    this.confirmDelete = null;
    try {
      await this.snapshots.service?.delete(name);
    } catch (e) {
      this.setRow(name, { cmd: `delete ${name}`, pending: false, error: { class: 'GenericError', desc: (e as Error).message } });
    }
  }

  private onPick(): void {
    const file = this.fileInput.files?.[0];
    this.fileInput.value = '';
    if (file) void this.importFile(file);
  }

  /**
   * Imports a stream file into IndexedDB as a snapshot named after it, once it is known to be a
   * stream this tab can load. A taken name is only replaced after the user says so (Replace it).
   */
  async importFile(file: File, options: { overwrite?: boolean } = {}): Promise<void> {
    const store = this.snapshots.service;
    if (!store) return;
    const name = snapshotNameForFile(file.name);
    this.pendingFile = null;
    this.importing = { name, done: 0, total: file.size, phase: 'checking', finished: false };
    try {
      const machine = this.machine.service;
      if (!machine) throw new Error('no machine to check the stream against');
      const info = await store.importBlob(name, file, {
        expect: { machineType: MACHINE_TYPE, ramSize: machine.ramSize },
        overwrite: options.overwrite ?? false,
        onProgress: (done, total, phase) => {
          this.importing = { name, done, total, phase, finished: false };
        },
      });
      this.importing = { name, done: info.size, total: info.size, phase: 'copying', finished: true };
    } catch (e) {
      const exists = e instanceof SnapshotExistsError;
      if (exists) this.pendingFile = file;
      this.importing = { name, done: 0, total: file.size, phase: 'checking', finished: true, error: (e as Error).message, exists };
    }
  }

  /** The file whose import waits for the user's answer on a taken name. */
  private pendingFile: File | null = null;

  private replaceWithPending(): void {
    const file = this.pendingFile;
    if (file) void this.importFile(file, { overwrite: true });
  }

  private dropPending(): void {
    this.pendingFile = null;
    this.importing = null;
  }

  private readonly onDragEnter = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    this.dragDepth++;
    this.dragging = true;
  };

  private readonly onDragOver = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  };

  private readonly onDragLeave = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    this.dragDepth = Math.max(0, this.dragDepth - 1);
    if (this.dragDepth === 0) this.dragging = false;
  };

  private readonly onDrop = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    this.dragDepth = 0;
    this.dragging = false;
    const file = e.dataTransfer?.files[0];
    if (file) void this.importFile(file);
  };
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-snapshots': TmSnapshots;
  }
}
