// Where a worker's switchover messages travel (switchover.ts). A connection negotiates the
// switchover channel (CHANNEL.switchover), which both workers hold: the handshake and its
// round-trip probes go worker to worker on it, with no main thread on the guest's downtime. A
// connection without one (a test's stand-in peer, an older transport route list) falls back to
// the main threads' relay on the transport's control conversation. Either way each message is
// sent once, on one path, and the receiving worker writes what it heard into its shared block
// exactly as the main thread would.

import type { ChannelSet } from '../transport/channel-set.js';
import type { ControlChannel } from '../transport/control-channel.js';
import { CHANNEL } from '../transport/routes.js';
import { sendControl, type SwitchoverMessage } from './switchover.js';

export interface SwitchoverLinkOptions {
  /** The connection's channels now (postcopy recovery replaces them). */
  channels: () => ChannelSet | null;
  /** The fallback: hand the message to the main thread, which sends it on the control conversation. */
  relay: (message: SwitchoverMessage) => void;
  /** Every message the peer's worker sent on the switchover channel. */
  heard: (message: unknown) => void;
}

export class SwitchoverLink {
  private attached: ControlChannel | null = null;

  constructor(private readonly opts: SwitchoverLinkOptions) {}

  /** The worker-to-worker channel if this connection has one that can still carry a message. */
  private channel(): ControlChannel | null {
    const c = this.opts.channels()?.control(CHANNEL.switchover) ?? null;
    if (c && c !== this.attached) {
      this.attached = c;
      c.onmessage = (m) => this.opts.heard(m);
    }
    return c?.usable ? c : null;
  }

  /** Starts listening (messages that arrived before are delivered now). Call again after a reconnect. */
  listen(): void {
    const set = this.opts.channels();
    if (!set) return;
    // The thread may start before the channel arrives: attach the moment it does, so probes
    // are echoed from the start rather than only once this side first speaks. A connection
    // without the channel leaves this waiting until its set closes.
    if (set.has(CHANNEL.switchover)) this.channel();
    else set.whenAll([CHANNEL.switchover]).then(() => this.channel(), () => {});
  }

  /** A handshake message: on the switchover channel if there is one, else through the main thread. */
  send(message: SwitchoverMessage): void {
    const c = this.channel();
    if (!c) {
      this.opts.relay(message);
      return;
    }
    // x-tabmig-delay-control applies here as on the control conversation (fault tests).
    sendControl((m) => {
      if (!c.send(m)) this.opts.relay(message);
    }, message);
  }

  /** A probe or its echo, on the switchover channel only; false if there is none. */
  sendDirect(message: unknown): boolean {
    const c = this.channel();
    if (!c) return false;
    // Under x-tabmig-delay-control the probes are late too: a congested or silent network holds
    // every message, and a peer whose probes still arrive is not silent.
    sendControl((m) => void c.send(m), message);
    return true;
  }
}
