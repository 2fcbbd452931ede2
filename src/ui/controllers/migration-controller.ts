// Gives an element the MigrationService from context and re-renders it when the migration (or the
// peer list) changes, at most every `intervalMs`: during a migration the service says 'change'
// five times a second and the incoming side on every chunk it receives.

import { ContextConsumer } from '@lit/context';
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { migrationContext } from '../contexts/migration-context.js';
import type { MigrationView, SignalingView } from '../services/migration-view.js';

export interface MigrationControllerOptions {
  /** Shortest time between two updates (default 100 ms). */
  intervalMs?: number;
  /** Called (throttled like the update) on every change, and when the service arrives. */
  onChange?: () => void;
}

export class MigrationController implements ReactiveController {
  private current: MigrationView | undefined;
  private signaling: SignalingView | null = null;
  private connected = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dirty = false;
  private readonly intervalMs: number;

  constructor(
    private readonly host: ReactiveControllerHost & HTMLElement,
    private readonly opts: MigrationControllerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 100;
    // The consumer is added first, so its context arrives before hostConnected below runs.
    new ContextConsumer(host, { context: migrationContext, subscribe: true, callback: (s) => this.use(s) });
    host.addController(this);
  }

  get service(): MigrationView | undefined {
    return this.current;
  }

  hostConnected(): void {
    this.connected = true;
    this.listen(true);
  }

  hostDisconnected(): void {
    this.connected = false;
    this.listen(false);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = false;
  }

  private readonly changed = () => {
    // Leading edge at once, then at most one trailing update per interval.
    if (this.timer !== undefined) {
      this.dirty = true;
      return;
    }
    this.fire();
  };

  private fire(): void {
    this.dirty = false;
    this.opts.onChange?.();
    this.host.requestUpdate();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dirty && this.connected) this.fire();
    }, this.intervalMs);
  }

  private listen(on: boolean): void {
    const m = this.current;
    if (!m) return;
    const method = on ? 'addEventListener' : 'removeEventListener';
    m[method]('change', this.changed);
    // The signaling object stays the same for the page's life; keep the one we subscribed to.
    if (on) this.signaling = m.signaling;
    this.signaling?.[method]('peers', this.changed);
    this.signaling?.[method]('id', this.changed);
    if (!on) this.signaling = null;
  }

  private use(service: MigrationView | undefined): void {
    if (service === this.current) return;
    if (this.connected) this.listen(false);
    this.current = service;
    if (this.connected) this.listen(true);
    this.changed();
  }
}
