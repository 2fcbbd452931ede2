// Gives an element this tab's stream log (stream-log.ts) as rows: the migration worker (source)
// or the incoming worker (destination) writes each section and command into shared memory; this
// reads three atomic words once per animation frame and re-reads the entries (a few hundred at
// most) only when they moved, then asks the host to update. No message per section, no
// query-migrate; a hidden tab gets no frames and does nothing.

import type { ReactiveControllerHost } from 'lit';
import { StreamLogSide } from '../../migration/stream-log.js';
import type { StreamLogView } from '../services/migration-view.js';
import { rowsFromLog, type StreamRow } from '../stream-rows.js';
import { FramePoll } from './frame-poll.js';
import { MigrationController } from './migration-controller.js';

export class StreamLogController {
  readonly migration: MigrationController;
  private log: StreamLogView | null = null;
  private generation = -1;
  private seq = -1;
  /** The rows of the current (or last) migration's stream, in order. */
  rows: StreamRow[] = [];
  /** Which side this tab was: 'source', 'destination', or null before any migration. */
  side: 'source' | 'destination' | null = null;
  /** Entries the ring no longer holds (a very long migration). */
  dropped = 0;

  constructor(host: ReactiveControllerHost & HTMLElement) {
    this.migration = new MigrationController(host, { intervalMs: 1000 });
    new FramePoll(host, () => this.poll());
  }

  /** Re-reads the log if it moved; true if the rows changed. */
  private poll(): boolean {
    const log = this.migration.service?.streamLog ?? null;
    if (!log) return false;
    const generation = log.generation;
    const seq = log.seq;
    if (log === this.log && generation === this.generation && seq === this.seq) return false;
    this.log = log;
    this.generation = generation;
    this.seq = seq;
    const side = log.side;
    this.side = side === StreamLogSide.SOURCE ? 'source' : side === StreamLogSide.DESTINATION ? 'destination' : null;
    this.dropped = Math.max(0, log.count - log.capacity);
    this.rows = rowsFromLog(log.list());
    return true;
  }
}
