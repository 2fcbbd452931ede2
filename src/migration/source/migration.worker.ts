// The migration worker (source side): receives its shared buffers, options and the channels the
// transport transferred (main, postcopy preempt, multifd: every one of this migration's
// connection is held in one ChannelSet), then runs the migration thread once the main channel
// is here. See migration-thread.ts.

import { ChannelSet } from '../../transport/channel-set.js';
import { CHANNEL, isChannelMessage } from '../../transport/routes.js';
import { MigrationBlock } from '../migration-block.js';
import { setControlDelay } from '../switchover.js';
import { MigrationThread } from './migration-thread.js';
import type { FromSource, SourceStart, ToSource } from './source-protocol.js';
import { openTarget, type OpenedTarget } from './stream-target.js';

const post = (msg: FromSource) => (self as unknown as Worker).postMessage(msg);

let start: SourceStart | null = null;
// The switchover channel carries messages; it is wrapped on arrival so none is lost.
const messages = [CHANNEL.switchover];
let channels = new ChannelSet({ messages });
let thread: MigrationThread | null = null;
let launched = false;
/** migrate_cancel arrived before the thread existed (the target was still opening). */
let cancelled = false;

async function launch(s: SourceStart): Promise<void> {
  launched = true;
  let target: OpenedTarget | undefined;
  try {
    const multifd = s.target.kind === 'channel' && s.options.capabilities['x-multifd'] ? s.options.parameters['x-multifd-channels'] : 0;
    target = await openTarget(s.target, channels, multifd);
    if (cancelled) throw new Error('migration cancelled');
  } catch (e) {
    // Could not even open the stream: end from setup (or the cancel), the guest never stopped.
    target?.abort('cancelled').catch(() => {});
    const block = new MigrationBlock(s.block);
    const message = e instanceof Error ? e.message : String(e);
    if (block.compareAndSet('setup', 'failed')) post({ type: 'status', from: 'setup', to: 'failed', error: message });
    else if (block.compareAndSet('cancelling', 'cancelled')) post({ type: 'status', from: 'cancelling', to: 'cancelled' });
    if (s.target.kind === 'channel') post({ type: 'switchover', message: { switchover: 'abort', reason: message, migration: block.migrationId } });
    await channels.closeAll(message);
    post({ type: 'finished' });
    return;
  }
  thread = new MigrationThread(s, target, post, channels);
  // The thread commits or aborts the main channel itself; the others go with the link.
  await thread.run();
}

function maybeLaunch(): void {
  if (launched || !start) return;
  if (start.target.kind === 'channel' && !channels.has(CHANNEL.main)) return;
  void launch(start);
}

self.onmessage = (e: MessageEvent<ToSource | unknown>) => {
  const msg = e.data;
  if (channels.accept(msg)) {
    maybeLaunch();
    return;
  }
  if (isChannelMessage(msg)) {
    // A postcopy recovery's new connection (migrate with resume: true).
    if (thread) {
      const set = new ChannelSet({ messages });
      set.accept(msg);
      channels = set;
      thread.reconnect(set);
    }
    return;
  }
  const m = msg as ToSource;
  switch (m.type) {
    case 'start':
      start = m;
      maybeLaunch();
      return;
    case 'set-rate-limit':
      thread?.setRateLimit(m.bytesPerSecond);
      return;
    case 'set-downtime-limit':
      thread?.setDowntimeLimit(m.ms);
      return;
    case 'set-postcopy-rate-limit':
      thread?.setPostcopyRateLimit(m.bytesPerSecond);
      return;
    case 'pause':
      thread?.pause();
      return;
    case 'rtt':
      thread?.addRtt(m.ms, m.offset, m.id, m.received);
      return;
    case 'cancel':
      cancelled = true;
      thread?.cancel();
      return;
    case 'alive':
      thread?.destinationAlive();
      return;
    case 'control-delay':
      setControlDelay(m.minMs, m.maxMs);
      return;
  }
};
