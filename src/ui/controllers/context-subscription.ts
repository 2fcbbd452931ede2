// The part every controller here shares: take a service from a context, listen to it while the host
// is connected, move the listening over when the context hands out a different service, and tell
// the owner that the service changed.

import { ContextConsumer, type Context } from '@lit/context';
import type { ReactiveController, ReactiveControllerHost } from 'lit';

export interface ContextSubscriptionHooks<T> {
  /** Starts (`on`) or stops listening to `service`; only called while the host is connected. */
  listen(service: T, on: boolean): void;
  /** Called after a different service (or none) arrived from the context. */
  arrived(): void;
}

export class ContextSubscription<T> implements ReactiveController {
  private current: T | undefined;
  private connected = false;

  constructor(
    host: ReactiveControllerHost & HTMLElement,
    context: Context<unknown, T | undefined>,
    private readonly hooks: ContextSubscriptionHooks<T>,
  ) {
    // The consumer is added first, so its context arrives before hostConnected below runs.
    new ContextConsumer(host, { context, subscribe: true, callback: (s) => this.use(s) });
    host.addController(this);
  }

  get service(): T | undefined {
    return this.current;
  }

  /** Whether the host is connected (and so listening to the service, if there is one). */
  get isConnected(): boolean {
    return this.connected;
  }

  hostConnected(): void {
    this.connected = true;
    this.listen(true);
  }

  hostDisconnected(): void {
    this.connected = false;
    this.listen(false);
  }

  private listen(on: boolean): void {
    if (this.current !== undefined) this.hooks.listen(this.current, on);
  }

  private use(service: T | undefined): void {
    if (service === this.current) return;
    if (this.connected) this.listen(false);
    this.current = service;
    if (this.connected) this.listen(true);
    this.hooks.arrived();
  }
}

/** A service that calls its listeners after every change. */
export interface Subscribable {
  subscribe(listener: () => void): unknown;
  unsubscribe(listener: () => void): void;
}

/** Gives an element a Subscribable service from context and re-renders it whenever the service changes. */
export class SubscribableController<T extends Subscribable> {
  private readonly subscription: ContextSubscription<T>;

  constructor(host: ReactiveControllerHost & HTMLElement, context: Context<unknown, T | undefined>) {
    const changed = () => host.requestUpdate();
    this.subscription = new ContextSubscription(host, context, {
      listen: (service, on) => {
        if (on) service.subscribe(changed);
        else service.unsubscribe(changed);
      },
      arrived: changed,
    });
  }

  get service(): T | undefined {
    return this.subscription.service;
  }
}
