import { LitElement, css, html, nothing } from 'lit';
import { customElement } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import type { GuestOutcome } from './services/machine-service.js';
import { formatBytes, formatCount, formatMips } from './format.js';
import './tm-runstate-badge.js';

function outcomeText(o: GuestOutcome): { text: string; tone: 'ok' | 'bad' } {
  if (o.kind === 'panic') return { text: `guest panicked: ${o.message}`, tone: 'bad' };
  const how = o.via === 'tohost' ? 'tohost' : 'test finisher';
  return o.passed
    ? { text: `guest exited: PASS (via ${how})`, tone: 'ok' }
    : { text: `guest exited: FAIL, code ${o.code} (via ${how})`, tone: 'bad' };
}

/** The status line: runstate (QEMU's names), program, speed, instructions, RAM, and how the guest ended. */
@customElement('tm-status')
export class TmStatus extends LitElement {
  static override styles = css`
    :host {
      display: block;
      font-family: var(--tm-font);
      color: var(--tm-text);
    }
    footer {
      display: flex;
      flex-wrap: wrap;
      align-items: center;
      column-gap: 1.4rem;
      row-gap: 0.3rem;
      padding: 0.5rem 1.25rem;
      background: var(--tm-surface);
      border-top: 1px solid var(--tm-border);
      font-size: 0.9rem;
    }
    .item {
      display: inline-flex;
      align-items: baseline;
      gap: 0.4rem;
      white-space: nowrap;
    }
    .label {
      color: var(--tm-muted);
      font-size: 0.78rem;
      text-transform: uppercase;
      letter-spacing: 0.06em;
    }
    .value {
      font-family: var(--tm-mono);
      font-variant-numeric: tabular-nums;
    }
    .program .value {
      white-space: normal;
      overflow-wrap: anywhere;
    }
    .args {
      color: var(--tm-muted);
    }
    .outcome {
      font-weight: 650;
      padding: 0.1rem 0.6rem;
      border-radius: 6px;
    }
    .outcome.ok {
      color: var(--tm-ok);
      background: var(--tm-ok-soft);
    }
    .outcome.bad {
      color: var(--tm-danger);
      background: var(--tm-danger-soft);
    }
  `;

  private readonly machine = new MachineController(this);

  override render() {
    const svc = this.machine.service;
    if (!svc) return nothing;
    const outcome = svc.outcome ? outcomeText(svc.outcome) : null;
    return html`<footer aria-label="Machine status">
      <span class="item" title="The machine's runstate, as QEMU names it (query-status)">
        <span class="label">State</span><tm-runstate-badge .state=${svc.runstate}></tm-runstate-badge>
      </span>
      <span class="item program" title="The program in guest RAM and its arguments">
        <span class="label">Program</span>
        <span class="value">${svc.program || '—'}${svc.args ? html` <span class="args">${svc.args}</span>` : nothing}</span>
      </span>
      <span class="item" title="Million guest instructions per second, over the last half second">
        <span class="label">Speed</span><span class="value mips">${svc.mips === null ? '—' : `${formatMips(svc.mips)} MIPS`}</span>
      </span>
      <span class="item" title="Instructions the guest CPU has retired since the program was loaded">
        <span class="label">Instructions</span><span class="value instructions">${formatCount(svc.instructions)}</span>
      </span>
      <span class="item" title="Guest RAM size (-m)">
        <span class="label">RAM</span><span class="value">${formatBytes(svc.ramSize)}</span>
      </span>
      ${outcome ? html`<span class="item outcome ${outcome.tone}" role="alert">${outcome.text}</span>` : nothing}
    </footer>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-status': TmStatus;
  }
}
