import { LitElement, css } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { badgeStyles, renderBadge } from './badge.js';
import { migrationStatusTone } from './styles/theme.js';

/** A QEMU MigrationStatus as a coloured pill; the dot pulses while RAM is on the move. */
@customElement('tm-migration-badge')
export class TmMigrationBadge extends LitElement {
  static override styles = [
    badgeStyles,
    css`
      .badge {
        padding: 0.2em 0.8em 0.2em 0.6em;
        font-weight: 700;
      }
      .dot {
        width: 0.62em;
        height: 0.62em;
      }
      .moving .dot {
        animation: pulse 1s ease-in-out infinite;
      }
      @keyframes pulse {
        50% {
          opacity: 0.3;
        }
      }
      @media (prefers-reduced-motion: reduce) {
        .moving .dot {
          animation: none;
        }
      }
    `,
  ];

  /** The status name, e.g. `active`. */
  @property() status = '';

  override render() {
    const moving = ['setup', 'active', 'device', 'postcopy-active', 'cancelling'].includes(this.status);
    return renderBadge(`tone-${migrationStatusTone(this.status)} ${moving ? 'moving' : ''}`, 'QEMU MigrationStatus', this.status);
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-badge': TmMigrationBadge;
  }
}
