import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
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
  const d = new Date();
  return `snap-${String(d.getHours()).padStart(2, '0')}${String(d.getMinutes()).padStart(2, '0')}`;
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
    `,
  ];

  @state() private uri = '';
  @state() private migrateOutcome: CommandOutcome | null = null;
  @state() private actionOutcome: CommandOutcome | null = null;

  private readonly migration = new MigrationController(this);
  private readonly machine = new MachineController(this);
  private readonly snapshots = new SnapshotsController(this);
  private readonly qmp = new QmpController(this);

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const out = m.outgoingStatus;
    const running = isSetupOrActive(out) || out === 'cancelling';
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Migrate</h2>
        <p class="hint">Sends this running machine to a destination: QMP <code>migrate</code>, <code>migrate_cancel</code>, <code>migrate-continue</code>.</p>
      </div>
      <div class="panel-body">
        ${this.renderStatus()}
        ${renderOutcome(this.actionOutcome)}
        ${m.activeBlockers.length ? html`<p class="blocker" role="status">Migration is blocked: ${m.activeBlockers.join('; ')}</p>` : nothing}
        <form class="uri" @submit=${this.onMigrate}>
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
          <button class="primary migrate" type="submit" ?disabled=${running || this.uri.trim() === ''} title=${running ? 'A migration is already running' : 'QMP migrate'}>
            Migrate
          </button>
        </form>
        <div class="suggest" aria-label="Suggested destinations">
          ${this.suggestions().map(
            (s) => html`<button class="chip ${s.uri.startsWith('webrtc:') ? 'waiting' : ''}" title=${s.title} @click=${() => (this.uri = s.uri)}>${s.label}</button>`,
          )}
        </div>
        ${renderOutcome(this.migrateOutcome)}
      </div>
    </section>`;
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
    </div>`;
  }

  private renderActions() {
    const out = this.migration.service!.outgoingStatus;
    return html`<span class="actions">
      <button class="danger cancel" ?disabled=${!isSetupOrActive(out)} @click=${() => this.act({ execute: 'migrate_cancel' })} title="QMP migrate_cancel">
        Cancel
      </button>
      <button
        class="go continue"
        ?disabled=${out !== 'pre-switchover'}
        @click=${() => this.act({ execute: 'migrate-continue', arguments: { state: 'pre-switchover' } })}
        title="QMP migrate-continue {state: pre-switchover}: only in pre-switchover (capability pause-before-switchover)"
      >
        Continue
      </button>
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
