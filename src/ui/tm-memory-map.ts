import { LitElement, css, html, nothing } from 'lit';
import { customElement, query, state } from 'lit/decorators.js';
import { PAGE_STATUS_NAMES, PageStatus, type PageStatusValue } from '../migration/page-state.js';
import { MigrationController } from './controllers/migration-controller.js';
import { formatCount } from './format.js';
import { panelStyles } from './styles/theme.js';

/** Redraws at most this often: the page state changes per page, far faster than anyone reads it. */
const DRAW_MS = 66;

/** One colour per page status (canvas pixels cannot use the theme's CSS variables). */
const COLOURS: Record<PageStatusValue, [number, number, number]> = {
  [PageStatus.CLEAN]: [0xdf, 0xe4, 0xeb],
  [PageStatus.DIRTY]: [0xd9, 0x77, 0x06],
  [PageStatus.SENT]: [0x34, 0x51, 0xd1],
  [PageStatus.RECEIVED]: [0x2b, 0x8a, 0x3e],
  [PageStatus.REQUESTED]: [0x9c, 0x36, 0xb5],
  [PageStatus.RELEASED]: [0x86, 0x8e, 0x96],
};

const STATUSES = Object.values(PageStatus) as PageStatusValue[];

/** RGBA packed for a little-endian Uint32Array over ImageData (every browser tabmig runs on). */
const PACKED = new Uint32Array(256);
for (const s of STATUSES) {
  const [r, g, b] = COLOURS[s];
  PACKED[s] = (0xff << 24) | (b << 16) | (g << 8) | r;
}

/**
 * Every guest page as one pixel, coloured by what migration knows of it (DESIGN §9): clean,
 * dirty (found at the last sync), sent this round; received, requested on a destination. It
 * reads the service's shared page-state bytes straight from memory on animation frames, so the
 * workers that write them never talk to the page.
 */
@customElement('tm-memory-map')
export class TmMemoryMap extends LitElement {
  static override styles = [
    panelStyles,
    css`
      canvas {
        display: block;
        width: 100%;
        max-width: 24rem;
        margin: 0 auto;
        image-rendering: pixelated;
        border: 1px solid var(--tm-border);
        border-radius: 6px;
        background: var(--tm-surface-2);
      }
      ul {
        list-style: none;
        display: flex;
        flex-wrap: wrap;
        gap: 0.3rem 0.9rem;
        margin: 0.6rem 0 0;
        padding: 0;
        font-size: 0.82rem;
        color: var(--tm-muted);
      }
      li {
        display: inline-flex;
        align-items: center;
        gap: 0.35rem;
      }
      .swatch {
        width: 0.75rem;
        height: 0.75rem;
        border-radius: 3px;
      }
      .count {
        font-family: var(--tm-mono);
        font-variant-numeric: tabular-nums;
        color: var(--tm-text);
      }
    `,
  ];

  /** Pages per status at the last draw. */
  @state() private counts: readonly number[] = STATUSES.map(() => 0);
  @query('canvas') private canvas?: HTMLCanvasElement;

  private readonly migration = new MigrationController(this, { intervalMs: 500 });
  private frame = 0;
  private lastDraw = 0;
  private image: ImageData | null = null;

  override connectedCallback(): void {
    super.connectedCallback();
    const tick = (now: number) => {
      if (now - this.lastDraw >= DRAW_MS) {
        this.lastDraw = now;
        this.draw();
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
    const ps = this.migration.service?.pageState;
    if (!ps) return nothing;
    const { cols, rows } = gridOf(ps.pageCount);
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Memory map</h2>
        <p class="hint">Each guest page (4 KiB) as one dot: what the migration knows of it, live.</p>
      </div>
      <div class="panel-body">
        <canvas width=${cols} height=${rows} role="img" aria-label="Guest pages by migration state"></canvas>
        <ul aria-label="Legend">
          ${STATUSES.map(
            (s, i) => html`<li data-status=${PAGE_STATUS_NAMES[s]}>
              <span class="swatch" style="background:rgb(${COLOURS[s].join(' ')})"></span>${PAGE_STATUS_NAMES[s]}
              <span class="count">${formatCount(this.counts[i]!)}</span>
            </li>`,
          )}
        </ul>
      </div>
    </section>`;
  }

  /** Paints the page-state bytes into the canvas and updates the legend's counts if they moved. */
  private draw(): void {
    const ps = this.migration.service?.pageState;
    const canvas = this.canvas;
    if (!ps || !canvas) return;
    const { cols, rows } = gridOf(ps.pageCount);
    if (canvas.width !== cols || canvas.height !== rows) return; // re-rendering for another size
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    if (!this.image || this.image.width !== cols || this.image.height !== rows) this.image = ctx.createImageData(cols, rows);
    const pixels = new Uint32Array(this.image.data.buffer);
    const counts = new Array<number>(STATUSES.length).fill(0);
    const bytes = ps.bytes;
    for (let p = 0; p < bytes.length; p++) {
      const s = bytes[p]!;
      pixels[p] = PACKED[s]!;
      if (s < counts.length) counts[s]!++;
    }
    ctx.putImageData(this.image, 0, 0);
    if (counts.some((c, i) => c !== this.counts[i])) this.counts = counts;
  }
}

/** A near-square grid wide enough for every page. */
function gridOf(pages: number): { cols: number; rows: number } {
  const cols = Math.max(1, Math.ceil(Math.sqrt(pages)));
  return { cols, rows: Math.max(1, Math.ceil(pages / cols)) };
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-memory-map': TmMemoryMap;
  }
}
