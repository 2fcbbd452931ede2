import { LitElement, css, html } from 'lit';
import { customElement, property } from 'lit/decorators.js';
import { migrationStatusTone, toneStyles } from './styles/theme.js';

/** A QEMU MigrationStatus as a coloured pill; the dot pulses while RAM is on the move. */
@customElement('tm-migration-badge')
export class TmMigrationBadge extends LitElement {
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
        padding: 0.2em 0.8em 0.2em 0.6em;
        border-radius: 999px;
        font-family: var(--tm-mono);
        font-weight: 700;
        font-size: 0.9em;
        letter-spacing: 0.02em;
        color: var(--tone);
        background: var(--tone-soft);
        border: 1px solid color-mix(in srgb, var(--tone) 35%, transparent);
        white-space: nowrap;
      }
      .dot {
        width: 0.62em;
        height: 0.62em;
        border-radius: 50%;
        background: var(--tone);
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
    return html`<span class="badge tone-${migrationStatusTone(this.status)} ${moving ? 'moving' : ''}" part="badge" title="QEMU MigrationStatus"
      ><span class="dot"></span><span class="name">${this.status || '—'}</span></span
    >`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-migration-badge': TmMigrationBadge;
  }
}
