import { LitElement, css, html, nothing } from 'lit';
import { customElement, property, query, state } from 'lit/decorators.js';
import type { DisplayMode } from '../guest/devices/display.js';
import { RAM_BASE } from '../guest/memory-map.js';
import { MachineController } from './controllers/machine-controller.js';
import { panelStyles } from './styles/theme.js';

/** How often a running guest's framebuffer is repainted when its frame counter does not move. */
const UNSIGNALLED_FRAME_MS = 100;

/** Why a display mode cannot be shown, or null if it can. */
function displayProblem(mode: DisplayMode, ramSize: number): string | null {
  if (!mode.enabled) return 'off';
  if (mode.width === 0 || mode.height === 0) return 'The guest enabled its display with no size set.';
  if (mode.stride < mode.width * 4) return `The display's stride (${mode.stride} bytes) is shorter than a line of ${mode.width} pixels.`;
  const start = mode.fbAddr - RAM_BASE;
  const end = start + mode.stride * (mode.height - 1) + mode.width * 4;
  if (start < 0 || end > ramSize) {
    return `The framebuffer at 0x${(mode.fbAddr >>> 0).toString(16)} (${mode.width}×${mode.height}) is outside guest RAM.`;
  }
  return null;
}

/**
 * The guest's display: a canvas painted every animation frame straight from guest RAM (the
 * framebuffer is guest memory, shared with the vCPU worker; nothing is copied through messages).
 * A frame is painted when the guest bumps its frame counter; a running guest is also repainted a
 * few times a second in case it draws without saying so; a stopped one only when the registers change.
 */
@customElement('tm-display')
export class TmDisplay extends LitElement {
  static override styles = [
    panelStyles,
    css`
      .stage {
        position: relative;
        display: grid;
        place-items: center;
        flex: 1 1 auto;
        min-height: 0;
        margin: 0 1rem 1rem;
        border-radius: 8px;
        background: radial-gradient(ellipse at center, #1b2230 0%, #0c1016 100%);
        overflow: hidden;
      }
      canvas {
        image-rendering: pixelated;
        display: block;
        box-shadow: 0 0 0 1px rgb(255 255 255 / 6%), 0 6px 24px rgb(0 0 0 / 45%);
      }
      canvas[hidden] {
        display: none;
      }
      .stage.off {
        flex: none;
        min-height: 7.5rem;
        background: repeating-linear-gradient(-45deg, var(--tm-surface-2) 0 12px, #f0f2f6 12px 24px);
        border: 1px dashed var(--tm-border);
      }
      .off-note {
        display: flex;
        align-items: center;
        gap: 1rem;
        padding: 1rem 1.25rem;
        color: var(--tm-muted);
        max-width: 40rem;
      }
      .off-note svg {
        flex: none;
        width: 2.6rem;
        height: 2.6rem;
        color: #a3adbb;
      }
      .off-note strong {
        display: block;
        color: var(--tm-text);
        font-size: 1rem;
        margin-bottom: 0.15rem;
      }
      .off-note span {
        font-size: 0.92rem;
      }
    `,
  ];

  @query('.stage') private stage!: HTMLDivElement;
  @query('canvas') private canvas!: HTMLCanvasElement;

  /** The mode being shown (null: display off), and why not when the guest's mode is unusable. */
  @state() private shown: { width: number; height: number } | null = null;
  /** Reflected so the layout can give the room to other panels while the guest has no display. */
  @property({ type: Boolean, reflect: true }) off = true;
  @state() private problem: string | null = null;

  private readonly machine = new MachineController(this);
  private raf = 0;
  private lastKey = '';
  private lastPaint = 0;
  private image: ImageData | null = null;
  private ram32: { bytes: Uint8Array; words: Uint32Array } | null = null;
  private readonly resize = new ResizeObserver(() => this.fit());

  override connectedCallback(): void {
    super.connectedCallback();
    this.lastKey = '';
    const loop = () => {
      this.raf = requestAnimationFrame(loop);
      this.paint();
    };
    this.raf = requestAnimationFrame(loop);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    cancelAnimationFrame(this.raf);
    this.resize.disconnect();
  }

  protected override willUpdate(): void {
    this.off = this.shown === null;
  }

  protected override firstUpdated(): void {
    this.resize.observe(this.stage);
  }

  protected override updated(): void {
    this.fit();
  }

  override render() {
    const svc = this.machine.service;
    const on = this.shown !== null;
    return html`<section class="panel">
      <div class="panel-head">
        <h2>Display</h2>
        <p class="hint">The guest draws into a framebuffer in its own RAM, so the picture moves with its memory.</p>
        ${on ? html`<span class="aside">${this.shown!.width}×${this.shown!.height}</span>` : nothing}
      </div>
      <div class="stage ${on ? '' : 'off'}">
        <canvas role="img" aria-label="Guest display" ?hidden=${!on}></canvas>
        ${on || !svc ? nothing : this.renderOff(svc.program, svc.runstate)}
      </div>
    </section>`;
  }

  private renderOff(program: string, runstate: string) {
    let why;
    if (this.problem && this.problem !== 'off') why = this.problem;
    else if (runstate === 'inmigrate') why = html`Waiting for an incoming migration: the picture arrives with the guest's memory.`;
    else if (!program) why = html`No program is loaded yet.`;
    else why = html`<code>${program}</code> does not use the display; it talks through the serial console below.`;
    return html`<div class="off-note">
      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" aria-hidden="true">
        <rect x="3" y="4" width="18" height="12" rx="1.5" />
        <path d="M8 20h8M12 16v4M4 3l16 16" />
      </svg>
      <div><strong>Display off</strong><span>${why}</span></div>
    </div>`;
  }

  private paint(): void {
    const svc = this.machine.service;
    if (!svc) return;
    const mode = svc.display;
    const problem = displayProblem(mode, svc.ramSize);
    if (problem !== this.problem) this.problem = problem;
    if (problem) {
      if (this.shown) this.shown = null;
      return;
    }
    if (!this.shown || this.shown.width !== mode.width || this.shown.height !== mode.height) {
      this.shown = { width: mode.width, height: mode.height };
    }
    // A new frame (or mode) is painted at once. A running guest that draws without bumping the
    // frame counter is still shown, at a few frames a second; a stopped one is not repainted.
    // Postcopy: a framebuffer page that has not arrived is asked for, and the old frame stays up
    // until it lands (drawing it now would paint a missing page as black).
    if (svc.missing((mode.fbAddr - 0x8000_0000) >>> 0, mode.stride * mode.height)) return;
    const key = `${mode.fbAddr}:${mode.width}:${mode.height}:${mode.stride}:${mode.frame}:${svc.generation}`;
    const now = performance.now();
    if (key === this.lastKey && !(svc.running && now - this.lastPaint >= UNSIGNALLED_FRAME_MS)) return;
    const canvas = this.canvas;
    if (!canvas) return;
    if (canvas.width !== mode.width || canvas.height !== mode.height) {
      canvas.width = mode.width;
      canvas.height = mode.height;
    }
    const ctx = canvas.getContext('2d', { alpha: false });
    if (!ctx) return;
    this.lastKey = key;
    this.lastPaint = now;
    if (!this.image || this.image.width !== mode.width || this.image.height !== mode.height) {
      this.image = new ImageData(mode.width, mode.height);
    }
    copyFrame(this.words(svc.ramBytes), svc.ramBytes, mode, this.image);
    ctx.putImageData(this.image, 0, 0);
  }

  private words(bytes: Uint8Array): Uint32Array {
    if (this.ram32?.bytes !== bytes) {
      this.ram32 = { bytes, words: new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2) };
    }
    return this.ram32.words;
  }

  /** Scales the canvas up by a whole number when that fills the stage well (crisp pixels), else to fit. */
  private fit(): void {
    if (!this.shown || !this.stage || !this.canvas) return;
    const { width, height } = this.shown;
    const box = this.stage.getBoundingClientRect();
    const fitScale = Math.min((box.width - 16) / width, (box.height - 16) / height);
    if (!(fitScale > 0)) return;
    const whole = Math.floor(fitScale);
    const scale = whole >= 1 && whole / fitScale >= 0.8 ? whole : fitScale;
    this.canvas.style.width = `${Math.floor(width * scale)}px`;
    this.canvas.style.height = `${Math.floor(height * scale)}px`;
  }
}

/** Converts guest pixels (little-endian 0x00RRGGBB words in RAM) into canvas RGBA. */
function copyFrame(ram: Uint32Array, bytes: Uint8Array, mode: DisplayMode, image: ImageData): void {
  const out = new Uint32Array(image.data.buffer);
  const start = mode.fbAddr - RAM_BASE;
  const { width, height, stride } = mode;
  let o = 0;
  if (start % 4 === 0 && stride % 4 === 0) {
    for (let y = 0; y < height; y++) {
      let i = (start + y * stride) >>> 2;
      for (let x = 0; x < width; x++, i++) {
        const v = ram[i]!;
        out[o++] = 0xff000000 | ((v & 0xff) << 16) | (v & 0xff00) | ((v >>> 16) & 0xff);
      }
    }
    return;
  }
  // An unaligned framebuffer: read byte by byte.
  const px = image.data;
  for (let y = 0; y < height; y++) {
    let i = start + y * stride;
    for (let x = 0; x < width; x++, i += 4, o += 4) {
      px[o] = bytes[i + 2]!;
      px[o + 1] = bytes[i + 1]!;
      px[o + 2] = bytes[i]!;
      px[o + 3] = 255;
    }
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'tm-display': TmDisplay;
  }
}
