// Messages between the main thread's migration service and incoming.worker (destination side).

import type { MigrationOptionsPlain } from '../options.js';

export type StreamSourceSpec =
  /** The main and return-path data channels arrive as transport ChannelMessages. */
  | { kind: 'channel' }
  | { kind: 'idb'; name: string }
  | { kind: 'file'; name: string; blob: Blob };

export interface IncomingStart {
  type: 'start';
  ram: SharedArrayBuffer;
  deviceState: SharedArrayBuffer;
  options: MigrationOptionsPlain;
  source: StreamSourceSpec;
  machineType: string;
}

export type ToIncoming = IncomingStart | { type: 'cancel'; reason: string };

export type FromIncoming =
  /** Bytes read so far (now and then, for the UI). */
  | { type: 'progress'; bytes: number; pages: number }
  /** A command arrived (OPEN_RETURN_PATH, PING …), for the event log. */
  | { type: 'command'; name: string; value?: number }
  /** The whole stream loaded; runstate is the source's globalstate, null if it sent none. */
  | { type: 'loaded'; runstate: string | null; bytes: number }
  | { type: 'failed'; message: string };
