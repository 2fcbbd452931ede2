import { LitElement, css } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { badgeStyles, renderBadge } from './badge.js';
import { runstateTone } from './styles/theme.js';

/** A QEMU runstate as a coloured pill; the dot pulses while the guest runs. */
@customElement('tm-runstate-badge')
export class TmRunstateBadge extends LitElement {
  static override styles = [
    badgeStyles,
    css`
      .badge {
        padding: 0.2em 0.75em 0.2em 0.6em;
        font-weight: 650;
      }
      .dot {
        width: 0.6em;
        height: 0.6em;
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
    return renderBadge(`tone-${runstateTone(this.state)}`, 'QEMU runstate', this.state);
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-runstate-badge': TmRunstateBadge;
  }
}
