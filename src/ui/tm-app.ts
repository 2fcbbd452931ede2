import { provide } from '@lit/context';
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { RAM_SIZE_DEFAULT, RAM_SIZE_MAX, RAM_SIZE_MIN } from '../guest/memory-map.js';
import { PROGRAMS } from '../guest/programs.js';
import { compareContext } from './contexts/compare-context.js';
import { rearmContext } from './contexts/rearm-context.js';
import { createRearm, type Rearm } from './services/rearm.js';
import { historyContext } from './contexts/history-context.js';
import { machineContext } from './contexts/machine-context.js';
import { migrationContext } from './contexts/migration-context.js';
import { qmpContext } from './contexts/qmp-context.js';
import { snapshotsContext } from './contexts/snapshots-context.js';
import { CompareService } from './services/compare-service.js';
import { HistoryService, type HistoryView } from './services/history-service.js';
import { MachineService, type MachineLike, type ProgramInfo } from './services/machine-service.js';
import type { MigrationView } from './services/migration-view.js';
import type { QmpClient } from './services/qmp-client.js';
import { SnapshotService, type SnapshotsView } from './services/snapshot-service.js';
import { MigrationStartWatch } from './migration-start-watch.js';
import { tokens } from './styles/theme.js';
import './tm-capabilities.js';
import './tm-compare.js';
import './tm-controls.js';
import './tm-display.js';
import './tm-event-log.js';
import './tm-header.js';
import './tm-migrate-panel.js';
import './tm-migration-charts.js';
import './tm-memory-map.js';
import './tm-migration-status.js';
import './tm-parameters.js';
import './tm-peers.js';
import './tm-pairing.js';
import './tm-qmp-console.js';
import './tm-run-history.js';
import './tm-stream-inspector.js';
import './tm-serial.js';
import './tm-snapshots.js';
import './tm-status.js';

/**
 * The page: provides the machine, QMP, the migration service and the snapshot store to every
 * panel and lays them out. The guest (controls, display, serial console) on the left; the side
 * holds the migration panels and, last, the QMP monitor. On a wide screen the side splits in two:
 * the migration as it happens (migrate, live status, charts) next to the tabs, event log,
 * settings, snapshots and monitor, so a projected page shows the guest and the migration at once.
 */
@customElement('tm-app')
export class TmApp extends LitElement {
  static override styles = [
    tokens,
    css`
      :host {
        display: grid;
        grid-template-rows: auto auto minmax(0, 1fr) auto;
        grid-template-areas: 'header' 'banner' 'main' 'status';
        height: 100vh;
        height: 100dvh;
        background: var(--tm-bg);
        color: var(--tm-text);
        font-family: var(--tm-font);
        font-size: 16px;
        line-height: 1.4;
      }
      * {
        box-sizing: border-box;
      }
      tm-header {
        grid-area: header;
      }
      .banner {
        grid-area: banner;
      }
      main {
        grid-area: main;
        display: grid;
        grid-template-columns: minmax(0, 1.6fr) minmax(22rem, 1fr);
        gap: 1rem;
        padding: 1rem 1.25rem;
        min-height: 0;
      }
      .column {
        display: flex;
        flex-direction: column;
        gap: 1rem;
        min-height: 0;
        min-width: 0;
        overflow: auto;
      }
      tm-status {
        grid-area: status;
      }
      tm-controls {
        flex: none;
      }
      /* The picture takes the room there is; with the display off, the serial console does. */
      tm-display {
        flex: 3 1 0;
        min-height: 17rem;
      }
      tm-display[off] {
        flex: none;
        min-height: 0;
      }
      tm-serial {
        flex: 1 1 0;
        min-height: 10rem;
      }
      tm-qmp-console {
        flex: 1 1 20rem;
        min-height: 20rem;
      }
      /*
       * The side: one scrolling column of panels (tabs first), or on a wide screen two columns,
       * the migration as it happens next to the tabs, log, settings and monitor.
       */
      .sides {
        display: flex;
        flex-direction: column;
        gap: 1rem;
        min-height: 0;
        min-width: 0;
        overflow: auto;
      }
      .sides > .column {
        display: contents;
      }
      .sides tm-peers {
        order: -1;
      }
      .sides > * > :not(tm-qmp-console),
      .stage > * {
        flex: none;
      }
      @media (min-width: 1400px) and (min-height: 641px) {
        main {
          grid-template-columns: minmax(0, 1.2fr) minmax(0, 1.1fr) minmax(0, 1fr);
        }
        .sides {
          display: contents;
        }
        .sides > .column {
          display: flex;
          overflow: auto;
        }
        .sides tm-peers {
          order: 0;
        }
      }
      /*
       * The migration view: while a migration runs (and after, until the person turns back), the
       * guest keeps a narrow column and the migration takes the rest, in two columns: the memory
       * map beside the status and the rounds (the timeline at their top), all without scrolling at
       * 1366x768; the live query-migrate fields, the inspector and Compare below them, then the
       * tools (a column of their own on a wide screen).
       */
      :host([view='migration']) main {
        grid-template-columns: minmax(0, 0.72fr) minmax(0, 2fr);
      }
      :host([view='migration']) .sides {
        display: flex;
      }
      .stage {
        display: contents;
      }
      :host([view='migration']) .sides > .migration {
        display: block;
        overflow: visible;
        flex: none;
      }
      :host([view='migration']) .stage {
        display: grid;
        grid-template-columns: minmax(0, 1fr) minmax(0, 1.2fr);
        grid-template-rows: auto auto minmax(0, 1fr) auto auto auto;
        align-items: start;
        gap: 1rem;
      }
      :host([view='migration']) .sides > .tools {
        display: contents;
      }
      :host([view='migration']) .sides tm-peers {
        order: 0;
      }
      :host([view='migration']) tm-memory-map {
        grid-column: 1;
        grid-row: 1 / span 3;
      }
      :host([view='migration']) tm-migrate-panel {
        grid-column: 2;
        grid-row: 1;
      }
      :host([view='migration']) tm-migration-charts {
        grid-column: 2;
        grid-row: 2 / span 2;
      }
      :host([view='migration']) tm-migration-status,
      :host([view='migration']) tm-stream-inspector,
      :host([view='migration']) tm-compare {
        grid-column: 1 / -1;
      }
      @media (min-width: 1700px) and (min-height: 641px) {
        :host([view='migration']) main {
          grid-template-columns: minmax(0, 0.7fr) minmax(0, 2fr) minmax(0, 0.85fr);
        }
        :host([view='migration']) .sides {
          display: contents;
        }
        :host([view='migration']) .sides > .migration {
          overflow: auto;
          min-height: 0;
          max-height: 100%;
        }
        :host([view='migration']) .sides > .tools {
          display: flex;
          overflow: auto;
        }
      }
      .views {
        display: inline-flex;
        border: 1px solid #3a4660;
        border-radius: 8px;
        overflow: hidden;
      }
      .views button {
        font: inherit;
        font-size: 0.85rem;
        font-weight: 560;
        padding: 0.3rem 0.75rem;
        border: 0;
        background: transparent;
        color: #c9d2e3;
        cursor: pointer;
      }
      .views button + button {
        border-left: 1px solid #3a4660;
      }
      .views button[aria-pressed='true'] {
        background: #8ea2ff;
        color: #10162a;
      }
      .views button:focus-visible {
        outline: 3px solid #8ea2ff;
        outline-offset: -3px;
      }
      .banner {
        display: flex;
        gap: 0.9rem;
        align-items: flex-start;
        margin: 1rem 1.25rem 0;
        padding: 0.9rem 1.1rem;
        border-radius: var(--tm-radius);
        border: 1px solid #f1a9a9;
        border-left: 6px solid var(--tm-danger);
        background: var(--tm-danger-soft);
        color: #5c1111;
      }
      .banner svg {
        flex: none;
        width: 1.6rem;
        height: 1.6rem;
        color: var(--tm-danger);
      }
      .banner h2 {
        margin: 0 0 0.2rem;
        font-size: 1.05rem;
        color: var(--tm-danger);
      }
      .banner .message {
        margin: 0;
        font-family: var(--tm-mono);
        font-size: 0.95rem;
        overflow-wrap: anywhere;
      }
      .banner .help {
        margin: 0.5rem 0 0;
        font-size: 0.9rem;
        color: #6b2a2a;
      }
      .banner a {
        color: inherit;
        font-weight: 600;
      }
      .banner code {
        white-space: nowrap;
        font-family: var(--tm-mono);
        background: rgb(255 255 255 / 60%);
        padding: 0 0.3em;
        border-radius: 4px;
      }
      /* Short or narrow screens: one scrolling page instead of fixed columns. */
      @media (max-width: 980px), (max-height: 640px) {
        :host {
          height: auto;
          min-height: 100vh;
        }
        main,
        :host([view='migration']) main {
          grid-template-columns: minmax(0, 1fr);
        }
        :host([view='migration']) .stage {
          grid-template-columns: minmax(0, 1fr);
        }
        :host([view='migration']) .stage > * {
          grid-column: 1;
          grid-row: auto;
        }
        .column,
        .sides,
        .sides > .column {
          overflow: visible;
        }
      }
    `,
  ];

  /** The machine this tab runs (a Machine from src/guest/machine.ts). Unset if startup failed. */
  @property({ attribute: false }) machine?: MachineLike;
  /** QMP for this tab: every button goes through it. */
  @property({ attribute: false }) qmp?: QmpClient;
  /** The built-in programs the picker offers. */
  @property({ attribute: false }) programs: readonly ProgramInfo[] = PROGRAMS;
  /** This tab's name (`?name=`), shown in the header and the window title. */
  @property({ attribute: 'vm-name' }) vmName = '';
  /** This tab's peer id, once signaling gave it one. */
  @property({ attribute: 'peer-id' }) peerId = '';
  /** Why the machine could not start (e.g. a bad `?m=`): shown in a banner instead of a blank page. */
  @property({ attribute: 'startup-error' }) startupError = '';
  /** The migration service (src/migration/migration-service.ts): the migration panels read it. */
  @property({ attribute: false }) migration?: MigrationView;
  /** Saved snapshots; by default this browser's IndexedDB store, opened once a panel shows them. */
  @property({ attribute: false }) snapshots?: SnapshotsView;

  @provide({ context: machineContext }) @state() protected service?: MachineService;
  @provide({ context: qmpContext }) @state() protected qmpClient?: QmpClient;
  @provide({ context: migrationContext }) @state() protected migrationService?: MigrationView;
  @provide({ context: snapshotsContext }) @state() protected snapshotStore?: SnapshotsView;
  @provide({ context: historyContext }) @state() protected historyStore?: HistoryView;
  @provide({ context: compareContext }) @state() protected compareService?: CompareService;
  @provide({ context: rearmContext }) @state() protected rearm?: Rearm;
  /** Run history; by default this browser's IndexedDB store. */
  @property({ attribute: false }) history?: HistoryService;

  /**
   * Which layout the page shows: the overview (guest, migration panels, tools), or the migration
   * view, which a starting migration turns to and the header's switch turns back.
   */
  @property({ reflect: true }) view: 'overview' | 'migration' = 'overview';
  private readonly startWatch = new MigrationStartWatch();
  private watched?: MigrationView;
  private readonly onMigrationChange = () => {
    if (!this.watched || !this.startWatch.began(this.watched)) return;
    this.view = 'migration';
    // The migration's panels from their top, wherever the person had scrolled the side to.
    void this.updateComplete.then(() => {
      for (const el of this.renderRoot.querySelectorAll('.sides, .migration')) el.scrollTop = 0;
    });
  };

  private defaultHistory?: HistoryService;
  private unwatchHistory?: () => void;

  private defaultSnapshots?: SnapshotService;
  private readonly titleUpdate = () => this.updateTitle();

  override connectedCallback(): void {
    super.connectedCallback();
    this.service?.subscribe(this.titleUpdate);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.service?.unsubscribe(this.titleUpdate);
    this.watchMigration(undefined);
  }

  private watchMigration(m: MigrationView | undefined): void {
    this.watched?.removeEventListener('change', this.onMigrationChange);
    this.watched = m;
    m?.addEventListener('change', this.onMigrationChange);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('machine') || changed.has('programs')) {
      this.service?.unsubscribe(this.titleUpdate);
      this.service = this.machine ? new MachineService(this.machine, this.programs) : undefined;
      if (this.isConnected) this.service?.subscribe(this.titleUpdate);
    }
    if (changed.has('qmp')) this.qmpClient = this.qmp;
    if (changed.has('migration')) {
      this.migrationService = this.migration;
      this.watchMigration(this.migration);
    }
    if (changed.has('snapshots') || changed.has('migration')) {
      this.snapshotStore = this.snapshots ?? (this.migration ? (this.defaultSnapshots ??= new SnapshotService()) : undefined);
    }
    if (changed.has('history') || changed.has('migration')) {
      this.unwatchHistory?.();
      const history = this.history ?? (this.migration ? (this.defaultHistory ??= new HistoryService()) : undefined);
      this.historyStore = history;
      this.unwatchHistory = history && this.migration ? history.watch(this.migration) : undefined;
    }
    if ((changed.has('qmp') || changed.has('migration') || changed.has('history')) && this.qmp && this.migration) {
      this.compareService?.close();
      const m = this.migration;
      this.compareService = new CompareService(this.qmp, this.history ?? this.defaultHistory, () => m.signaling?.id ?? '');
      // A tab reloaded by Compare as its destination arms itself and reports back.
      const hash = new URLSearchParams(location.hash.slice(1));
      if (hash.has('compare')) void this.compareService.armFromUrl(hash);
      this.rearm?.close();
      this.rearm = createRearm(this.qmp, m, () => this.service?.runstate);
    }
    if (changed.has('vmName')) this.updateTitle();
  }

  /** With two tabs open, the tab strip tells them apart: name and runstate. */
  private updateTitle(): void {
    const parts = [this.vmName, this.service?.runstate].filter(Boolean);
    document.title = parts.length ? `${parts.join(' · ')} — tabmig` : 'tabmig — live migration between tabs';
  }

  override render() {
    return html`
      <tm-header .vmName=${this.vmName} .peerId=${this.peerId}>
        ${this.migrationService ? this.renderViewSwitch() : nothing}
      </tm-header>
      ${this.startupError ? this.renderError() : nothing}
      ${this.service
        ? html`<main>
              <section class="column guest" aria-label="Guest">
                <tm-controls></tm-controls>
                <tm-display></tm-display>
                <tm-serial></tm-serial>
              </section>
              <div class="sides">
                ${this.migrationService
                  ? html`<section class="column side migration" aria-label="Migration">
                      <div class="stage">
                        <tm-migrate-panel ?compact=${this.view === 'migration'}></tm-migrate-panel>
                        <tm-migration-status></tm-migration-status>
                        <tm-memory-map ?compact=${this.view === 'migration'}></tm-memory-map>
                        <tm-migration-charts ?compact=${this.view === 'migration'}></tm-migration-charts>
                        <tm-stream-inspector></tm-stream-inspector>
                        <tm-compare></tm-compare>
                      </div>
                    </section>`
                  : nothing}
                <aside class="column side tools" aria-label="Tabs, events, settings and monitor">
                  ${this.migrationService
                    ? html`<tm-peers></tm-peers>
                        <tm-pairing></tm-pairing>
                        <tm-event-log></tm-event-log>
                        <tm-capabilities></tm-capabilities>
                        <tm-parameters></tm-parameters>
                        <tm-snapshots></tm-snapshots>
                        <tm-run-history></tm-run-history>`
                    : nothing}
                  <tm-qmp-console></tm-qmp-console>
                </aside>
              </div>
            </main>
            <tm-status></tm-status>`
        : nothing}
    `;
  }

  private renderViewSwitch() {
    const choose = (view: 'overview' | 'migration') => () => (this.view = view);
    return html`<span class="views" role="group" aria-label="Layout">
      <button type="button" aria-pressed=${this.view === 'overview'} @click=${choose('overview')} title="The guest, the migration panels and the tools">Overview</button>
      <button type="button" aria-pressed=${this.view === 'migration'} @click=${choose('migration')} title="The memory map, the rounds and the timeline on one screen (a starting migration turns to it)">
        Migration view
      </button>
    </span>`;
  }

  private renderError() {
    return html`<div class="banner" role="alert">
      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true">
        <path d="M12 3 2 20h20z" stroke-linejoin="round" />
        <path d="M12 10v4M12 17.5v.01" />
      </svg>
      <div>
        <h2>${this.machine ? 'Something went wrong while starting this tab' : 'This tab could not start its machine'}</h2>
        <p class="message">${this.startupError}</p>
        <p class="help">
          The address takes QEMU-style options: <code>m=SIZE</code> guest RAM (${RAM_SIZE_MIN >> 20}M to ${RAM_SIZE_MAX >> 30}G,
          default ${RAM_SIZE_DEFAULT >> 20}M), <code>S</code> start paused, <code>name=NAME</code> this tab's name,
          <code>incoming=defer</code> wait for a migration; for example
          <a href="?m=256M&amp;name=alice&amp;S"><code>?m=256M&amp;name=alice&amp;S</code></a>.
          Fix the address and reload, or <a href=${location.pathname}>start with the defaults</a>.
        </p>
      </div>
    </div>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-app': TmApp;
  }
}
