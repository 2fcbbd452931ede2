// The uPlot charts of one element, kept by key, and the element's width to draw them at. The
// width follows a ResizeObserver (a new width re-renders the host); the charts are destroyed
// when the host leaves the page, so a closed panel leaves no canvas or listener behind.

import type { ReactiveController, ReactiveControllerHost } from 'lit';
import type uPlot from 'uplot';

export class PlotSet implements ReactiveController {
  /** The host's content width in CSS pixels (0 until first measured). */
  width = 0;
  readonly plots = new Map<string, uPlot>();
  private readonly resize = new ResizeObserver((entries) => {
    const w = Math.floor(entries[0]?.contentRect.width ?? 0);
    if (w === this.width) return;
    this.width = w;
    this.host.requestUpdate();
  });

  constructor(private readonly host: ReactiveControllerHost & HTMLElement) {
    host.addController(this);
  }

  hostConnected(): void {
    this.resize.observe(this.host);
  }

  hostDisconnected(): void {
    this.resize.disconnect();
    this.clear();
  }

  /** Destroys every chart (the series changed shape, or the host is going). */
  clear(): void {
    for (const p of this.plots.values()) p.destroy();
    this.plots.clear();
  }
}
