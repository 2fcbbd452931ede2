// Opens the byte sink a migration writes to, inside the migration worker: the main data channel
// (transferred here by the transport), an IndexedDB snapshot, or a file the page will download.

import { BlobSink } from '../../transport/file.js';
import { SnapshotStore } from '../../transport/idb-store.js';
import { commitSinkAsByteSink, type ByteSink } from '../../transport/bytes.js';
import { channelSink, type MigrationChannel } from '../../transport/channel.js';
import type { ChannelSet } from '../../transport/channel-set.js';
import { CHANNEL } from '../../transport/routes.js';
import type { StreamTarget } from './source-protocol.js';

export interface OpenedTarget {
  sink: ByteSink;
  /** Makes a saved stream visible (snapshot) or hands it over (file); channels just close. */
  commit(): Promise<Blob | null>;
  /** Throws away whatever was written (a failed or cancelled save never shows up). */
  abort(reason: string): Promise<void>;
  channel: MigrationChannel | null;
  /** x-multifd's extra data channels, opened (empty otherwise). */
  multifd?: MigrationChannel[];
}

export async function openTarget(target: StreamTarget, channels: ChannelSet, multifdChannels = 0): Promise<OpenedTarget> {
  switch (target.kind) {
    case 'channel': {
      if (!channels.has(CHANNEL.main)) throw new Error('no migration channel was handed to the migration thread');
      // A shallow send queue: bytes queued count as sent for the bandwidth estimate, and
      // whatever is queued when the guest stops adds to the downtime. 1 MiB keeps the wire busy.
      const channel = channels.open(CHANNEL.main, { highWaterMark: 512 << 10, lowWaterMark: 128 << 10 });
      await channel.opened;
      const t = channelSink(channel);
      const ids = Array.from({ length: multifdChannels }, (_, i) => CHANNEL.multifdBase + i);
      await channels.whenAll(ids);
      const multifd = ids.map((id) => channels.open(id, { highWaterMark: 512 << 10, lowWaterMark: 128 << 10 }));
      await Promise.all(multifd.map((c) => c.opened));
      return {
        sink: commitSinkAsByteSink(t),
        channel,
        multifd,
        commit: async () => {
          await t.commit();
          return null;
        },
        abort: (reason) => t.abort(reason),
      };
    }
    case 'idb': {
      const store = await SnapshotStore.open();
      const t = await store.createSink(target.name);
      return {
        sink: commitSinkAsByteSink(t),
        channel: null,
        commit: async () => {
          await t.commit();
          store.close();
          return null;
        },
        abort: async (reason) => {
          await t.abort(reason).catch(() => {});
          store.close();
        },
      };
    }
    case 'file': {
      const t = new BlobSink(target.name);
      return {
        sink: commitSinkAsByteSink(t),
        channel: null,
        commit: async () => {
          await t.commit();
          return t.blob;
        },
        abort: () => t.abort(),
      };
    }
  }
}
