import { LitElement, css, html, nothing } from 'lit';
import { customElement, state } from 'lit/decorators.js';
import { formatTime } from './format.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import type { MigrationLogEntry } from './services/migration-view.js';
import type { QmpEvent } from './services/qmp-client.js';
import { migrationStatusTone, panelStyles, toneStyles, type Tone } from './styles/theme.js';

const KEEP_EVENTS = 300;
const SHOW = 200;

interface Line {
  /** ms since the epoch. */
  t: number;
  source: 'qmp' | 'migration';
  name: string;
  text: string;
  tone: Tone;
}

function eventTone(e: QmpEvent): Tone {
  switch (e.event) {
    case 'MIGRATION':
      return migrationStatusTone(String(e.data?.['status'] ?? ''));
    case 'RESUME':
      return 'ok';
    case 'STOP':
      return 'warn';
    case 'SHUTDOWN':
    case 'POWERDOWN':
    case 'GUEST_PANICKED':
      return 'danger';
    default:
      return 'neutral';
  }
}

function logTone(text: string): Tone {
  if (/\bfail|error|lost|refus/i.test(text)) return 'danger';
  if (/\bcancel/i.test(text)) return 'warn';
  if (/\bcompleted\b/.test(text)) return 'ok';
  return 'info';
}

/** A note that only repeats a MIGRATION event logged at the same moment ("migration active"). */
function restates(note: Line, events: readonly Line[]): boolean {
  const status = /^(?:incoming )?migration ([a-z-]+)$/.exec(note.text)?.[1];
  return status !== undefined && events.some((e) => e.name === 'MIGRATION' && e.text === JSON.stringify({ status }) && Math.abs(e.t - note.t) < 250);
}

function clock(t: number): string {
  return formatTime(t, true);
}

function eventLine(e: QmpEvent): Line {
  const t = e.timestamp.seconds * 1000 + Math.floor(e.timestamp.microseconds / 1000);
  const data = e.data === undefined ? '' : JSON.stringify(e.data);
  return { t, source: 'qmp', name: e.event, text: data, tone: eventTone(e) };
}

function logLine(l: MigrationLogEntry): Line {
  return { t: l.t, source: 'migration', name: 'migration', text: l.text, tone: logTone(l.text) };
}

/**
 * What happened, newest first: QMP events (MIGRATION, STOP, RESUME, RESET, SHUTDOWN, …) and the
 * migration service's own notes (state changes, return-path messages, stream commands).
 */
@customElement('tm-event-log')
export class TmEventLog extends LitElement {
  static override styles = [
    panelStyles,
    toneStyles,
    css`
      .log ul {
        margin: 0;
        padding: 0;
        list-style: none;
      }
      .log {
        max-height: 19rem;
        overflow: auto;
        margin: 0;
        padding: 0.3rem 0;
        border: 1px solid var(--tm-border);
        border-radius: 8px;
        background: #fafbfc;
        font-size: 0.86rem;
      }
      li {
        display: grid;
        grid-template-columns: auto auto 1fr;
        gap: 0.6rem;
        align-items: baseline;
        padding: 0.18rem 0.7rem;
        border-left: 4px solid var(--tone);
        margin: 0.12rem 0;
      }
      .time {
        font-family: var(--tm-mono);
        font-size: 0.8rem;
        color: var(--tm-muted);
        font-variant-numeric: tabular-nums;
      }
      .name {
        font-family: var(--tm-mono);
        font-weight: 700;
        font-size: 0.82rem;
        color: var(--tone);
        background: var(--tone-soft);
        border-radius: 4px;
        padding: 0 0.35rem;
      }
      .migration .name {
        font-family: var(--tm-font);
        font-weight: 600;
        background: none;
        padding: 0;
      }
      .text {
        font-family: var(--tm-mono);
        font-size: 0.84rem;
        overflow-wrap: anywhere;
        color: #2d3643;
      }
      .empty {
        margin: 0;
        padding: 0.6rem 0.8rem;
        color: var(--tm-muted);
        display: block;
        border: 0;
      }
      .tools {
        margin-left: auto;
        display: flex;
        gap: 0.8rem;
        align-items: center;
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      .tools label {
        display: inline-flex;
        align-items: center;
        gap: 0.3rem;
        cursor: pointer;
      }
      .link {
        padding: 0.1rem 0.4rem;
        border: 0;
        background: none;
        color: var(--tm-muted);
        font-size: 0.8rem;
        font-weight: 500;
      }
      .panel-head .hint {
        order: 3;
        flex-basis: 100%;
      }
    `,
  ];

  @state() private events: QmpEvent[] = [];
  @state() private showMigration = true;
  /** Lines before this time are hidden (clear). */
  @state() private since = 0;
  private readonly seen = new WeakSet<QmpEvent>();

  private readonly migration = new MigrationController(this);
  private readonly qmp = new QmpController(this, (e) => this.add(e));

  private backlogRead = false;

  protected override willUpdate(): void {
    // Events from before this panel was on the page (the page's startup STOP/RESUME, …).
    if (!this.backlogRead && this.qmp.available) {
      this.backlogRead = true;
      for (const e of this.qmp.eventLog) this.add(e);
    }
  }

  private add(e: QmpEvent): void {
    if (this.seen.has(e)) return;
    this.seen.add(e);
    this.events = [...this.events, e].slice(-KEEP_EVENTS);
  }

  override render() {
    const m = this.migration.service;
    if (!m) return nothing;
    const events = this.events.map(eventLine);
    const lines = [...events, ...(this.showMigration ? m.log.map(logLine).filter((l) => !restates(l, events)) : [])]
      .filter((l) => l.t >= this.since)
      .map((l, i) => ({ l, i }))
      // Newest first; of two at the same millisecond, the one that arrived later.
      .sort((a, b) => b.l.t - a.l.t || b.i - a.i)
      .slice(0, SHOW)
      .map(({ l }) => l);
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Event log</h2>
        <span class="tools">
          <label title="Also show the migration's own notes (state changes, return path, stream commands)"
            ><input type="checkbox" .checked=${this.showMigration} @change=${(e: Event) => (this.showMigration = (e.target as HTMLInputElement).checked)} /> migration notes</label
          >
          <button class="link" @click=${() => (this.since = Date.now())} aria-label="clear the event log">clear</button>
        </span>
        <p class="hint">Newest first: QMP events (turn on the <code>events</code> capability for MIGRATION) and the migration's own notes.</p>
      </div>
      <div class="panel-body">
        <div class="log" role="log" aria-label="Events" tabindex="0">
          ${lines.length
            ? html`<ul>
                ${lines.map(
                  (l) => html`<li class="${l.source} tone-${l.tone}">
                    <span class="time">${clock(l.t)}</span><span class="name">${l.name}</span><span class="text">${l.text}</span>
                  </li>`,
                )}
              </ul>`
            : html`<p class="empty">Nothing yet: events arrive as the guest stops, resumes and migrates.</p>`}
        </div>
      </div>
    </section>`;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-event-log': TmEventLog;
  }
}
