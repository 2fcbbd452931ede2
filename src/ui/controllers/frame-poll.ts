// Reads shared state once per animation frame while the host is connected, and asks the host to
// update only when the read found a change. The controllers that show what workers write into
// shared memory (round records, the stream log) use it: nothing tells the page when a worker
// writes, and a hidden tab gets no frames, so it does no work.

import type { ReactiveController, ReactiveControllerHost } from 'lit';

export class FramePoll implements ReactiveController {
  private frame = 0;

  constructor(
    private readonly host: ReactiveControllerHost,
    /** Reads the shared state; true if what the host shows changed. */
    private readonly poll: () => boolean,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    const tick = () => {
      if (this.poll()) this.host.requestUpdate();
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  hostDisconnected(): void {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}
