// incoming.worker: the thin entry of the destination's incoming thread (incoming-thread.ts). It
// holds the connection's channels as the transport delivers them, and hands them, the start
// message and any cancel to the thread.

import { ChannelSet } from '../../transport/channel-set.js';
import { CHANNEL, isChannelMessage } from '../../transport/routes.js';
import type { FromIncoming, ToIncoming } from './incoming-protocol.js';
import { IncomingThread } from './incoming-thread.js';
import { setControlDelay } from '../switchover.js';

const scope = self as unknown as Worker;
const post = (msg: FromIncoming) => scope.postMessage(msg);

// A data channel's early messages are lost without a listener: open main and return path on arrival.
// The postcopy preempt channel too: urgent pages may come before the thread opens it.
const eager = (id: number) => (id === CHANNEL.main || id === CHANNEL.returnPath || id === CHANNEL.postcopy ? {} : undefined);
// The switchover channel carries messages; it is wrapped on arrival so none is lost.
const messages = [CHANNEL.switchover];
let channels = new ChannelSet({ eager, messages });
let thread: IncomingThread | null = null;

scope.onmessage = (e: MessageEvent<unknown>) => {
  if (channels.accept(e.data)) return;
  if (isChannelMessage(e.data)) {
    // Another connection's channel: postcopy recovery's (migrate-recover), for a paused thread.
    if (thread?.awaitingReconnect) {
      channels = new ChannelSet({ eager, messages });
      channels.accept(e.data);
      thread.reconnect(channels);
    } else {
      try {
        e.data.channel.close();
      } catch {
        // already gone
      }
    }
    return;
  }
  const m = e.data as ToIncoming;
  if (m.type === 'start' && !thread) {
    thread = new IncomingThread(m, m.source.kind === 'channel' ? channels : null, post);
    void thread.run();
  } else if (m.type === 'cancel') {
    thread?.cancel(m.reason);
  } else if (m.type === 'link-lost') {
    thread?.linkLost(m.reason);
  } else if (m.type === 'alive') {
    thread?.sourceAlive();
  } else if (m.type === 'close-return-path') {
    thread?.closeReturnPath();
  } else if (m.type === 'control-delay') {
    setControlDelay(m.minMs, m.maxMs);
  }
};
