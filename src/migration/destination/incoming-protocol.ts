// Messages between the main thread's IncomingMigration and the incoming thread (incoming.worker,
// or an IncomingThread driven directly by a test). What the threads share beyond these (status,
// counters, the runstate decision, the switchover verdict, hold points) is in the incoming block.

import type { MigrationStatus } from '../state.js';
import type { MigrationOptionsPlain } from '../options.js';
import type { SwitchoverMessage } from '../switchover.js';

export type StreamSourceSpec =
  /** The connection's channels arrive as transport ChannelMessages (main 0, return path 1, …). */
  | { kind: 'channel' }
  | { kind: 'idb'; name: string }
  | { kind: 'file'; name: string; blob: Blob };

export interface IncomingStart {
  type: 'start';
  ram: SharedArrayBuffer;
  deviceState: SharedArrayBuffer;
  /** The machine's control block: the thread starts the guest through it (guest/control-block.ts). */
  control: SharedArrayBuffer;
  /** The incoming block (incoming-block.ts). */
  block: SharedArrayBuffer;
  /** One byte per page (page-state.ts): RECEIVED as pages land. Absent: not tracked. */
  pageState?: SharedArrayBuffer | null;
  /** The stream log (stream-log.ts): each section and command as the loadvm loop reads it. */
  streamLog?: SharedArrayBuffer | null;
  /** The machine's postcopy page gate (guest/page-gate.ts). Absent: no postcopy on this side. */
  pageGate?: SharedArrayBuffer | null;
  options: MigrationOptionsPlain;
  source: StreamSourceSpec;
  machineType: string;
  /**
   * Whether the switchover handshake runs (DESIGN §8). Default: for a channel source yes, for a
   * saved stream no. Test stand-ins that play the destination for a source under test turn it
   * off, so nothing but PONGs goes back unless the test says so.
   */
  handshake?: boolean;
  /**
   * How long the channels stay up after a failed load so the 'failed' message reaches the source
   * first (default 500 ms). The stream fuzzer sets 0: nothing listens there.
   */
  failedLingerMs?: number;
}

export type ToIncoming =
  | IncomingStart
  /** The tab stops waiting (or the link ended): a load in progress fails; after 'ready' the machine is kept paused. */
  | { type: 'cancel'; reason: string }
  /** The source's keepalive arrived on the control conversation: it lives, though its stream may be quiet. */
  | { type: 'alive' }
  /** Postcopy: the link broke (or migrate-pause): pause and wait for migrate-recover. */
  | { type: 'link-lost'; reason: string }
  /** Fault tests (x-tabmig-close-return-path): hang up the return path as a failing destination would. */
  | { type: 'close-return-path' }
  /** x-tabmig-delay-control changed (0, 0: off): the handshake messages this worker sends wait that long. */
  | { type: 'control-delay'; minMs: number; maxMs: number };

export type FromIncoming =
  /** The block's status moved (the block holds the truth; this says when, and why on failure). */
  | { type: 'status'; status: MigrationStatus; error?: string }
  /** Bytes read and pages written so far (now and then, for the UI; exact values are in the block). */
  | { type: 'progress'; bytes: number; pages: number }
  /** A command arrived (OPEN_RETURN_PATH, PING …), for the event log. */
  | { type: 'command'; name: string; value?: number }
  /** The whole stream loaded and was checked; runstate is the source's globalstate, null if none. */
  | { type: 'loaded'; runstate: string | null; bytes: number }
  /** The thread put `to` into the control block (it was `from`): the main thread announces it. */
  | { type: 'runstate'; from: string; to: string }
  /** A handshake message for the main thread to send to the source on the link's control conversation. */
  | { type: 'switchover'; message: SwitchoverMessage }
  /** The source said this on the switchover channel; the thread already acted on it (for the log). */
  | { type: 'heard'; message: SwitchoverMessage }
  /**
   * The link broke after 'ready' and before a verdict: the complete machine is kept paused, the
   * status left 'active' for the main thread to settle once it knows what the source did.
   */
  | { type: 'in-doubt' }
  /** The thread is finished: nothing more will be posted. */
  | { type: 'done' };
