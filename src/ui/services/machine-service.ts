// The machine as the UI sees it: a plain class over Machine that keeps what the panels show
// (runstate, program, speed, how the guest ended) and tells subscribers when any of it changes;
// the guest's serial output goes to its own listeners as it comes (the console's terminal
// interprets it). It listens to the machine only while someone is subscribed.

import type { DisplayMode } from '../../guest/devices/display.js';
import type { GuestExit } from '../../guest/machine.js';
import type { RunState } from '../../guest/runstate.js';

/** The part of Machine (src/guest/machine.ts) the UI reads; a real Machine satisfies it. */
export interface MachineLike extends EventTarget {
  readonly runstate: RunState;
  readonly ramSize: number;
  /** Guest RAM (SharedArrayBuffer-backed): the display paints straight from it. */
  readonly ramBytes: Uint8Array;
  /** Postcopy: resolves once the range (offset into RAM) has arrived; fakes may omit it. */
  readonly pageGate?: { anyMissing(offset: number, length: number): boolean; whenPresent(offset: number, length: number): Promise<void> };
  readonly programName: string;
  readonly programArgs: string;
  readonly instructionsRetired: number;
  readonly serialOutput: string;
  readonly display: DisplayMode;
  sendInput(text: string): void;
}

/** A built-in program as the program picker lists it. */
export interface ProgramInfo {
  name: string;
  description: string;
  defaultArgs: string;
}

/** How the guest stopped on its own, for the status line. */
export type GuestOutcome = ({ kind: 'exit' } & GuestExit) | { kind: 'panic'; message: string };

const SAMPLE_MS = 500;
/** Changes are passed on at most this often (30 Hz). */
const NOTIFY_MS = 33;

/**
 * Called with the guest's serial output as it comes; `fresh` with the whole history when the
 * console starts afresh (first listen, a load or a reset).
 */
export type SerialListener = (text: string, fresh: boolean) => void;

export class MachineService {
  runstate: RunState;
  program = '';
  args = '';
  instructions = 0;
  /** Million instructions per second over the last sample, or null while the guest is not running. */
  mips: number | null = null;
  outcome: GuestOutcome | null = null;
  /** Bumped on every reset or load, so views showing RAM contents know to redraw. */
  generation = 0;

  private readonly serialListeners = new Set<SerialListener>();
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private sample: { at: number; instructions: number } | null = null;
  private notifyTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly machine: MachineLike,
    readonly programs: readonly ProgramInfo[] = [],
  ) {
    this.runstate = machine.runstate;
    this.readMachine();
  }

  get ramSize(): number {
    return this.machine.ramSize;
  }

  /**
   * Postcopy: whether [offset, offset + length) of RAM has a page that has not arrived; asks for
   * it. The display asks every frame: one wait per range at a time, however long a pause lasts.
   */
  missing(offset: number, length: number): boolean {
    const gate = this.machine.pageGate;
    if (!gate || !gate.anyMissing(offset, length)) return false;
    const key = `${offset}:${length}`;
    if (!this.awaited.has(key)) {
      this.awaited.add(key);
      void gate.whenPresent(offset, length).finally(() => this.awaited.delete(key));
    }
    return true;
  }

  /** Ranges whose pages are being waited for (at most a few: the frames being drawn). */
  private readonly awaited = new Set<string>();

  get ramBytes(): Uint8Array {
    return this.machine.ramBytes;
  }

  get display(): DisplayMode {
    return this.machine.display;
  }

  /**
   * Follows the serial output: `listener` gets the history at once, then every chunk (it also
   * keeps the service listening to the machine, as subscribe() does). Returns the unsubscribe.
   */
  onSerial(listener: SerialListener): () => void {
    const keepAlive = () => {};
    this.subscribe(keepAlive);
    this.serialListeners.add(listener);
    listener(this.machine.serialOutput, true);
    return () => {
      this.serialListeners.delete(listener);
      this.unsubscribe(keepAlive);
    };
  }

  get running(): boolean {
    return this.runstate === 'running';
  }

  findProgram(name: string): ProgramInfo | undefined {
    return this.programs.find((p) => p.name === name);
  }

  sendInput(text: string): void {
    if (text) this.machine.sendInput(text);
  }

  /** Calls `listener` after every change until unsubscribed; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.attach();
    return () => this.unsubscribe(listener);
  }

  unsubscribe(listener: () => void): void {
    if (this.listeners.delete(listener) && this.listeners.size === 0) this.detach();
  }

  private attach(): void {
    for (const [type, handler] of this.handlers) this.machine.addEventListener(type, handler);
    this.sample = null;
    this.tick();
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
  }

  private detach(): void {
    for (const [type, handler] of this.handlers) this.machine.removeEventListener(type, handler);
    clearInterval(this.timer);
    clearTimeout(this.notifyTimer);
    this.timer = undefined;
    this.notifyTimer = undefined;
  }

  private readonly handlers: [string, (e: Event) => void][] = [
    ['runstate', () => this.changed()],
    ['serial', (e) => {
      const text = (e as CustomEvent<{ text: string }>).detail.text;
      for (const l of this.serialListeners) l(text, false);
    }],
    ['guest-exit', (e) => {
      this.outcome = { kind: 'exit', ...(e as CustomEvent<GuestExit>).detail };
      this.changed();
    }],
    ['guest-panic', (e) => {
      this.outcome = { kind: 'panic', message: (e as CustomEvent<{ message: string }>).detail.message };
      this.changed();
    }],
    ['reset', () => {
      // A load starts a fresh serial history, a reset keeps it: read back whichever it was.
      this.outcome = null;
      this.generation++;
      for (const l of this.serialListeners) l(this.machine.serialOutput, true);
      this.sample = null;
      this.changed();
    }],
  ];

  private readMachine(): void {
    this.runstate = this.machine.runstate;
    this.program = this.machine.programName;
    this.args = this.machine.programArgs;
    this.instructions = this.machine.instructionsRetired;
  }

  private changed(): void {
    this.readMachine();
    this.notify();
  }

  /** Samples the instruction counter (for MIPS) and picks up changes made by other threads. */
  private tick(): void {
    this.readMachine();
    const now = performance.now();
    const prev = this.sample;
    this.sample = { at: now, instructions: this.instructions };
    if (this.running && prev && this.instructions >= prev.instructions && now > prev.at) {
      this.mips = (this.instructions - prev.instructions) / ((now - prev.at) * 1000);
    } else if (!this.running) {
      this.mips = null;
    }
    this.notify();
  }

  /** Tells the listeners, once for all the changes of the next few milliseconds. */
  private notify(): void {
    if (this.notifyTimer !== undefined) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      for (const listener of this.listeners) listener();
    }, NOTIFY_MS);
  }
}
