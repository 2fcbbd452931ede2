import { LitElement, css, html } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { runstateTone, toneStyles } from './styles/theme.js';

/** A QEMU runstate as a coloured pill; the dot pulses while the guest runs. */
@customElement('tm-runstate-badge')
export class TmRunstateBadge extends LitElement {
  static override styles = [
    toneStyles,
    css`
      :host {
        display: inline-block;
      }
      .badge {
        display: inline-flex;
        align-items: center;
        gap: 0.45em;
        padding: 0.2em 0.75em 0.2em 0.6em;
        border-radius: 999px;
        font-family: var(--tm-mono);
        font-weight: 650;
        font-size: 0.9em;
        letter-spacing: 0.02em;
        color: var(--tone);
        background: var(--tone-soft);
        border: 1px solid color-mix(in srgb, var(--tone) 35%, transparent);
        white-space: nowrap;
      }
      .dot {
        width: 0.6em;
        height: 0.6em;
        border-radius: 50%;
        background: var(--tone);
      }
      .tone-ok .dot {
        animation: pulse 1.6s ease-in-out infinite;
      }
      @keyframes pulse {
        50% {
          opacity: 0.35;
        }
      }
      @media (prefers-reduced-motion: reduce) {
        .tone-ok .dot {
          animation: none;
        }
      }
    `,
  ];

  @property() state = '';

  override render() {
    return html`<span class="badge tone-${runstateTone(this.state)}" part="badge" title="QEMU runstate"
      ><span class="dot"></span><span class="name">${this.state || '—'}</span></span
    >`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-runstate-badge': TmRunstateBadge;
  }
}
