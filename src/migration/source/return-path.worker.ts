// The source's return-path thread (QEMU's source_return_path_thread): reads the destination's
// messages off the return-path channel, checks each against the message table before acting,
// and signals the migration worker through the shared block — PONG counts, SHUT with its verdict,
// or a broken return path that fails the migration.

import { openChannel } from '../../transport/channel.js';
import { isChannelMessage } from '../../transport/routes.js';
import { MigWord, MigrationBlock } from '../migration-block.js';
import { StreamReader, readRpMessage } from '../stream/index.js';
import type { FromReturnPath, ReturnPathStart } from './source-protocol.js';

const post = (msg: FromReturnPath) => (self as unknown as Worker).postMessage(msg);

let block: MigrationBlock | null = null;
let channel: RTCDataChannel | MessagePort | null = null;
let running = false;

function markBad(message: string): void {
  if (!block || block.word(MigWord.RP_SHUT) !== 0) return;
  post({ type: 'rp-error', message });
  block.setWord(MigWord.RP_ERROR, 1);
}

async function serve(b: MigrationBlock, ch: RTCDataChannel | MessagePort): Promise<void> {
  running = true;
  const rp = openChannel(ch);
  const reader = new StreamReader(rp);
  try {
    for (;;) {
      const msg = await readRpMessage(reader);
      if (!msg) {
        if (b.word(MigWord.RP_SHUT) === 0) markBad('RP: the destination closed the return path before it was done');
        return;
      }
      switch (msg.type) {
        case 'PONG':
          b.setWord(MigWord.LAST_PONG, msg.value);
          b.bumpWord(MigWord.PONGS);
          post({ type: 'rp-message', name: 'PONG', value: msg.value });
          break;
        case 'SHUT':
          post({ type: 'rp-message', name: 'SHUT', value: msg.error });
          b.setWord(MigWord.RP_SHUT, msg.error === 0 ? 1 : 2);
          return;
        default:
          // Page requests and resume messages belong to postcopy, which this migration is not.
          markBad(`RP: Received unexpected message ${msg.type} on the return path of a precopy migration`);
          return;
      }
    }
  } catch (e) {
    markBad(e instanceof Error ? e.message : String(e));
  } finally {
    rp.close().catch(() => {});
  }
}

function maybeServe(): void {
  if (!running && block && channel) void serve(block, channel);
}

self.onmessage = (e: MessageEvent<ReturnPathStart | unknown>) => {
  const msg = e.data;
  if (isChannelMessage(msg)) {
    channel = msg.channel;
  } else if ((msg as ReturnPathStart).type === 'start') {
    block = new MigrationBlock((msg as ReturnPathStart).block);
  }
  maybeServe();
};
