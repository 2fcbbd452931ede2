import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import type { QmpCommand } from './services/qmp-client.js';
import { chipStyles, panelStyles } from './styles/theme.js';

/** Page state byte for a page the destination's vCPU faulted on and asked for (page-state.ts). */
const REQUESTED = 4;

/**
 * Postcopy's controls and live figures, beside the migrate panel's status: Start postcopy while
 * precopy runs, Pause during postcopy, Recover (destination) and Resume (source) while paused;
 * page requests, pages waited on right now and the vCPU's blocktime.
 */
@customElement('tm-postcopy-controls')
export class TmPostcopyControls extends LitElement {
  static override styles = [
    panelStyles,
    chipStyles,
    feedbackStyles,
    css`
      :host {
        display: block;
      }
      .row {
        display: flex;
        flex-wrap: wrap;
        gap: 0.4rem;
        align-items: center;
        margin: 0.3rem 0;
      }
      .figures {
        font-variant-numeric: tabular-nums;
        font-size: 0.85em;
      }
      input {
        min-width: 10rem;
      }
    `,
  ];

  @state() private uri = 'webrtc:';
  @state() private outcome: CommandOutcome | null = null;
  private readonly migration = new MigrationController(this);
  private readonly qmp = new QmpController(this);

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const caps = m.options.queryCapabilities();
    const postcopyOn = caps.some((c) => c.capability === 'postcopy-ram' && c.state);
    const out = m.outgoingStatus;
    const inc = m.incomingStatus;
    const outgoing = out !== 'none';
    const status = outgoing ? out : inc;
    if (!postcopyOn && !status.startsWith('postcopy')) return nothing;
    const info = m.queryMigrate();
    let requested = 0;
    if (!outgoing) for (const b of m.pageState.bytes) if (b === REQUESTED) requested++;
    return html`<div class="postcopy">
      <div class="row">
        ${outgoing
          ? html`<button class="start-postcopy" ?disabled=${out !== 'active'} @click=${() => this.act({ execute: 'migrate-start-postcopy' })} title="QMP migrate-start-postcopy: switch now; the rest of RAM follows on demand">
              Start postcopy
            </button>`
          : nothing}
        <button class="pause" ?disabled=${status !== 'postcopy-active'} @click=${() => this.act({ execute: 'migrate-pause' })} aria-label="Pause postcopy" title="QMP migrate-pause: break the link on purpose; both sides pause">Pause</button>
        ${status === 'postcopy-paused'
          ? html`<input aria-label="Postcopy recovery URI" .value=${this.uri} @input=${(e: Event) => (this.uri = (e.target as HTMLInputElement).value)} />
              ${outgoing
                ? html`<button class="resume" @click=${() => this.act({ execute: 'migrate', arguments: { uri: this.uri, resume: true } })} title="QMP migrate {resume: true}">Resume</button>`
                : html`<button class="recover" @click=${() => this.act({ execute: 'migrate-recover', arguments: { uri: this.uri } })} title="QMP migrate-recover">Recover</button>`}`
          : nothing}
      </div>
      <div class="row figures">
        ${outgoing ? html`<span>postcopy-requests: <b>${info.ram?.['postcopy-requests'] ?? 0}</b></span>` : html`<span>pages requested now: <b>${requested}</b></span>`}
        ${info['postcopy-blocktime'] !== undefined ? html`<span>postcopy-blocktime: <b>${info['postcopy-blocktime']} ms</b></span>` : nothing}
        ${info['postcopy-vcpu-blocktime'] !== undefined ? html`<span>vCPU blocktime: <b>${info['postcopy-vcpu-blocktime'].join(', ')} ms</b></span>` : nothing}
      </div>
      ${renderOutcome(this.outcome, { compact: true })}
    </div>`;
  }

  private async act(cmd: QmpCommand): Promise<void> {
    await runCommand(this.qmp, cmd, (o) => (this.outcome = o));
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-postcopy-controls': TmPostcopyControls;
  }
}
