import { ContextConsumer } from '@lit/context';
import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, state } from 'lit/decorators.js';
import { rearmContext } from './contexts/rearm-context.js';
import { convergenceState, raisedDowntimeLimit } from './convergence-state.js';
import { RoundsController } from './controllers/rounds-controller.js';
import { formatBytes, formatTime } from './format.js';
import { SLOW_MOTION_BANDWIDTH, isSlowMotion, normalBandwidth } from './slow-motion.js';
import { MachineController } from './controllers/machine-controller.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { SnapshotsController } from './controllers/snapshots-controller.js';
import { STOP_AND_COPY, phaseSteps, phaseText } from './migration-phases.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { currentDirection, currentStatus, isSetupOrActive } from './services/migration-view.js';
import type { QmpCommand } from './services/qmp-client.js';
import { chipStyles, migrationStatusTone, panelStyles, toneStyles } from './styles/theme.js';
import './tm-migration-badge.js';
import './tm-postcopy-controls.js';

interface Suggestion {
  uri: string;
  label: string;
  title: string;
}

function snapshotName(): string {
  return `snap-${formatTime(Date.now()).replace(/:/g, '').slice(0, 4)}`;
}

/**
 * The migration itself: where to (a destination URI), Migrate / Cancel / Continue as QMP's
 * migrate, migrate_cancel and migrate-continue, and the current MigrationStatus as a big pill with
 * what that phase means.
 */
@customElement('tm-migrate-panel')
export class TmMigratePanel extends LitElement {
  static override styles = [
    panelStyles,
    toneStyles,
    feedbackStyles,
    chipStyles,
    css`
      .status {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.9rem;
        padding: 0.8rem 0.9rem;
        border-radius: 10px;
        background: var(--tone-soft);
        border: 1px solid color-mix(in srgb, var(--tone) 28%, transparent);
      }
      .status tm-migration-badge {
        font-size: 1.45rem;
      }
      .direction {
        font-size: 0.78rem;
        text-transform: uppercase;
        letter-spacing: 0.07em;
        color: var(--tm-muted);
        font-weight: 650;
      }
      .phase {
        flex-basis: 100%;
        margin: 0;
        font-size: 0.98rem;
        line-height: 1.4;
        color: var(--tm-text);
      }
      .phase b {
        font-family: var(--tm-mono);
        color: var(--tone);
      }
      .error-desc {
        flex-basis: 100%;
        margin: 0;
        padding: 0.45rem 0.6rem;
        border-radius: 6px;
        background: var(--tm-surface);
        color: var(--tm-danger);
        font-family: var(--tm-mono);
        font-size: 0.88rem;
        overflow-wrap: anywhere;
      }
      .error-desc .key {
        color: var(--tm-muted);
      }
      ol.steps {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.3rem;
        margin: 0;
        padding: 0;
        list-style: none;
        flex-basis: 100%;
        font-family: var(--tm-mono);
        font-size: 0.8rem;
      }
      .steps li {
        display: inline-flex;
        align-items: center;
        gap: 0.3rem;
        color: var(--tm-muted);
      }
      .steps li + li::before {
        content: '→';
        color: #a3adbb;
      }
      .steps .step {
        padding: 0.1rem 0.5rem;
        border-radius: 999px;
        border: 1px solid var(--tm-border);
        background: var(--tm-surface);
      }
      .steps .done .step {
        color: var(--tm-text);
        border-color: #b9c2ce;
      }
      .steps .now .step {
        color: #fff;
        background: var(--tone);
        border-color: var(--tone);
        font-weight: 700;
      }
      .blocker {
        margin: 0.6rem 0 0;
        padding: 0.45rem 0.6rem;
        border-radius: 6px;
        background: var(--tm-warn-soft);
        color: #8a4b00;
        font-size: 0.9rem;
      }
      .uri {
        display: flex;
        gap: 0.5rem;
        align-items: center;
        margin-top: 0.9rem;
      }
      .uri label {
        font-size: 0.85rem;
        color: var(--tm-muted);
        font-weight: 560;
        white-space: nowrap;
      }
      .uri input {
        flex: 1 1 auto;
        font-family: var(--tm-mono);
        font-size: 1rem;
      }
      .uri button.primary {
        font-size: 1rem;
        padding: 0.5rem 1.1rem;
      }
      .suggest {
        display: flex;
        flex-wrap: wrap;
        gap: 0.35rem;
        margin-top: 0.5rem;
      }
      .chip {
        padding: 0.2rem 0.6rem;
      }
      .chip.waiting {
        background: var(--tm-ok-soft);
        color: var(--tm-ok);
      }
      .actions {
        display: flex;
        gap: 0.4rem;
        margin-left: auto;
      }
      button.danger:not(:disabled) {
        color: var(--tm-danger);
        border-color: #f1a9a9;
      }
      button.danger:hover:not(:disabled) {
        background: var(--tm-danger-soft);
        border-color: var(--tm-danger);
      }
      button.go:not(:disabled) {
        background: var(--tm-warn);
        border-color: var(--tm-warn);
        color: #fff;
      }
      :host([compact]) .panel-head .hint {
        display: none;
      }
      .slow {
        display: flex;
        align-items: center;
        gap: 0.5rem;
        margin-top: 0.6rem;
        font-size: 0.88rem;
        color: var(--tm-muted);
        cursor: pointer;
      }
      .slow b {
        color: var(--tm-text);
      }
      .slow input {
        width: 1.05rem;
        height: 1.05rem;
        margin: 0;
        accent-color: var(--tm-accent);
      }
      .banner {
        margin-top: 0.6rem;
        padding: 0.6rem 0.75rem;
        border-radius: 8px;
        border: 1px solid #f0c36d;
        border-left: 5px solid var(--tm-warn);
        background: var(--tm-warn-soft);
        color: #5a3300;
        font-size: 0.9rem;
      }
      .banner h3 {
        margin: 0 0 0.2rem;
        font-size: 0.95rem;
        color: #7a4100;
      }
      .banner p {
        margin: 0 0 0.45rem;
      }
      .remedies {
        display: flex;
        flex-wrap: wrap;
        gap: 0.35rem;
      }
      .remedies button {
        font-size: 0.84rem;
        padding: 0.3rem 0.65rem;
        white-space: normal;
        text-align: left;
      }
      .note {
        margin: 0.6rem 0 0;
        padding: 0.5rem 0.7rem;
        border-radius: 8px;
        background: var(--tm-surface-2);
        border: 1px solid var(--tm-border);
        font-size: 0.9rem;
      }
      .note button {
        margin-top: 0.4rem;
      }
    `,
  ];

  /** The migration view: the panel drops its explanation to leave room for the map and rounds. */
  @property({ type: Boolean, reflect: true }) compact = false;
  @state() private uri = '';
  @state() private migrateOutcome: CommandOutcome | null = null;
  @state() private actionOutcome: CommandOutcome | null = null;
  /** What a remedy button is doing (or why it stopped). */
  @state() private remedyStep: { text: string; error?: boolean } | null = null;
  /** max-bandwidth before slow motion was switched on. */
  private bandwidthBefore: number | null = null;

  private readonly migration = new MigrationController(this);
  private readonly machine = new MachineController(this);
  private readonly snapshots = new SnapshotsController(this);
  private readonly qmp = new QmpController(this);
  private readonly rounds = new RoundsController(this);
  private readonly rearm = new ContextConsumer(this, { context: rearmContext, subscribe: true });

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const out = m.outgoingStatus;
    const running = isSetupOrActive(out) || out === 'cancelling';
    const runstate = this.machine.service?.runstate;
    const incoming = currentDirection(m, runstate) === 'incoming';
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Migrate</h2>
        <p class="hint">Sends this running machine to a destination: QMP <code>migrate</code>, <code>migrate_cancel</code>, <code>migrate-continue</code>.</p>
      </div>
      <div class="panel-body">
        ${this.renderStatus()}
        ${renderOutcome(this.actionOutcome)}
        ${out === 'active' ? this.renderConvergence() : nothing}
        ${this.renderAfter(runstate)}
        ${m.activeBlockers.length ? html`<p class="blocker" role="status">Migration is blocked: ${m.activeBlockers.join('; ')}</p>` : nothing}
        ${running || incoming || this.spent(runstate) ? nothing : this.renderForm()}
        ${incoming ? nothing : this.renderSlowMotion()}
      </div>
    </section>`;
  }

  /** The destination, Migrate and the suggestions: only while this tab has a guest it may send. */
  private renderForm() {
    return html`<form class="uri" @submit=${this.onMigrate}>
        <label for="uri">Destination</label>
        <input
          id="uri"
          name="uri"
          list="uris"
          autocomplete="off"
          spellcheck="false"
          placeholder="webrtc:PEER · idb:NAME · file:NAME.qemu"
          aria-label="Destination URI"
          .value=${this.uri}
          @input=${(e: Event) => (this.uri = (e.target as HTMLInputElement).value)}
        />
        <datalist id="uris">${this.suggestions().map((s) => html`<option value=${s.uri}>${s.title}</option>`)}</datalist>
        <button class="primary migrate" type="submit" ?disabled=${this.uri.trim() === ''} title="QMP migrate to the destination URI">Migrate</button>
      </form>
      <div class="suggest" role="group" aria-label="Suggested destinations">
        ${this.suggestions().map(
          (s) => html`<button class="chip ${s.uri.startsWith('webrtc:') ? 'waiting' : ''}" title=${s.title} aria-label="Destination ${s.label}" @click=${() => (this.uri = s.uri)}>${s.label}</button>`,
        )}
      </div>
      ${renderOutcome(this.migrateOutcome)}`;
  }

  /** Slow motion: max-bandwidth low, live, so a class can watch the rounds. */
  private renderSlowMotion() {
    const bw = this.migration.service!.options.queryParameters()['max-bandwidth'];
    const on = isSlowMotion(bw);
    return html`<label class="slow" title="Sets max-bandwidth (QMP migrate-set-parameters), live: each round then takes seconds">
      <input type="checkbox" role="switch" .checked=${on} @change=${(e: Event) => this.slowMotion((e.target as HTMLInputElement).checked)} />
      <span><b>Slow motion</b>: max-bandwidth ${formatBytes(SLOW_MOTION_BANDWIDTH)}/s${on ? '' : ` (now ${typeof bw === 'number' ? `${formatBytes(bw)}/s` : bw})`}</span>
    </label>`;
  }

  private async slowMotion(on: boolean): Promise<void> {
    const bw = this.migration.service?.options.queryParameters()['max-bandwidth'];
    if (on && typeof bw === 'number') this.bandwidthBefore = bw;
    const value = on ? SLOW_MOTION_BANDWIDTH : normalBandwidth(this.bandwidthBefore);
    await this.act({ execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': value } });
  }

  /**
   * The migration thread found that the rounds do not shrink: say so here, by Migrate, with the
   * remedies as buttons, each doing what it says.
   */
  private renderConvergence() {
    const m = this.migration.service!;
    const state = convergenceState(m.log);
    if (!state?.stuck) return nothing;
    const caps = Object.fromEntries(m.options.queryCapabilities().map((c) => [c.capability, c.state]));
    const limit = Number(m.options.queryParameters()['downtime-limit']);
    const records = this.rounds.records;
    const raised = raisedDowntimeLimit(records[records.length - 1], limit);
    const busy = this.remedyStep !== null && !this.remedyStep.error && !this.remedyStep.text.startsWith('Done');
    return html`<div class="banner" role="alert" data-convergence>
      <h3>Not converging</h3>
      <p>${state.why} Each round finds about as much dirty again as it sends.</p>
      <div class="remedies" role="group" aria-label="Remedies">
        <button ?disabled=${busy} @click=${() => this.act({ execute: 'migrate-set-parameters', arguments: { 'downtime-limit': raised } })} title="QMP migrate-set-parameters downtime-limit, live: accept a longer stop">
          Raise downtime-limit to ${raised} ms
        </button>
        ${caps['postcopy-ram']
          ? html`<button ?disabled=${busy} @click=${() => this.act({ execute: 'migrate-start-postcopy' })} title="QMP migrate-start-postcopy: the guest moves now; the rest of RAM follows on demand">Start postcopy now</button>`
          : html`<button ?disabled=${busy} @click=${() => this.again(['postcopy-ram'], ['postcopy-ram'])} title="migrate_cancel; postcopy-ram on in both tabs; migrate; then Start postcopy">Migrate again with postcopy</button>`}
        ${caps['auto-converge']
          ? nothing
          : html`<button ?disabled=${busy} @click=${() => this.again(['auto-converge'], [])} title="migrate_cancel; migrate-set-capabilities auto-converge; migrate again (QEMU changes capabilities only between migrations)">
              Migrate again with auto-converge
            </button>`}
        ${caps['xbzrle']
          ? nothing
          : html`<button ?disabled=${busy} @click=${() => this.again(['xbzrle'], [])} title="migrate_cancel; migrate-set-capabilities xbzrle; migrate again">Migrate again with XBZRLE</button>`}
      </div>
      ${this.remedyStep ? html`<p class=${this.remedyStep.error ? 'error-text' : 'hint'} role="status">${this.remedyStep.text}</p>` : nothing}
    </div>`;
  }

  private async again(capabilities: string[], destination: string[]): Promise<void> {
    const rearm = this.rearm.value;
    if (!rearm) return;
    try {
      await rearm.migrateAgainWith(capabilities, destination, (text) => (this.remedyStep = { text }));
      this.remedyStep = { text: `Done: migrating again with ${capabilities.join(', ')} on.` };
      if (destination.includes('postcopy-ram')) this.remedyStep = { text: 'Migrating again with postcopy-ram on in both tabs: press Start postcopy when you like.' };
    } catch (e) {
      this.remedyStep = { text: e instanceof Error ? e.message : String(e), error: true };
    }
  }

  /** After the guest left: what is true now, and what can be done (continue after a save). */
  private renderAfter(runstate: string | undefined) {
    const m = this.migration.service!;
    if (m.outgoingStatus !== 'completed' || runstate !== 'postmigrate') return nothing;
    const uri = m.outgoingUri ?? '';
    if (uri.startsWith('idb:') || uri.startsWith('file:')) {
      return html`<div class="note" data-after-save>
        Saved to <code>${uri}</code>. Like QEMU after <code>migrate</code> to a file, the guest here waits stopped (postmigrate); the Snapshots
        panel's Save runs it on by itself, as <code>savevm</code> does.
        <div><button class="run" @click=${() => this.act({ execute: 'cont' })} title="QMP cont">Continue the guest here</button></div>
      </div>`;
    }
    return html`<p class="note" data-after-migrate>The guest now runs in the destination; this copy is spent. Load a program (Machine) to start afresh here.</p>`;
  }

  /** A guest that went to another tab: nothing here to migrate until a program is loaded. */
  private spent(runstate: string | undefined): boolean {
    const m = this.migration.service!;
    const uri = m.outgoingUri ?? '';
    return m.outgoingStatus === 'completed' && runstate === 'postmigrate' && !uri.startsWith('idb:') && !uri.startsWith('file:');
  }

  private renderStatus() {
    const m = this.migration.service!;
    const runstate = this.machine.service?.runstate;
    const direction = currentDirection(m, runstate);
    const status = currentStatus(m, runstate);
    const tone = migrationStatusTone(status);
    const pause = m.options.queryCapabilities().some((c) => c.capability === 'pause-before-switchover' && c.state);
    let steps = phaseSteps(direction, pause || status === 'pre-switchover' || status === 'device');
    // A migration that ends badly ends there, instead of at completed.
    const ended = status === 'failed' || status === 'cancelling' || status === 'cancelled';
    if (ended) steps = [...steps.slice(0, -1), status];
    const at = steps.indexOf(status);
    let text = phaseText(status, direction);
    if (direction === 'incoming' && status === 'completed' && runstate === 'paused') {
      text = 'completed: the whole machine arrived; it waits paused (this tab was started with -S): press Run.';
    } else if (direction === 'outgoing' && status === 'active' && runstate === 'finish-migrate') {
      text = STOP_AND_COPY;
    }
    const colon = text.indexOf(':');
    return html`<div class="status tone-${tone}" role="status" aria-live="polite">
      <span class="direction">${direction === 'incoming' ? 'Incoming' : 'Outgoing'}</span>
      <tm-migration-badge .status=${status}></tm-migration-badge>
      ${direction === 'outgoing' ? this.renderActions() : nothing}
      <tm-postcopy-controls></tm-postcopy-controls>
      <ol class="steps" aria-label="Phases">
        ${steps.map((s, i) => {
          // After a failure we do not know how far it got: only the end is marked.
          const cls = s === status ? 'now' : at > i && !ended ? 'done' : '';
          return html`<li class=${cls}><span class="step">${s}</span></li>`;
        })}
        ${at < 0 && status !== 'none' ? html`<li class="now"><span class="step">${status}</span></li>` : nothing}
      </ol>
      <p class="phase"><b>${text.slice(0, colon)}</b>${text.slice(colon)}</p>
      ${status === 'failed' && m.lastError ? html`<p class="error-desc"><span class="key">error-desc:</span> ${m.lastError}</p>` : nothing}
      ${direction === 'incoming' && status === 'setup' ? this.renderRefusal() : nothing}
    </div>`;
  }

  /** A waiting destination: the last source it refused since it began to wait, and why. */
  private renderRefusal() {
    const log = this.migration.service!.log;
    for (let i = log.length - 1; i >= 0; i--) {
      const text = log[i]!.text;
      if (text === 'incoming migration setup') return nothing;
      const m = /^incoming connection from '([^']*)' refused: (.*)$/.exec(text);
      if (m) return html`<p class="error-desc" data-refused><span class="key">refused ${m[1]}:</span> ${m[2]}</p>`;
    }
    return nothing;
  }

  /** Cancel while there is something to cancel; Continue only where pause-before-switchover is on. */
  private renderActions() {
    const m = this.migration.service!;
    const out = m.outgoingStatus;
    const pause = m.options.queryCapabilities().some((c) => c.capability === 'pause-before-switchover' && c.state);
    const cancellable = isSetupOrActive(out);
    return html`<span class="actions">
      ${cancellable
        ? html`<button class="danger cancel" @click=${() => this.act({ execute: 'migrate_cancel' })} title="QMP migrate_cancel: the guest keeps running here">
            Cancel migration
          </button>`
        : nothing}
      ${(pause && cancellable) || out === 'pre-switchover'
        ? html`<button
            class="go continue"
            ?disabled=${out !== 'pre-switchover'}
            @click=${() => this.act({ execute: 'migrate-continue', arguments: { state: 'pre-switchover' } })}
            title="QMP migrate-continue {state: pre-switchover}: only in pre-switchover (capability pause-before-switchover)"
          >
            Continue to switchover
          </button>`
        : nothing}
    </span>`;
  }

  private suggestions(): Suggestion[] {
    const m = this.migration.service;
    const out: Suggestion[] = [];
    const peers = m?.signaling?.peers ?? [];
    for (const p of [...peers].sort((a, b) => Number(b.incoming) - Number(a.incoming))) {
      out.push({
        uri: `webrtc:${p.id}`,
        label: `webrtc:${p.id}${p.name && p.name !== `Tab ${p.id}` ? ` (${p.name})` : ''}`,
        title: p.incoming ? `${p.name}: waiting for an incoming migration` : `${p.name}: not waiting (press "Receive a migration" there first)`,
      });
    }
    const snaps = this.snapshots.service?.snapshots ?? [];
    out.push({ uri: `idb:${snapshotName()}`, label: 'idb:… new snapshot', title: 'Save into IndexedDB in this browser' });
    for (const s of snaps.slice(0, 3)) out.push({ uri: `idb:${s.name}`, label: `idb:${s.name}`, title: 'Overwrite this snapshot' });
    out.push({ uri: `file:${snapshotName()}.qemu`, label: 'file:….qemu download', title: 'Save the stream as a file you download' });
    return out;
  }

  private async onMigrate(e: Event): Promise<void> {
    e.preventDefault();
    const uri = this.uri.trim();
    if (!uri) return;
    this.actionOutcome = null;
    await runCommand(this.qmp, { execute: 'migrate', arguments: { uri } }, (o) => (this.migrateOutcome = o));
  }

  private async act(cmd: QmpCommand): Promise<void> {
    await runCommand(this.qmp, cmd, (o) => (this.actionOutcome = o));
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migrate-panel': TmMigratePanel;
  }
}
