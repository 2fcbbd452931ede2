import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { live } from 'lit/directives/live.js';
import { TABMIG_IMPLEMENTED_CAPABILITIES, type MigrationCapability } from '../migration/options-schema.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { feedbackStyles, renderOutcome, runCommand, type CommandOutcome } from './qmp-feedback.js';
import { panelStyles } from './styles/theme.js';

/** One line each, for a class: what turning the capability on does. */
export const CAPABILITY_HELP: Record<MigrationCapability, string> = {
  xbzrle: 'send only the bytes that changed in a page sent before (delta against a page cache)',
  'rdma-pin-all': 'pin all guest RAM up front for an RDMA transport',
  'auto-converge': "slow the guest's CPU down when it dirties RAM faster than it can be sent",
  'zero-blocks': 'skip zeroed disk blocks in block migration',
  compress: 'compress pages with zlib in several threads before sending',
  events: 'emit MIGRATION events on every state change',
  'postcopy-ram': 'allow switching to postcopy: run on the destination, fetch missing pages on demand',
  'x-colo': 'COLO fault tolerance: a secondary VM kept in lockstep',
  'release-ram': "free the source's RAM as postcopy sends it",
  block: 'copy disk contents along with RAM (old-style block migration)',
  'return-path': 'let the destination send messages back to the source (acknowledgements, page requests)',
  'pause-before-switchover': 'stop in pre-switchover before the final copy, until migrate-continue',
  'x-multifd': 'send RAM over several parallel channels',
  'dirty-bitmaps': "migrate the disks' dirty bitmaps",
  'postcopy-blocktime': 'measure how long vCPUs wait for postcopy page faults',
  'late-block-activate': 'activate disks on the destination only at cont',
};

/**
 * Every migration capability from query-migrate-capabilities as a switch; flipping one sends
 * migrate-set-capabilities, and QEMU's refusal (a migration in progress, a capability tabmig does
 * not have yet) appears on that row.
 */
@customElement('tm-capabilities')
export class TmCapabilities extends LitElement {
  static override styles = [
    panelStyles,
    feedbackStyles,
    css`
      ul {
        list-style: none;
        margin: 0;
        padding: 0;
      }
      li {
        padding: 0.4rem 0;
        border-top: 1px solid var(--tm-surface-2);
      }
      li:first-child {
        border-top: 0;
      }
      label {
        display: grid;
        grid-template-columns: auto 1fr;
        column-gap: 0.7rem;
        align-items: start;
        cursor: pointer;
      }
      .name {
        font-family: var(--tm-mono);
        font-weight: 650;
        font-size: 0.95rem;
      }
      .tag {
        margin-left: 0.4rem;
        font-family: var(--tm-font);
        font-size: 0.72rem;
        font-weight: 560;
        color: var(--tm-muted);
        background: var(--tm-neutral-soft);
        border-radius: 4px;
        padding: 0.05rem 0.35rem;
        vertical-align: 0.1em;
      }
      .desc {
        grid-column: 2;
        font-size: 0.85rem;
        color: var(--tm-muted);
        line-height: 1.3;
      }
      .feedback {
        margin-left: 3.1rem;
      }
      /* A switch: a checkbox, drawn as a track and a knob. */
      input[type='checkbox'] {
        appearance: none;
        grid-row: 1 / span 2;
        position: relative;
        width: 2.4rem;
        height: 1.35rem;
        margin: 0.05rem 0 0;
        padding: 0;
        border-radius: 999px;
        border: 0;
        background: #c3cad5;
        cursor: pointer;
        transition: background 0.15s;
      }
      input[type='checkbox']::after {
        content: '';
        position: absolute;
        top: 0.15rem;
        left: 0.15rem;
        width: 1.05rem;
        height: 1.05rem;
        border-radius: 50%;
        background: #fff;
        box-shadow: 0 1px 2px rgb(0 0 0 / 25%);
        transition: transform 0.15s;
      }
      input[type='checkbox']:checked {
        background: var(--tm-ok);
      }
      input[type='checkbox']:checked::after {
        transform: translateX(1.05rem);
      }
      input[type='checkbox']:disabled {
        opacity: 0.5;
        cursor: default;
      }
      .off .name {
        color: #6b7686;
      }
      details {
        margin-top: 0.4rem;
      }
      summary {
        cursor: pointer;
        font-size: 0.88rem;
        color: var(--tm-accent);
        font-weight: 560;
        padding: 0.3rem 0;
      }
    `,
  ];

  /** The last command per capability, for its row's feedback. */
  @state() private outcomes = new Map<string, CommandOutcome>();

  private readonly migration = new MigrationController(this);
  private readonly qmp = new QmpController(this);

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const caps = m.options.queryCapabilities();
    const implemented = caps.filter((c) => TABMIG_IMPLEMENTED_CAPABILITIES.includes(c.capability));
    // An unimplemented capability that is on (from -global) stays in view, so it can be turned off.
    const others = caps.filter((c) => !TABMIG_IMPLEMENTED_CAPABILITIES.includes(c.capability));
    const othersOpen = others.some((c) => c.state || this.outcomes.get(c.capability)?.error);
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Capabilities</h2>
        <p class="hint">Features a migration may use (<code>query-migrate-capabilities</code>); a switch sends <code>migrate-set-capabilities</code>.</p>
      </div>
      <div class="panel-body">
        <ul>
          ${implemented.map((c) => this.renderCapability(c.capability, c.state, false))}
        </ul>
        <details ?open=${othersOpen}>
          <summary>${others.length} more that QEMU has and tabmig does not yet</summary>
          <ul>
            ${others.map((c) => this.renderCapability(c.capability, c.state, true))}
          </ul>
        </details>
      </div>
    </section>`;
  }

  private renderCapability(cap: MigrationCapability, on: boolean, missing: boolean) {
    const outcome = this.outcomes.get(cap);
    return html`<li class=${on ? 'on' : 'off'} data-capability=${cap}>
      <label>
        <input
          type="checkbox"
          role="switch"
          .checked=${live(on)}
          ?disabled=${outcome?.pending}
          @change=${(e: Event) => this.set(cap, (e.target as HTMLInputElement).checked)}
        />
        <span class="name">${cap}${missing ? html`<span class="tag">not in tabmig yet</span>` : nothing}</span>
        <span class="desc">${CAPABILITY_HELP[cap] ?? ''}</span>
      </label>
      ${renderOutcome(outcome, { compact: true })}
    </li>`;
  }

  private async set(capability: MigrationCapability, state: boolean): Promise<void> {
    await runCommand(this.qmp, { execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability, state }] } }, (o) => {
      this.outcomes = new Map(this.outcomes).set(capability, o);
    });
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-capabilities': TmCapabilities;
  }
}
