// Gives an element the QMP client from context, and (optionally) the QMP events that arrive while
// the element is connected.

import { ContextConsumer } from '@lit/context';
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import { qmpContext } from '../contexts/qmp-context.js';
import { QMP_EVENT, executeSafely, type QmpClient, type QmpCommand, type QmpEvent, type QmpReply } from '../services/qmp-client.js';

export class QmpController implements ReactiveController {
  private current: QmpClient | undefined;
  private connected = false;

  constructor(
    private readonly host: ReactiveControllerHost & HTMLElement,
    private readonly onEvent?: (event: QmpEvent) => void,
  ) {
    new ContextConsumer(host, { context: qmpContext, subscribe: true, callback: (c) => this.use(c) });
    host.addController(this);
  }

  /** Whether a QMP client has arrived from the context. */
  get available(): boolean {
    return this.current !== undefined;
  }

  /** The events sent before now, if the client keeps a log of them (src/qmp/events.ts does). */
  get eventLog(): readonly QmpEvent[] {
    const log = (this.current?.events as { log?: unknown } | undefined)?.log;
    return Array.isArray(log) ? (log as QmpEvent[]) : [];
  }

  /** Runs a command; with no client, or when it throws, answers as QEMU would with an error. */
  execute(cmd: QmpCommand): Promise<QmpReply> {
    if (!this.current) return Promise.resolve({ error: { class: 'GenericError', desc: 'QMP is not available in this tab' } });
    return executeSafely(this.current, cmd);
  }

  hostConnected(): void {
    this.connected = true;
    this.listen(this.current, true);
  }

  hostDisconnected(): void {
    this.connected = false;
    this.listen(this.current, false);
  }

  private readonly handleEvent = (e: Event) => {
    this.onEvent?.((e as CustomEvent<QmpEvent>).detail);
  };

  private listen(client: QmpClient | undefined, on: boolean): void {
    if (!client || !this.onEvent) return;
    if (on) client.events.addEventListener(QMP_EVENT, this.handleEvent);
    else client.events.removeEventListener(QMP_EVENT, this.handleEvent);
  }

  private use(client: QmpClient | undefined): void {
    if (client === this.current) return;
    if (this.connected) this.listen(this.current, false);
    this.current = client;
    if (this.connected) this.listen(client, true);
    this.host.requestUpdate();
  }
}
