// The destination's incoming thread (QEMU's process_incoming_migration_co): reads the stream
// from the main channel, a saved snapshot or a file; writes pages straight into shared guest RAM
// and device state into a staging copy that replaces the real one only once everything loaded.
// It answers the return path (PONG, and SHUT at the end) and never starts the guest itself.

import { DEVICES, DeviceState } from '../../guest/device-state.js';
import { PAGE_SIZE } from '../../guest/memory-map.js';
import { RUN_STATES } from '../../guest/runstate.js';
import { blobSource } from '../../transport/file.js';
import { SnapshotStore } from '../../transport/idb-store.js';
import { openChannel, type MigrationChannel } from '../../transport/channel.js';
import { isChannelMessage } from '../../transport/routes.js';
import { MigrationOptions } from '../options.js';
import {
  RAM_BLOCK_MAIN,
  RamReader,
  StreamReader,
  deviceLoader,
  encodeRpMessage,
  globalStateLoader,
  isZeroPage,
  loadStream,
  ramLoader,
  type ByteSource,
  type MigCommand,
  type RamVisitor,
} from '../stream/index.js';
import type { FromIncoming, IncomingStart, ToIncoming } from './incoming-protocol.js';

const post = (msg: FromIncoming) => (self as unknown as Worker).postMessage(msg);

let start: IncomingStart | null = null;
const channels = new Map<number, RTCDataChannel | MessagePort>();
let launched = false;
let reader: StreamReader | null = null;

/** Writes received pages into guest RAM; a zero page only touches RAM that is not zero already. */
function ramVisitor(ram: Uint8Array, counts: { pages: number }): RamVisitor {
  return {
    page(_block, offset, data) {
      ram.set(data, offset);
      counts.pages++;
    },
    zeroPage(_block, offset, fill) {
      // QEMU's ram_handle_compressed: leave an already-zero page alone (word compare, fast).
      if (fill !== 0 || !isZeroPage(ram, offset, PAGE_SIZE)) ram.fill(fill, offset, offset + PAGE_SIZE);
      counts.pages++;
    },
  };
}

async function openSource(s: IncomingStart): Promise<{ source: ByteSource; rp: MigrationChannel | null; close(): void }> {
  switch (s.source.kind) {
    case 'channel': {
      const main = openChannel(channels.get(0)!);
      const rpPort = channels.get(1);
      const rp = rpPort ? openChannel(rpPort) : null;
      await main.opened;
      return { source: main, rp, close: () => void main.close().catch(() => {}) };
    }
    case 'idb': {
      const store = await SnapshotStore.open();
      const src = await store.openSource(s.source.name);
      return { source: src, rp: null, close: () => store.close() };
    }
    case 'file':
      return { source: blobSource(s.source.blob), rp: null, close: () => {} };
  }
}

async function run(s: IncomingStart): Promise<void> {
  launched = true;
  const options = MigrationOptions.fromPlain(s.options);
  const ram = new Uint8Array(s.ram);
  const staging = new DeviceState();
  staging.bytes.set(new DeviceState(s.deviceState).bytes);
  let runstate: string | null = null;
  let rpOpen = false;
  let opened: Awaited<ReturnType<typeof openSource>> | null = null;
  const counts = { pages: 0 };
  const sendRp = (bytes: Uint8Array) => {
    if (rpOpen && opened?.rp) void opened.rp.write(bytes).catch(() => {});
  };
  const progress = setInterval(() => post({ type: 'progress', bytes: reader?.received ?? 0, pages: counts.pages }), 250);
  try {
    opened = await openSource(s);
    reader = new StreamReader(opened.source);
    const loaders = [
      ramLoader(new RamReader(reader, [{ name: RAM_BLOCK_MAIN, length: ram.length }]), ramVisitor(ram, counts)),
      globalStateLoader(RUN_STATES, (r) => (runstate = r)),
      ...DEVICES.map((spec) => deviceLoader(spec, staging)),
    ];
    const onCommand = (cmd: MigCommand) => {
      switch (cmd.type) {
        case 'OPEN_RETURN_PATH':
          if (!opened?.rp) throw new Error('Unable to open return-path for postcopy');
          rpOpen = true;
          post({ type: 'command', name: cmd.type });
          return;
        case 'PING':
          sendRp(encodeRpMessage({ type: 'PONG', value: cmd.value }));
          post({ type: 'command', name: cmd.type, value: cmd.value });
          return;
        default:
          throw new Error(`tabmig does not support the migration command ${cmd.type} yet`);
      }
    };
    await loadStream(reader, {
      loaders,
      machineType: s.machineType,
      footers: options.sendSectionFooter,
      requireConfiguration: options.sendConfiguration,
      onCommand,
    });
    new DeviceState(s.deviceState).bytes.set(staging.bytes);
    sendRp(encodeRpMessage({ type: 'SHUT', error: 0 }));
    post({ type: 'loaded', runstate, bytes: reader.received });
  } catch (e) {
    sendRp(encodeRpMessage({ type: 'SHUT', error: 1 }));
    post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
  } finally {
    clearInterval(progress);
    // The source closes the channels once it has our SHUT; the main thread drops the link later.
    if (!(opened?.rp && rpOpen)) opened?.close();
  }
}

function maybeLaunch(): void {
  if (launched || !start) return;
  // Both channels are posted in one task by the transport; wait for the return path too.
  if (start.source.kind === 'channel' && !(channels.has(0) && channels.has(1))) return;
  void run(start);
}

self.onmessage = (e: MessageEvent<ToIncoming | unknown>) => {
  const msg = e.data;
  if (isChannelMessage(msg)) {
    channels.set(msg.id, msg.channel);
    maybeLaunch();
    return;
  }
  const m = msg as ToIncoming;
  if (m.type === 'start') {
    start = m;
    maybeLaunch();
  } else if (m.type === 'cancel') {
    reader?.shutdown();
  }
};
