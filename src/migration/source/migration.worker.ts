// The migration worker (source side): receives its shared buffers, options and the transferred
// main data channel, then runs the migration thread. See migration-thread.ts.

import { isChannelMessage } from '../../transport/routes.js';
import { MigrationBlock } from '../migration-block.js';
import { MigrationThread } from './migration-thread.js';
import type { FromSource, SourceStart, ToSource } from './source-protocol.js';
import { openTarget } from './stream-target.js';

const post = (msg: FromSource) => (self as unknown as Worker).postMessage(msg);

let start: SourceStart | null = null;
let mainChannel: RTCDataChannel | MessagePort | null = null;
let thread: MigrationThread | null = null;
let launched = false;

async function launch(s: SourceStart): Promise<void> {
  launched = true;
  let target;
  try {
    target = await openTarget(s.target, mainChannel);
  } catch (e) {
    // Could not even open the stream: fail from setup, the guest never stopped.
    const block = new MigrationBlock(s.block);
    const message = e instanceof Error ? e.message : String(e);
    if (block.compareAndSet('setup', 'failed')) post({ type: 'status', from: 'setup', to: 'failed', error: message });
    post({ type: 'finished' });
    return;
  }
  thread = new MigrationThread(s, target, post);
  await thread.run();
}

function maybeLaunch(): void {
  if (launched || !start) return;
  if (start.target.kind === 'channel' && !mainChannel) return;
  void launch(start);
}

self.onmessage = (e: MessageEvent<ToSource | unknown>) => {
  const msg = e.data;
  if (isChannelMessage(msg)) {
    if (msg.id === 0) mainChannel = msg.channel;
    maybeLaunch();
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
    case 'cancel':
      if (thread) thread.cancel();
      return;
  }
};
