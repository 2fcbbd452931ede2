// The source's return-path thread (QEMU's source_return_path_thread): reads the destination's
// messages off the return-path channel, checks each against the message table before acting,
// and signals the migration worker through the shared block — PONG counts, SHUT with its verdict,
// or a broken return path that fails the migration.
//
// Two rules keep a misbehaving destination from hurting the page or hiding a fault:
// - PONGs are counted in the block (MigWord.PONGS) but only the first answer to a PING the source
//   sent is posted to the main thread; a destination flooding PONGs cannot flood the page.
// - A malformed or unexpected message sets MigWord.RP_ERROR (with notify) the moment it is read,
//   so the migration thread can fail the migration then, not at completion.

import { ChannelSet } from '../../transport/channel-set.js';
import { CHANNEL, isChannelMessage } from '../../transport/routes.js';
import { PcWord, PostcopyBlock, checkRequest } from '../postcopy/postcopy-block.js';
import { RAM_BLOCK_MAIN, readRecvBitmap } from '../stream/index.js';
import { MigWord, MigrationBlock } from '../migration-block.js';
import { RpMsg, StreamReader, encodeRpMessage, hex, readRpMessage, type RpMessage } from '../stream/index.js';
import type { FromReturnPath, ReturnPathStart } from './source-protocol.js';

const post = (msg: FromReturnPath) => (self as unknown as Worker).postMessage(msg);

/**
 * The PINGs the source sends: 1 at setup (QEMU's migration_thread). A start message may list
 * more (postcopy's 2, 3, 4) in `pings`; a PONG for any other value was not asked for.
 */
const SETUP_PINGS: readonly number[] = [1];
type Start = ReturnPathStart & { pings?: readonly number[] };

/** Postcopy (postcopy-ram): page requests, the received bitmap and RESUME_ACK are expected. */
let postcopy: { block: PostcopyBlock; ramLength: number; pageSize: number } | null = null;
const memo = { lastBlock: null as string | null };

function inPostcopy(b: MigrationBlock): boolean {
  const s = b.status;
  return s === 'postcopy-active' || s === 'postcopy-paused' || s === 'postcopy-recover';
}

// The return path is opened the moment it arrives: a transferred data channel drops messages
// that arrive before a listener exists, and the destination may answer PING 1 before `start`.
const eager = (id: number) => (id === CHANNEL.returnPath ? {} : undefined);
let channels = new ChannelSet({ eager });
let block: MigrationBlock | null = null;
let asked = new Set<number>(SETUP_PINGS);
let running = false;

function markBad(b: MigrationBlock, message: string): void {
  if (b.word(MigWord.RP_SHUT) !== 0) return;
  // The text first, then the word, in the same task: the migration thread fails the moment it
  // sees the word, and the page (which keeps the first error it hears as error-desc) must have
  // QEMU's text queued before the thread's own, more general one.
  post({ type: 'rp-error', message });
  b.setWord(MigWord.RP_ERROR, 1);
}

/** QEMU's text for a message the table refuses; here also for one this migration cannot use. */
function invalidMessage(msg: RpMessage): string {
  const len = encodeRpMessage(msg).length - 4;
  const h4 = (n: number) => `0x${hex(n).padStart(4, '0')}`;
  return `RP: Received invalid message ${h4(RpMsg[msg.type])} length ${h4(len)}`;
}

/**
 * The return path ended in postcopy. Page requests can no longer reach this side, so the
 * destination's guest would wait for ever on the next page it misses (and this side for a SHUT
 * that cannot come): the link is as good as lost, so postcopy pauses (QEMU pauses on a return
 * path error in postcopy) and a recovery brings a new return path. Only the current
 * connection's, while postcopy is active or recovering: the old connection's channels close
 * after a pause, perhaps while the next recovery is already under way.
 */
function lostInPostcopy(b: MigrationBlock, set: ChannelSet, pauses: number): void {
  const s = b.status;
  // A pause since this return path was served makes it an old connection's, even if the next
  // connection's channels have not reached this worker yet.
  if (postcopy && postcopy.block.word(PcWord.PAUSES) !== pauses) return;
  if ((s === 'postcopy-active' || s === 'postcopy-recover') && set === channels) b.setWord(MigWord.LINK_LOST, 1);
}

async function serve(b: MigrationBlock): Promise<void> {
  running = true;
  const set = channels;
  const pauses = postcopy?.block.word(PcWord.PAUSES) ?? 0;
  const rp = set.open(CHANNEL.returnPath);
  const reader = new StreamReader(rp);
  try {
    for (;;) {
      const msg = await readRpMessage(reader);
      if (!msg) {
        if (inPostcopy(b)) {
          lostInPostcopy(b, set, pauses);
          return;
        }
        if (b.word(MigWord.RP_SHUT) === 0) markBad(b, 'RP: the destination closed the return path before it was done');
        return;
      }
      switch (msg.type) {
        case 'PONG':
          b.bumpWord(MigWord.PONGS);
          // Only an answer to a PING we sent, once, moves LAST_PONG and reaches the event log.
          if (asked.delete(msg.value)) {
            b.setWord(MigWord.LAST_PONG, msg.value);
            post({ type: 'rp-message', name: 'PONG', value: msg.value });
          }
          break;
        case 'SHUT':
          post({ type: 'rp-message', name: 'SHUT', value: msg.error });
          b.setWord(MigWord.RP_SHUT, msg.error === 0 ? 1 : 2);
          return;
        case 'REQ_PAGES':
        case 'REQ_PAGES_ID': {
          if (!postcopy) {
            markBad(b, invalidMessage(msg));
            return;
          }
          const out = checkRequest(msg, [{ name: RAM_BLOCK_MAIN, length: postcopy.ramLength }], postcopy.pageSize, memo);
          if (!out.ok) {
            markBad(b, out.error);
            return;
          }
          for (const p of out.pages) postcopy.block.pushRequest(p);
          break;
        }
        case 'RECV_BITMAP': {
          if (!postcopy) {
            markBad(b, invalidMessage(msg));
            return;
          }
          if (b.status !== 'postcopy-recover') {
            // ram_dirty_bitmap_reload: only a recovery asked for one.
            markBad(b, `ram_dirty_bitmap_reload: incorrect state ${b.status}`);
            return;
          }
          if (msg.blockName !== RAM_BLOCK_MAIN) {
            markBad(b, `migrate_handle_rp_recv_bitmap: invalid block name '${msg.blockName}'`);
            return;
          }
          const bits = await readRecvBitmap(reader, msg.blockName, postcopy.ramLength / postcopy.pageSize);
          postcopy.block.bitmap.set(bits);
          postcopy.block.bump(PcWord.BITMAP_SEQ);
          post({ type: 'rp-message', name: 'RECV_BITMAP' });
          break;
        }
        case 'RESUME_ACK':
          if (!postcopy || msg.value !== 1) {
            markBad(b, `migrate_handle_rp_resume_ack: illegal resume_ack value ${msg.value}`);
            return;
          }
          // Both sides are active again, if a recovery was under way (QEMU's compare-and-set):
          // an acknowledgement outside one moves nothing.
          if (b.status !== 'postcopy-recover') break;
          postcopy.block.bump(PcWord.RESUME_ACK);
          post({ type: 'rp-message', name: 'RESUME_ACK', value: msg.value });
          break;
      }
    }
  } catch (e) {
    if (!inPostcopy(b)) markBad(b, e instanceof Error ? e.message : String(e));
    else lostInPostcopy(b, set, pauses);
  } finally {
    running = false;
    void set.closeAll();
    // A recovery's channel may have come while this one was still winding down.
    if (set !== channels) maybeServe();
  }
}

function maybeServe(): void {
  if (!running && block && channels.has(CHANNEL.returnPath)) void serve(block);
}

self.onmessage = (e: MessageEvent<Start | unknown>) => {
  const msg = e.data;
  if (channels.accept(msg)) {
    // handled: the channel is held (and opened) by the set
  } else if (isChannelMessage(msg)) {
    // A postcopy recovery's new connection: serve its return path from the start.
    channels = new ChannelSet({ eager });
    channels.accept(msg);
    memo.lastBlock = null;
  } else if ((msg as Start).type === 'start') {
    const s = msg as Start;
    block = new MigrationBlock(s.block);
    asked = new Set(s.pings ?? SETUP_PINGS);
    if (s.postcopy) postcopy = { block: new PostcopyBlock(s.postcopy.block), ramLength: s.postcopy.ramLength, pageSize: s.postcopy.pageSize };
  }
  maybeServe();
};
