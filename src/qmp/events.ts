// QMP events: `{event, data?, timestamp: {seconds, microseconds}}` as QEMU sends them, announced to
// listeners and kept in a bounded log for the UI's event log. The page forwards each one to
// `window` as a `qmp-event` CustomEvent (forwardQmpEvents).

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

/** The DOM event type carrying a QmpEvent as its detail, on QmpEvents and on the page's window. */
export const QMP_EVENT = 'qmp-event';

export interface QmpEventsOptions {
  /** How many events the log keeps (oldest dropped first). */
  logSize?: number;
  /** Wall clock in microseconds since the epoch (QEMU's g_get_real_time); replaceable in tests. */
  nowMicros?: () => number;
}

const DEFAULT_LOG_SIZE = 1000;

function wallClockMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export class QmpEvents extends EventTarget {
  readonly logSize: number;
  private readonly nowMicros: () => number;
  private readonly entries: QmpEvent[] = [];

  constructor(opts: QmpEventsOptions = {}) {
    super();
    this.logSize = Math.max(1, opts.logSize ?? DEFAULT_LOG_SIZE);
    this.nowMicros = opts.nowMicros ?? wallClockMicros;
  }

  /** Builds, logs and announces an event. `data` is left out when undefined, as for STOP. */
  emit(event: string, data?: Record<string, unknown>): QmpEvent {
    const us = this.nowMicros();
    const timestamp = { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
    const ev: QmpEvent = data === undefined ? { event, timestamp } : { event, data, timestamp };
    this.entries.push(ev);
    if (this.entries.length > this.logSize) this.entries.splice(0, this.entries.length - this.logSize);
    this.dispatchEvent(new CustomEvent<QmpEvent>(QMP_EVENT, { detail: ev }));
    return ev;
  }

  /** The logged events, oldest first (a copy). */
  get log(): QmpEvent[] {
    return [...this.entries];
  }

  clearLog(): void {
    this.entries.length = 0;
  }

  /** Calls fn for every event from now on; returns the unsubscribe function. */
  subscribe(fn: (ev: QmpEvent) => void): () => void {
    const listener = (e: Event) => fn((e as CustomEvent<QmpEvent>).detail);
    this.addEventListener(QMP_EVENT, listener);
    return () => this.removeEventListener(QMP_EVENT, listener);
  }
}

/**
 * Re-dispatches every event on `target` (the page's window) as a `qmp-event` CustomEvent whose
 * detail is the event object. Returns the function that stops forwarding.
 */
export function forwardQmpEvents(events: QmpEvents, target: EventTarget): () => void {
  return events.subscribe((ev) => target.dispatchEvent(new CustomEvent<QmpEvent>(QMP_EVENT, { detail: ev })));
}
