// x-incoming-idle-timeout: a destination whose source went silent (a tab frozen, a network that
// black-holes instead of closing) would otherwise wait for ever, holding the tab in 'inmigrate'.
// QEMU has no such timer (its socket eventually errors); a browser tab needs one.

import { StreamIOError, type ByteSource, type StreamReader } from '../stream/index.js';

export function idleTimeoutText(ms: number): string {
  return `No data from the migration source for ${ms} ms (x-incoming-idle-timeout): giving up`;
}

/**
 * A ByteSource that counts as activity every chunk `inner` gives. Once armed, `ms` without one
 * fails the reader with a clear error (and shuts it down, so a pending read returns at once).
 */
export class IdleWatch implements ByteSource {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private reader: StreamReader | null = null;
  private fired = false;

  constructor(
    private readonly inner: ByteSource,
    private readonly ms: number,
  ) {}

  get timedOut(): boolean {
    return this.fired;
  }

  /** Starts watching `reader` (which reads from this source). No-op when the timeout is 0. */
  arm(reader: StreamReader): void {
    this.reader = reader;
    this.kick();
  }

  disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.reader = null;
  }

  async read(): Promise<Uint8Array | null> {
    const chunk = await this.inner.read();
    this.kick();
    return chunk;
  }

  cancel(): void {
    this.disarm();
    this.inner.cancel?.();
  }

  /** Activity seen elsewhere (the source's keepalive): the silence starts over. */
  touch(): void {
    this.kick();
  }

  private kick(): void {
    if (!this.reader || this.ms <= 0) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const r = this.reader;
      if (!r) return;
      this.fired = true;
      r.fail(new StreamIOError(idleTimeoutText(this.ms)));
      r.shutdown();
    }, this.ms);
  }
}
