import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, query, state } from 'lit/decorators.js';
import { PAGE_STATUS_NAMES, PageStatus, type PageStatusValue } from '../migration/page-state.js';
import { MigrationController } from './controllers/migration-controller.js';
import { QmpController } from './controllers/qmp-controller.js';
import { formatBytes, formatCount } from './format.js';
import { phaseText } from './migration-phases.js';
import { LAST_ROUND_COLOUR, LastSentRounds, ROUND_COLOURS, UNSEEN_COLOUR } from './memory-map-rounds.js';
import { currentDirection, currentStatus, isFinished, type MigrationStatus } from './services/migration-view.js';
import { hmpCommand } from './services/qmp-client.js';
import { panelStyles } from './styles/theme.js';

/** Guest RAM starts here (src/guest/memory-map.ts RAM_BASE); pages are 4 KiB target pages. */
const RAM_BASE = 0x8000_0000;
const PAGE = 4096;

/**
 * Redraws at most this often (30 fps). Painting 1 GiB (262 144 pages) is one pass over the bytes
 * into an ImageData, about 2 ms (the bench measures it), on the main thread only: no worker
 * waits for it.
 */
const DRAW_MS = 33;
/**
 * Paints that may be owed at once. A busy machine gives frames in bursts (a stall, then several
 * 16 ms apart); a paint owed from the stall is made in the burst, so the map keeps up with
 * min(30 fps, the frames it is given) on average instead of skipping every other burst frame.
 */
const MAX_OWED = 2;

/** One colour per page status (canvas pixels cannot use the theme's CSS variables). */
export const PAGE_COLOURS: Record<PageStatusValue, [number, number, number]> = {
  [PageStatus.CLEAN]: [0xdf, 0xe4, 0xeb],
  [PageStatus.DIRTY]: [0xd9, 0x77, 0x06],
  [PageStatus.SENT]: [0x34, 0x51, 0xd1],
  [PageStatus.RECEIVED]: [0x2b, 0x8a, 0x3e],
  [PageStatus.REQUESTED]: [0xc2, 0x25, 0x5c],
  [PageStatus.RELEASED]: [0x4a, 0x52, 0x5e],
};

/** What each state means, in a sentence, for the legend's tooltips and the hover line. */
const MEANING: Record<PageStatusValue, string> = {
  [PageStatus.CLEAN]: 'Source: nothing to send (already sent and not written since). Destination: not arrived yet.',
  [PageStatus.DIRTY]: 'To send this round: the guest wrote it since the last dirty-log sync (in round 1, every page is to send).',
  [PageStatus.SENT]: 'Sent during the current round; if the guest writes it again, the next sync marks it dirty.',
  [PageStatus.RECEIVED]: 'Destination: its contents arrived and are in guest RAM here.',
  [PageStatus.REQUESTED]: 'Postcopy: the running destination guest touched a missing page; it waits while the source is asked for it.',
  [PageStatus.RELEASED]: 'Postcopy release-ram: sent, and the source gave its memory back.',
};

const STATUSES = Object.values(PageStatus) as PageStatusValue[];

/** RGBA packed for a little-endian Uint32Array over ImageData (every browser tabmig runs on). */
const PACKED = new Uint32Array(256);
for (const s of STATUSES) {
  const [r, g, b] = PAGE_COLOURS[s];
  PACKED[s] = (0xff << 24) | (b << 16) | (g << 8) | r;
}

/**
 * Every guest page as one pixel, coloured by what migration knows of it (DESIGN §9): clean,
 * dirty (found at the last sync), sent this round on a source; received, requested by a postcopy
 * fault on a destination; released. It reads the service's shared page-state bytes straight from
 * memory on animation frames, so the workers that write them never talk to the page. Hover (or
 * move with the arrow keys) to read a page's address and state; click (or Enter) dumps it with
 * HMP `xp`, the command a QEMU user would type.
 */
@customElement('tm-memory-map')
export class TmMemoryMap extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .frame {
        position: relative;
        max-width: 26rem;
        margin: 0 auto;
      }
      /* The migration view: the map as large as the column and the screen's height allow. */
      :host([compact]) .frame {
        max-width: min(32rem, calc(100vh - 21rem));
      }
      :host([compact]) .panel-head .hint {
        display: none;
      }
      canvas {
        display: block;
        width: 100%;
        image-rendering: pixelated;
        border: 1px solid var(--tm-border);
        border-radius: 6px;
        background: var(--tm-surface-2);
        cursor: crosshair;
      }
      .cursor {
        position: absolute;
        pointer-events: none;
        outline: 2px solid var(--tm-text);
        outline-offset: 1px;
        min-width: 3px;
        min-height: 3px;
      }
      .round {
        display: flex;
        flex-wrap: wrap;
        gap: 0.2rem 1rem;
        margin: 0 0 0.5rem;
        font-size: 0.86rem;
        color: var(--tm-muted);
      }
      .round b {
        color: var(--tm-text);
        font-variant-numeric: tabular-nums;
      }
      ul {
        list-style: none;
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr));
        gap: 0.3rem 0.9rem;
        margin: 0.6rem 0 0;
        padding: 0;
        font-size: 0.84rem;
        color: var(--tm-muted);
      }
      li {
        display: flex;
        align-items: center;
        gap: 0.4rem;
        cursor: help;
      }
      .swatch {
        flex: none;
        width: 0.8rem;
        height: 0.8rem;
        border-radius: 3px;
        box-shadow: inset 0 0 0 1px rgb(0 0 0 / 15%);
      }
      .count {
        margin-left: auto;
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
        color: var(--tm-text);
      }
      .modes {
        display: flex;
        gap: 0.3rem;
        margin: 0 0 0.4rem;
      }
      .modes button {
        font: inherit;
        font-size: 0.8rem;
        padding: 0.2rem 0.6rem;
        border-radius: 999px;
        border: 1px solid var(--tm-border);
        background: var(--tm-surface);
        color: var(--tm-text);
        cursor: pointer;
      }
      .modes button[aria-pressed='true'] {
        background: var(--tm-accent);
        border-color: var(--tm-accent);
        color: #fff;
      }
      .probe {
        min-height: 1.3rem;
        margin: 0.5rem 0 0;
        font-size: 0.86rem;
      }
      .probe code {
        color: var(--tm-text);
      }
      pre {
        margin: 0.4rem 0 0;
        padding: 0.5rem 0.7rem;
        max-height: 14rem;
        overflow: auto;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
        background: var(--tm-term-bg);
        color: var(--tm-term-fg);
        border-radius: 6px;
        font-family: var(--tm-mono);
        font-size: 0.8rem;
      }
    `,
  ];

  /** The migration view: no explanation under the title, a larger map. */
  @property({ type: Boolean, reflect: true }) compact = false;
  /**
   * What the dots show: each page's state now, or (after an outgoing migration) the round it was
   * last sent in. A migration that ends turns to the rounds; the buttons turn back.
   */
  @state() private mode: 'states' | 'rounds' = 'states';
  /** Pages per legend entry of the rounds picture. */
  @state() private roundCounts: number[] = [];
  private readonly byRound = new LastSentRounds(0);
  private byRoundGeneration = -1;
  private lastOutgoing: MigrationStatus = 'none';
  /** Pages per status at the last draw. */
  @state() private counts: readonly number[] = STATUSES.map(() => 0);
  /** The page under the pointer (or the keyboard cursor), or -1. */
  @state() private probe = -1;
  @state() private dump: { command: string; text: string } | null = null;
  @query('canvas') private canvas?: HTMLCanvasElement;

  private readonly migration = new MigrationController(this, { intervalMs: 500 });
  private readonly qmp = new QmpController(this);
  /**
   * For the bench (the 30 fps claim): frames painted, animation frames the browser gave, and ms
   * spent painting, since the element was created. Frames given but not painted are the map's
   * choice (30 fps at 60 Hz); frames not given are the machine's.
   */
  framesDrawn = 0;
  framesOffered = 0;
  drawMs = 0;
  private frame = 0;
  private image: ImageData | null = null;
  private lastRound = -1;
  /** Paints owed (30 a second accrue, MAX_OWED at most); a frame paints when one is. */
  private owed = 1;
  private lastTick = 0;

  override connectedCallback(): void {
    super.connectedCallback();
    const tick = (now: number) => {
      this.framesOffered++;
      // Every other frame at 60 Hz (30 fps); every frame when they come slower, bursts included.
      this.owed = Math.min(MAX_OWED, this.owed + (now - this.lastTick) / DRAW_MS);
      this.lastTick = now;
      if (this.owed >= 1) {
        this.owed -= 1;
        const t0 = performance.now();
        this.draw();
        this.drawMs += performance.now() - t0;
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    cancelAnimationFrame(this.frame);
  }

  override render() {
    const m = this.migration.service;
    const ps = m?.pageState;
    if (!m || !ps) return nothing;
    const { cols, rows } = gridOf(ps.pageCount);
    const direction = currentDirection(m);
    const status = currentStatus(m);
    const rounds = m.rounds.count;
    const c = this.counts;
    const probe = this.probe >= 0 && this.probe < ps.pageCount ? this.probe : -1;
    return html`<section class="panel">
      <div class="panel-head">
        <h2 id="map-title">Memory map</h2>
        <span class="aside">${formatCount(ps.pageCount)} pages · ${formatBytes(ps.pageCount * PAGE)}</span>
        <p class="hint">
          Every 4 KiB guest page as one dot, coloured by what the migration knows of it, live. Rows run left to right
          from ${hex(RAM_BASE)}.
        </p>
      </div>
      <div class="panel-body">
        <p class="round" aria-live="off" title=${phaseText(status, direction)}>
          ${direction === 'outgoing'
            ? html`<span>Source · <b>${status}</b></span>
                <span>Round <b data-round>${status === 'setup' || status === 'active' ? rounds + 1 : rounds || '–'}</b></span>
                <span>to send <b>${formatCount(c[PageStatus.DIRTY]!)}</b></span>
                <span>sent this round <b>${formatCount(c[PageStatus.SENT]!)}</b></span>`
            : html`<span>Destination · <b>${status}</b></span>
                <span>received <b>${formatCount(c[PageStatus.RECEIVED]!)}</b> of ${formatCount(ps.pageCount)}</span>
                <span>faulted, waiting <b>${formatCount(c[PageStatus.REQUESTED]!)}</b></span>`}
        </p>
        ${direction === 'outgoing' && isFinished(status) && this.byRound.last > 0 ? this.renderModes() : nothing}
        <div class="frame">
          <canvas
            width=${cols}
            height=${rows}
            tabindex="0"
            role="img"
            aria-labelledby="map-title"
            aria-describedby="probe"
            @pointermove=${this.onPointer}
            @pointerleave=${() => (this.probe = -1)}
            @click=${this.onClick}
            @keydown=${this.onKey}
          ></canvas>
          ${probe >= 0 ? this.renderCursor(probe, cols, rows) : nothing}
        </div>
        <p class="probe" id="probe" aria-live="polite">
          ${probe >= 0
            ? html`Page <code>${formatCount(probe)}</code> at <code>${hex(RAM_BASE + probe * PAGE)}</code>:
                <b>${this.showingRounds ? this.roundText(probe) : (PAGE_STATUS_NAMES[ps.bytes[probe] as PageStatusValue] ?? 'unknown')}</b> — click or
                press Enter to dump it with <code>xp</code>.`
            : html`<span class="hint">Point at a page (or focus the map and use the arrow keys) to read its address and state.</span>`}
        </p>
        ${this.showingRounds ? this.renderRoundLegend() : html`<ul aria-label="Legend">
          ${STATUSES.map(
            (s) => html`<li data-status=${PAGE_STATUS_NAMES[s]} title=${MEANING[s]}>
              <span class="swatch" style="background:rgb(${PAGE_COLOURS[s].join(' ')})"></span>${PAGE_STATUS_NAMES[s]}
              <span class="count">${formatCount(c[s]!)}</span>
            </li>`,
          )}
        </ul>`}
        ${this.dump
          ? html`<pre aria-label="Page dump" tabindex="0"><span class="hint">(qemu) ${this.dump.command}</span>\n${this.dump.text}</pre>`
          : nothing}
      </div>
    </section>`;
  }

  /** Whether the rounds picture is on the canvas (only once an outgoing migration ended). */
  private get showingRounds(): boolean {
    const m = this.migration.service;
    return this.mode === 'rounds' && !!m && currentDirection(m) === 'outgoing' && isFinished(currentStatus(m)) && this.byRound.last > 0;
  }

  private renderModes() {
    const set = (mode: 'states' | 'rounds') => () => (this.mode = mode);
    return html`<div class="modes" role="group" aria-label="What the map shows">
      <button type="button" aria-pressed=${this.mode === 'rounds'} @click=${set('rounds')} title="Each page by the round it was last sent in">Round last sent</button>
      <button type="button" aria-pressed=${this.mode === 'states'} @click=${set('states')} title="Each page's state now">Page states</button>
    </div>`;
  }

  private roundText(page: number): string {
    const r = this.byRound.roundOf(page);
    if (r === 0) return 'not seen sent (the tab was hidden)';
    return r === this.byRound.last && r > 1 ? `last sent in round ${r}, the stop-and-copy` : `last sent in round ${r}`;
  }

  private renderRoundLegend() {
    const last = this.byRound.last;
    const entries = ROUND_COLOURS.map((colour, i) => ({
      label: i === ROUND_COLOURS.length - 1 ? `round ${i + 1}+` : `round ${i + 1}`,
      colour,
      title: i === 0 ? 'Sent once, in the first pass over RAM, and never written again' : 'Written again by the guest after it was sent, and sent again in this round',
    }));
    entries.push({ label: `round ${last} (last)`, colour: LAST_ROUND_COLOUR, title: 'Sent in the last round: with the guest stopped, this is the downtime' });
    entries.push({ label: 'not seen', colour: UNSEEN_COLOUR, title: 'No frame was drawn while it was sent (the tab was hidden)' });
    return html`<ul aria-label="Legend: round last sent" data-legend="rounds">
      ${entries.map(
        (e, i) => html`<li title=${e.title}>
          <span class="swatch" style="background:rgb(${e.colour.join(' ')})"></span>${e.label}
          <span class="count">${formatCount(this.roundCounts[i] ?? 0)}</span>
        </li>`,
      )}
    </ul>`;
  }

  private renderCursor(page: number, cols: number, rows: number) {
    const x = page % cols;
    const y = Math.floor(page / cols);
    return html`<div
      class="cursor"
      style="left:${(x / cols) * 100}%;top:${(y / rows) * 100}%;width:${100 / cols}%;height:${100 / rows}%"
    ></div>`;
  }

  private pageAt(e: MouseEvent): number {
    const ps = this.migration.service?.pageState;
    const canvas = this.canvas;
    if (!ps || !canvas) return -1;
    const r = canvas.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * canvas.width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * canvas.height);
    if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return -1;
    const p = y * canvas.width + x;
    return p < ps.pageCount ? p : -1;
  }

  private readonly onPointer = (e: PointerEvent) => {
    this.probe = this.pageAt(e);
  };

  private readonly onClick = (e: MouseEvent) => {
    const p = this.pageAt(e);
    if (p >= 0) {
      this.probe = p;
      void this.dumpPage(p);
    }
  };

  private readonly onKey = (e: KeyboardEvent) => {
    const ps = this.migration.service?.pageState;
    if (!ps) return;
    const cols = gridOf(ps.pageCount).cols;
    const step: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols, PageUp: -cols * 16, PageDown: cols * 16 };
    if (e.key in step) {
      e.preventDefault();
      const from = this.probe < 0 ? 0 : this.probe;
      this.probe = Math.min(ps.pageCount - 1, Math.max(0, from + step[e.key]!));
    } else if ((e.key === 'Enter' || e.key === ' ') && this.probe >= 0) {
      e.preventDefault();
      void this.dumpPage(this.probe);
    } else if (e.key === 'Escape') {
      this.probe = -1;
      this.dump = null;
    }
  };

  /** The first 64 bytes of the page, as QEMU's `xp /16xw` prints them. */
  private async dumpPage(page: number): Promise<void> {
    const command = `xp /16xw ${hex(RAM_BASE + page * PAGE)}`;
    const reply = await this.qmp.execute(hmpCommand(command));
    const text = reply.error ? `${reply.error.class}: ${reply.error.desc}` : String(reply.return ?? '').trimEnd();
    this.dump = { command, text };
  }

  /**
   * Notes, on every frame of an outgoing migration, the round of each page seen sent; a new
   * migration starts the notes afresh, and the end of one turns the map to its rounds.
   */
  private followRounds(m: NonNullable<TmMemoryMap['migration']['service']>, bytes: Uint8Array): void {
    const out = m.outgoingStatus;
    if (m.rounds.generation !== this.byRoundGeneration) {
      this.byRoundGeneration = m.rounds.generation;
      this.byRound.reset(bytes.length);
    }
    if (!isFinished(out)) this.byRound.note(bytes, PageStatus.SENT, m.rounds.count + 1, PageStatus.DIRTY);
    if (out !== this.lastOutgoing) {
      // The stop-and-copy may be over between two frames: its pages are still marked sent.
      if (out === 'completed') this.byRound.finish(bytes, PageStatus.SENT, m.rounds.count);
      if (out === 'completed' && this.byRound.last > 0) this.mode = 'rounds';
      if (out === 'setup') this.mode = 'states';
      this.lastOutgoing = out;
    }
  }

  /** Paints the page-state bytes into the canvas and updates the counts if they moved. */
  private draw(): void {
    const m = this.migration.service;
    const ps = m?.pageState;
    const canvas = this.canvas;
    if (!m || !ps || !canvas) return;
    const { cols, rows } = gridOf(ps.pageCount);
    if (canvas.width !== cols || canvas.height !== rows) return; // re-rendering for another size
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    if (!this.image || this.image.width !== cols || this.image.height !== rows) this.image = ctx.createImageData(cols, rows);
    const pixels = new Uint32Array(this.image.data.buffer);
    const counts = new Uint32Array(256);
    const bytes = ps.bytes;
    const n = bytes.length;
    for (let p = 0; p < n; p++) {
      const s = bytes[p]!;
      pixels[p] = PACKED[s]!;
      counts[s]!++;
    }
    this.followRounds(m, bytes);
    if (this.showingRounds) {
      const rc = this.byRound.paint(pixels);
      if (rc.some((v, i) => v !== this.roundCounts[i])) this.roundCounts = rc;
    }
    ctx.putImageData(this.image, 0, 0);
    this.framesDrawn++;
    const round = m.rounds.count;
    if (round !== this.lastRound || STATUSES.some((s) => counts[s] !== this.counts[s])) {
      this.lastRound = round;
      this.counts = Array.from(counts.subarray(0, STATUSES.length));
    }
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A near-square grid wide enough for every page. */
export function gridOf(pages: number): { cols: number; rows: number } {
  const cols = Math.max(1, Math.ceil(Math.sqrt(pages)));
  return { cols, rows: Math.max(1, Math.ceil(pages / cols)) };
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-memory-map': TmMemoryMap;
  }
}
