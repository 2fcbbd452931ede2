// A negotiated channel that carries small structured messages (not bytes) between the two
// workers of a migration: the switchover handshake's own channel (CHANNEL.switchover). Over
// WebRTC each message is one JSON text message; over the loopback transport, a structured clone
// on a MessagePort. Either way no main thread is on the path, so a busy page (its UI, its QMP
// dispatcher, a memory map being drawn) cannot delay a message that the guest's downtime waits
// for.
//
// Wrap the raw channel in the task it arrives in: a transferred RTCDataChannel drops 'message'
// events that fire before a listener exists. Messages that arrive before a handler is set are
// kept (a handful at most: the handshake and its probes) and handed over when one is.

import type { TransferableChannel } from './channel.js';

export class ControlChannel {
  private handler: ((message: unknown) => void) | null = null;
  private readonly inbox: unknown[] = [];
  /** Messages sent before a data channel opened: sent on 'open', in order. */
  private readonly outbox: string[] = [];
  private ended = false;

  constructor(private readonly raw: TransferableChannel) {
    if (raw instanceof MessagePort) {
      raw.onmessage = (e: MessageEvent) => this.deliver(e.data);
      raw.start();
      return;
    }
    raw.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== 'string') return; // nothing but JSON text travels here
      try {
        this.deliver(JSON.parse(e.data));
      } catch {
        // a message that is not JSON is not one of ours: ignored, as a stray control message is
      }
    };
    raw.onopen = () => {
      for (const m of this.outbox.splice(0)) this.sendRaw(m);
    };
    raw.onclose = () => {
      this.ended = true;
    };
  }

  /** Whether the channel can still carry a message (it may not have opened yet). */
  get usable(): boolean {
    if (this.ended) return false;
    if (this.raw instanceof MessagePort) return true;
    return this.raw.readyState === 'open' || this.raw.readyState === 'connecting';
  }

  /** Receives every message, including those that arrived before this call. */
  set onmessage(fn: ((message: unknown) => void) | null) {
    this.handler = fn;
    if (fn) for (const m of this.inbox.splice(0)) fn(m);
  }

  /** Sends one message; false if the channel cannot carry it (closed, or the send failed). */
  send(message: unknown): boolean {
    if (!this.usable) return false;
    if (this.raw instanceof MessagePort) {
      try {
        this.raw.postMessage(message);
        return true;
      } catch {
        return false;
      }
    }
    const text = JSON.stringify(message);
    if (this.raw.readyState === 'connecting') {
      this.outbox.push(text);
      return true;
    }
    return this.sendRaw(text);
  }

  close(): void {
    this.ended = true;
    this.handler = null;
    try {
      this.raw.close();
    } catch {
      // already closed
    }
  }

  private sendRaw(text: string): boolean {
    try {
      (this.raw as RTCDataChannel).send(text);
      return true;
    } catch {
      this.ended = true;
      return false;
    }
  }

  private deliver(message: unknown): void {
    if (this.ended && this.handler === null) return;
    if (this.handler) this.handler(message);
    else if (this.inbox.length < 64) this.inbox.push(message);
  }
}
