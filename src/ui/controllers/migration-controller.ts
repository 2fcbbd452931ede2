// Gives an element the MigrationService from context and re-renders it when the migration (or the
// peer list) changes, at most every `intervalMs`: during a migration the service says 'change'
// five times a second and the incoming side on every chunk it receives.

import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { migrationContext } from '../contexts/migration-context.js';
import type { MigrationView, SignalingView } from '../services/migration-view.js';
import { ContextSubscription } from './context-subscription.js';

export interface MigrationControllerOptions {
  /** Shortest time between two updates (default 100 ms). */
  intervalMs?: number;
  /** Called (throttled like the update) on every change, and when the service arrives. */
  onChange?: () => void;
}

export class MigrationController implements ReactiveController {
  private readonly subscription: ContextSubscription<MigrationView>;
  private signaling: SignalingView | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dirty = false;
  private readonly intervalMs: number;

  constructor(
    private readonly host: ReactiveControllerHost & HTMLElement,
    private readonly opts: MigrationControllerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 100;
    this.subscription = new ContextSubscription(host, migrationContext, {
      listen: (m, on) => this.listen(m, on),
      arrived: () => this.changed(),
    });
    // Added after the subscription, so it stops listening before the timer is dropped below.
    host.addController(this);
  }

  get service(): MigrationView | undefined {
    return this.subscription.service;
  }

  hostDisconnected(): void {
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
      if (this.dirty && this.subscription.isConnected) this.fire();
    }, this.intervalMs);
  }

  private listen(m: MigrationView, on: boolean): void {
    const method = on ? 'addEventListener' : 'removeEventListener';
    m[method]('change', this.changed);
    // The signaling object stays the same for the page's life; keep the one we subscribed to.
    if (on) this.signaling = m.signaling;
    this.signaling?.[method]('peers', this.changed);
    this.signaling?.[method]('id', this.changed);
    if (!on) this.signaling = null;
  }
}
