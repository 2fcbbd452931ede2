// Gives an element the MachineService from context and re-renders it whenever the machine changes.

import { ContextConsumer } from '@lit/context';
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { machineContext } from '../contexts/machine-context.js';
import type { MachineService } from '../services/machine-service.js';

export class MachineController implements ReactiveController {
  private current: MachineService | undefined;
  private connected = false;
  private readonly changed = () => this.host.requestUpdate();

  constructor(private readonly host: ReactiveControllerHost & HTMLElement) {
    // The consumer is added first, so its context arrives before hostConnected below runs.
    new ContextConsumer(host, { context: machineContext, subscribe: true, callback: (s) => this.use(s) });
    host.addController(this);
  }

  get service(): MachineService | undefined {
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

  private use(service: MachineService | undefined): void {
    if (service === this.current) return;
    if (this.connected) this.current?.unsubscribe(this.changed);
    this.current = service;
    if (this.connected) service?.subscribe(this.changed);
    this.changed();
  }
}
