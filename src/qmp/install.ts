// Puts the control plane on the page: `window.qmp(cmd)` answers as QEMU would, and every QMP event
// is dispatched on `window` as a `qmp-event` CustomEvent (detail = the event object).

import type { QmpDispatcher, QmpReply } from './dispatcher.js';
import { forwardQmpEvents, type QmpEvents } from './events.js';

export type QmpFunction = (input: unknown) => Promise<QmpReply>;

declare global {
  interface Window {
    qmp?: QmpFunction;
  }
}

/** Installs `target.qmp` and event forwarding; returns the function that removes both. */
export function installQmp(target: EventTarget & { qmp?: QmpFunction }, dispatcher: QmpDispatcher, events: QmpEvents): () => void {
  const qmp: QmpFunction = (input) => dispatcher.execute(input);
  target.qmp = qmp;
  const stopForwarding = forwardQmpEvents(events, target);
  return () => {
    stopForwarding();
    if (target.qmp === qmp) delete target.qmp;
  };
}
