import { LitElement, css } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { MIGRATION_STATUSES, isSetupOrActive, type MigrationStatus } from '../migration/state.js';
import { badgeStyles, renderBadge } from './badge.js';
import { migrationStatusTone } from './styles/theme.js';

/** True for a name of QAPI's MigrationStatus (the badge's input is any string). */
function isMigrationStatus(s: string): s is MigrationStatus {
  return (MIGRATION_STATUSES as readonly string[]).includes(s);
}

/**
 * A QEMU MigrationStatus as a coloured pill; the dot pulses while a migration is in progress
 * (QEMU's setup-or-active) and while it is being cancelled.
 */
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
    const s = this.status;
    const moving = isMigrationStatus(s) && (isSetupOrActive(s) || s === 'cancelling');
    return renderBadge(`tone-${migrationStatusTone(this.status)} ${moving ? 'moving' : ''}`, 'QEMU MigrationStatus', this.status);
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-badge': TmMigrationBadge;
  }
}
