// Messages between the main thread's migration service and the source-side workers
// (migration.worker and return-path.worker). Everything that changes quickly or must be agreed
// between threads (status, counters, the return path's SHUT) lives in the MigrationBlock instead.

import type { MigrationOptionsPlain } from '../options.js';
import type { MigrationStatus } from '../state.js';
import type { RunState } from '../../guest/runstate.js';
import type { SwitchoverMessage } from '../switchover.js';

/** Where the stream goes. Channels themselves arrive as transport ChannelMessages. */
export type StreamTarget =
  | { kind: 'channel' }
  | { kind: 'idb'; name: string }
  | { kind: 'file'; name: string };

export interface SourceStart {
  type: 'start';
  ram: SharedArrayBuffer;
  dirtyLog: SharedArrayBuffer;
  control: SharedArrayBuffer;
  deviceState: SharedArrayBuffer;
  block: SharedArrayBuffer;
  options: MigrationOptionsPlain;
  target: StreamTarget;
  machineType: string;
  /** Open the return path (capability return-path, and never for a file). */
  returnPath: boolean;
  /** One byte per guest page (PageState, page-state.ts): RAM save writes clean, dirty, sent. */
  pageState: SharedArrayBuffer;
  /** The round-record ring (RoundRecords, round-records.ts): one record per dirty sync. */
  rounds: SharedArrayBuffer;
  /** The stream log (stream-log.ts): each section and command as the savevm loop writes it. */
  streamLog?: SharedArrayBuffer | null;
  /** postcopy-ram: the postcopy block (page requests, start request, recovery words). */
  postcopy?: SharedArrayBuffer;
}

export type ToSource =
  | SourceStart
  /** max-bandwidth changed during the migration (bytes per second, 0 = unlimited). */
  | { type: 'set-rate-limit'; bytesPerSecond: number }
  /** downtime-limit changed during the migration (ms): QEMU's thread reads it at every update. */
  | { type: 'set-downtime-limit'; ms: number }
  /** max-postcopy-bandwidth changed (bytes per second, 0 = unlimited): the scan after the switch. */
  | { type: 'set-postcopy-rate-limit'; bytesPerSecond: number }
  /** migrate-pause on the source: break the link on purpose (postcopy pauses). */
  | { type: 'pause' }
  /** migrate_cancel: the status is already 'cancelling'; shut the stream down. */
  | { type: 'cancel' }
  /** A round-trip probe relayed on the control conversation came back after `ms` (switchover-cost.ts). */
  | { type: 'rtt'; ms: number; offset?: number; id?: number; received?: number }
  /** The destination said something on the control conversation (a keepalive echo, the handshake): it lives. */
  | { type: 'alive' }
  /** x-tabmig-delay-control changed (0, 0: off): the handshake messages this worker sends wait that long. */
  | { type: 'control-delay'; minMs: number; maxMs: number };

export type FromSource =
  /** The worker moved the status (compare-and-set in the block); error explains a 'failed'. */
  | { type: 'status'; from: MigrationStatus; to: MigrationStatus; error?: string }
  /** The worker changed the machine's runstate through the control block. */
  | { type: 'runstate'; from: RunState; to: RunState }
  /** A `file:` migration finished: the stream, for the page to download. */
  | { type: 'file'; name: string; blob: Blob }
  /**
   * A switchover message for the destination (commit or abort): the main thread sends it on the
   * transport's control conversation as it is. The worker decided it; the main thread carries it.
   */
  | { type: 'switchover'; message: SwitchoverMessage }
  /** Send a round-trip probe now on the control conversation (the answer comes back as ToSource 'rtt'). */
  | { type: 'probe'; id?: number }
  /** The destination said this on the switchover channel; the worker already acted on it (for the log). */
  | { type: 'heard'; message: SwitchoverMessage }
  /** Something worth the event log while the migration runs (convergence, throttle). */
  | { type: 'log'; text: string }
  /** Everything is cleaned up; the worker may be terminated. */
  | { type: 'finished' };

export interface ReturnPathStart {
  type: 'start';
  block: SharedArrayBuffer;
  /** postcopy-ram: the postcopy block (postcopy/postcopy-block.ts) and the RAM block's shape. */
  postcopy?: { block: SharedArrayBuffer; ramLength: number; pageSize: number };
}

export type FromReturnPath =
  | { type: 'rp-error'; message: string }
  | { type: 'rp-message'; name: string; value?: number };
