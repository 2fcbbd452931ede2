import { LitElement, css, html, nothing } from 'lit';
import { customElement } from 'lit/decorators.js';
import { RoundsController } from './controllers/rounds-controller.js';
import type { MigrationLogEntry, MigrationView } from './services/migration-view.js';
import { formatDuration, formatMs } from './format.js';
import { panelStyles } from './styles/theme.js';

/** The phases a class is taught, and the QAPI statuses that make each. */
export const PHASES = {
  connect: { colour: '#6b7686', statuses: [], explain: 'Connecting: status setup while the link to the destination is made (not counted in setup-time, as in QEMU).' },
  setup: { colour: '#5f6b7a', statuses: ['setup'], explain: 'Setup: the stream and channels open, the dirty log starts, capabilities are agreed (query-migrate setup-time).' },
  rounds: { colour: '#3451d1', statuses: ['active'], explain: 'Rounds (precopy): the guest runs while RAM is sent, then what it dirtied, round after round.' },
  switchover: {
    colour: '#b45309',
    statuses: ['pre-switchover', 'device', 'cancelling'],
    explain: 'Switchover: the guest is stopped, the last dirty pages and the devices are sent, the destination confirms.',
  },
  postcopy: {
    colour: '#7b2cbf',
    statuses: ['postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-recover-setup'],
    explain: 'Postcopy: the guest already runs on the destination; missing pages are pulled on fault while the rest streams.',
  },
  completed: { colour: '#237535', statuses: ['completed'], explain: 'Completed: the destination owns the guest.' },
  failed: { colour: '#c92a2a', statuses: ['failed', 'cancelled'], explain: 'Failed or cancelled: the source keeps (or resumes) the guest.' },
} as const;

type Phase = keyof typeof PHASES;

/** At most this many round ticks on the bar: a long migration's hundreds would smear into one. */
const MAX_TICKS = 40;

/** The rounds to tick: all of them, or every k-th (and the last) when there are too many. */
function ticks<T extends { round: number }>(records: readonly T[]): T[] {
  const k = Math.ceil(records.length / MAX_TICKS);
  return k <= 1 ? [...records] : records.filter((_r, i) => (i + 1) % k === 0 || i === records.length - 1);
}

/** A segment names its phase only when it is this share of the bar or more (the legend names all). */
const LABEL_SHARE = 0.18;

function phaseOf(status: string): Phase | null {
  for (const [k, v] of Object.entries(PHASES)) if ((v.statuses as readonly string[]).includes(status)) return k as Phase;
  return null;
}

/**
 * The source's setup segment split as QEMU counts it: the connection first, then setup-time
 * (query-migrate's figure, so the two panels say the same).
 */
export function splitSetup(segs: Segment[], setupTime: number | undefined): Segment[] {
  if (setupTime === undefined) return segs;
  const out: Segment[] = [];
  for (const s of segs) {
    if (s.phase !== 'setup' || s.end - s.start <= setupTime) {
      out.push(s);
      continue;
    }
    out.push({ phase: 'connect', status: 'setup', start: s.start, end: s.end - setupTime });
    out.push({ ...s, start: s.end - setupTime });
  }
  return out;
}

export interface Segment {
  phase: Phase;
  status: string;
  start: number;
  end: number;
}

/**
 * The status changes of the last migration (outgoing, or incoming on a destination), from the
 * service's own log ("migration active", "incoming migration completed"): the main thread notes
 * each one as it mirrors the shared block, so this needs no polling.
 */
export function segmentsFromLog(log: readonly MigrationLogEntry[], incoming: boolean, now = Date.now()): Segment[] {
  const re = incoming ? /^incoming migration ([a-z-]+)/ : /^migration ([a-z-]+)/;
  let changes: { t: number; status: string }[] = [];
  for (const e of log) {
    const m = re.exec(e.text);
    if (!m) continue;
    const status = m[1]!;
    if (status === 'setup' || (incoming && changes.length === 0)) changes = [];
    changes.push({ t: e.t, status });
  }
  const out: Segment[] = [];
  changes.forEach((c, i) => {
    const phase = phaseOf(c.status);
    if (!phase) return;
    const end = i + 1 < changes.length ? changes[i + 1]!.t : phase === 'completed' || phase === 'failed' ? c.t : now;
    const prev = out[out.length - 1];
    if (prev && prev.phase === phase) prev.end = end;
    else out.push({ phase, status: c.status, start: c.t, end });
  });
  return out;
}

/**
 * The state timeline under the charts: one bar from migrate to the end, coloured by phase (setup,
 * rounds, switchover, postcopy, completed), a tick at each round's sync, and the downtime — the
 * span the guest was stopped, from query-migrate's `downtime` once completed — hatched in red.
 */
@customElement('tm-state-timeline')
export class TmStateTimeline extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .bar {
        position: relative;
        height: 1.6rem;
        border-radius: 6px;
        overflow: hidden;
        background: var(--tm-surface-2);
        border: 1px solid var(--tm-border);
      }
      .seg {
        position: absolute;
        top: 0;
        bottom: 0;
        min-width: 2px;
        color: #fff;
        font-size: 0.72rem;
        line-height: 1.6rem;
        white-space: nowrap;
        overflow: hidden;
      }
      .seg .label {
        padding-left: 0.3rem;
      }
      .tick {
        position: absolute;
        top: 0;
        bottom: 0;
        width: 1px;
        background: rgb(255 255 255 / 70%);
      }
      .downtime {
        position: absolute;
        top: -1px;
        bottom: -1px;
        min-width: 3px;
        background: repeating-linear-gradient(135deg, #c92a2a 0 4px, #f08c8c 4px 8px);
        outline: 1px solid #8f1d1d;
      }
      .scale {
        display: flex;
        justify-content: space-between;
        font-family: var(--tm-mono);
        font-size: 0.74rem;
        color: var(--tm-muted);
        margin-top: 0.15rem;
      }
      ul {
        list-style: none;
        display: flex;
        flex-wrap: wrap;
        gap: 0.2rem 0.9rem;
        padding: 0;
        margin: 0.35rem 0 0;
        font-size: 0.8rem;
        color: var(--tm-muted);
      }
      li {
        display: inline-flex;
        align-items: center;
        gap: 0.3rem;
        cursor: help;
      }
      .sw {
        width: 0.75rem;
        height: 0.75rem;
        border-radius: 2px;
      }
      h3 {
        margin: 0 0 0.3rem;
        font-size: 0.92rem;
      }
    `,
  ];

  private readonly rounds = new RoundsController(this);

  override render() {
    const m = this.rounds.service;
    if (!m) return nothing;
    const incoming = m.outgoingStatus === 'none' && m.incomingStatus !== 'none';
    const info = incoming ? null : m.queryMigrate();
    const segs = splitSetup(segmentsFromLog(m.log, incoming), info?.['setup-time']);
    if (!segs.length) return nothing;
    const t0 = segs[0]!.start;
    const tEnd = Math.max(segs[segs.length - 1]!.end, t0 + 1);
    const span = tEnd - t0;
    // Each figure from the one place it lives: setup-time and total-time from query-migrate.
    const length = (s: Segment) => (s.phase === 'setup' && info?.['setup-time'] !== undefined ? info['setup-time'] : s.end - s.start);
    const total = info?.status === 'completed' && info['total-time'] !== undefined ? info['total-time'] : span;
    const pct = (t: number) => `${(Math.min(Math.max(t - t0, 0), span) / span) * 100}%`;
    const records = incoming ? [] : this.rounds.records;
    const downtime = this.downtime(m, incoming);
    const used = new Set(segs.map((s) => s.phase));
    return html`<div data-timeline>
      <h3>State timeline</h3>
      <div class="bar" role="img" aria-label=${`Migration phases: ${segs.map((s) => `${s.phase} ${formatDuration(length(s))}`).join(', ')}${downtime ? `; downtime ${downtime.ms} ms` : ''}`}>
        ${segs.map(
          (s) => html`<div
            class="seg"
            data-phase=${s.phase}
            data-ms=${Math.round(length(s))}
            title="${PHASES[s.phase].explain} (${formatDuration(length(s))})"
            style="left:min(${pct(s.start)}, 100% - 2px);width:calc(${pct(s.end)} - ${pct(s.start)});background:${PHASES[s.phase].colour}"
          >
            ${(s.end - s.start) / span >= LABEL_SHARE ? html`<span class="label">${s.phase}</span>` : nothing}
          </div>`,
        )}
        ${ticks(records).map((r) => html`<div class="tick" style="left:min(${pct(t0 + r.time)}, 100% - 1px)" title="round ${r.round} ends"></div>`)}
        ${downtime
          ? html`<div
              class="downtime"
              data-downtime
              title="Downtime: the guest was stopped for ${downtime.ms} ms"
              style="left:min(${pct(downtime.end - downtime.ms)}, 100% - 3px);width:calc(${pct(downtime.end)} - ${pct(downtime.end - downtime.ms)})"
            ></div>`
          : nothing}
      </div>
      <div class="scale"><span>0 s</span><span data-total>${formatDuration(total)}</span></div>
      <ul aria-label="Phases">
        ${(Object.keys(PHASES) as Phase[])
          .filter((k) => used.has(k))
          .map((k) => {
            const ms = segs.filter((s) => s.phase === k).reduce((a, s) => a + length(s), 0);
            const shown = k !== 'completed' && k !== 'failed';
            return html`<li title=${PHASES[k].explain} data-legend=${k}>
              <span class="sw" style="background:${PHASES[k].colour}"></span>${k === 'connect' ? 'connecting' : k}${shown ? html` <b>${formatDuration(ms)}</b>` : nothing}
            </li>`;
          })}
        ${downtime ? html`<li title="query-migrate's downtime: from stopping the guest to its start on the destination" data-legend="downtime"><span class="sw" style="background:#c92a2a"></span>downtime <b>${formatMs(downtime.ms)}</b></li>` : nothing}
      </ul>
    </div>`;
  }

  /** The downtime once completed (source side), placed to end at the completion. */
  private downtime(m: MigrationView, incoming: boolean): { ms: number; end: number } | null {
    if (incoming || m.outgoingStatus !== 'completed') return null;
    const info = m.queryMigrate();
    if (info.downtime === undefined) return null;
    const done = [...m.log].reverse().find((e) => e.text === 'migration completed');
    return done ? { ms: info.downtime, end: done.t } : null;
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-state-timeline': TmStateTimeline;
  }
}
