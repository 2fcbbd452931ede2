// Gives an element the QMP client from context, and (optionally) the QMP events that arrive while
// the element is connected.

import type { ReactiveControllerHost } from 'lit';
import { qmpContext } from '../contexts/qmp-context.js';
import { QMP_EVENT, executeSafely, type QmpClient, type QmpCommand, type QmpEvent, type QmpReply } from '../services/qmp-client.js';
import { ContextSubscription } from './context-subscription.js';

export class QmpController {
  private readonly subscription: ContextSubscription<QmpClient>;

  constructor(
    host: ReactiveControllerHost & HTMLElement,
    private readonly onEvent?: (event: QmpEvent) => void,
  ) {
    this.subscription = new ContextSubscription(host, qmpContext, {
      listen: (client, on) => this.listen(client, on),
      arrived: () => host.requestUpdate(),
    });
  }

  private get current(): QmpClient | undefined {
    return this.subscription.service;
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

  private readonly handleEvent = (e: Event) => {
    this.onEvent?.((e as CustomEvent<QmpEvent>).detail);
  };

  private listen(client: QmpClient, on: boolean): void {
    if (!this.onEvent) return;
    if (on) client.events.addEventListener(QMP_EVENT, this.handleEvent);
    else client.events.removeEventListener(QMP_EVENT, this.handleEvent);
  }
}
