// Gives an element the snapshot list from context and re-renders it when the list changes.

import { ContextConsumer } from '@lit/context';
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { snapshotsContext } from '../contexts/snapshots-context.js';
import type { SnapshotsView } from '../services/snapshot-service.js';

export class SnapshotsController implements ReactiveController {
  private current: SnapshotsView | undefined;
  private connected = false;
  private readonly changed = () => this.host.requestUpdate();

  constructor(private readonly host: ReactiveControllerHost & HTMLElement) {
    new ContextConsumer(host, { context: snapshotsContext, subscribe: true, callback: (s) => this.use(s) });
    host.addController(this);
  }

  get service(): SnapshotsView | undefined {
    return this.current;
  }

  hostConnected(): void {
    this.connected = true;
    this.current?.subscribe(this.changed);
  }

  hostDisconnected(): void {
    this.connected = false;
    this.current?.unsubscribe(this.changed);
  }

  private use(service: SnapshotsView | undefined): void {
    if (service === this.current) return;
    if (this.connected) this.current?.unsubscribe(this.changed);
    this.current = service;
    if (this.connected) service?.subscribe(this.changed);
    this.changed();
  }
}
