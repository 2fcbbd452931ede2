import { LitElement, css, html, nothing } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { MachineController } from './controllers/machine-controller.js';
import './tm-runstate-badge.js';

/** The top bar: which tab this is (its name and peer id) and what its machine is doing. */
@customElement('tm-header')
export class TmHeader extends LitElement {
  static override styles = css`
    :host {
      display: block;
      font-family: var(--tm-font);
    }
    header {
      display: flex;
      align-items: center;
      gap: 1.25rem;
      padding: 0.65rem 1.25rem;
      background: #151c2c;
      color: #e9edf5;
    }
    .brand {
      display: flex;
      align-items: baseline;
      gap: 0.7rem;
      min-width: 0;
    }
    .logo {
      margin: 0;
      line-height: inherit;
      font-size: 1.35rem;
      font-weight: 750;
      letter-spacing: -0.01em;
      color: #fff;
    }
    .logo span {
      color: #8ea2ff;
    }
    .tagline {
      color: #9aa6bb;
      font-size: 0.9rem;
      white-space: nowrap;
    }
    .tab {
      margin-left: auto;
      display: flex;
      align-items: center;
      gap: 1rem;
      min-width: 0;
    }
    .field {
      display: flex;
      flex-direction: column;
      line-height: 1.15;
      min-width: 0;
    }
    .label {
      font-size: 0.68rem;
      text-transform: uppercase;
      letter-spacing: 0.08em;
      color: #8c97ab;
    }
    .value {
      font-size: 1.05rem;
      font-weight: 650;
      color: #fff;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .value.mono {
      font-family: var(--tm-mono);
      font-size: 0.95rem;
      font-weight: 500;
      color: #cfd7e6;
    }
    tm-runstate-badge {
      font-size: 1.15rem;
    }
    @media (max-width: 760px) {
      .tagline {
        display: none;
      }
    }
  `;

  /** This tab's name (`?name=`), what QEMU calls the VM name. */
  @property() vmName = '';
  /** This tab's peer id once it has one (others migrate to `webrtc:PEER`). */
  @property() peerId = '';

  private readonly machine = new MachineController(this);

  override render() {
    const runstate = this.machine.service?.runstate ?? '';
    return html`<header>
      <div class="brand">
        <h1 class="logo">tab<span>mig</span></h1>
        <span class="tagline">live migration of a running machine between browser tabs</span>
      </div>
      <div class="tab">
        <slot></slot>
        ${this.vmName
          ? html`<div class="field"><span class="label">This tab</span><span class="value" title="VM name">${this.vmName}</span></div>`
          : nothing}
        ${this.peerId
          ? html`<div class="field"><span class="label">Peer id</span><span class="value mono">${this.peerId}</span></div>`
          : nothing}
        ${runstate ? html`<tm-runstate-badge .state=${runstate}></tm-runstate-badge>` : nothing}
      </div>
    </header>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-header': TmHeader;
  }
}
