// Gives an element the round records of the outgoing migration (DESIGN §9) as a growing list.
// The migration worker appends to a shared ring at every dirty sync; nothing tells the page, so
// this polls the ring's `count` and `generation` (two atomic loads) once per animation frame
// while the host is connected, copies only the new records, and asks for an update only when
// something changed. Hidden tabs get no frames and so do no work; the ring keeps what they missed.

import type { ReactiveControllerHost } from 'lit';
import type { RoundRecord } from '../../migration/round-records.js';
import type { MigrationView, RoundRecordsView } from '../services/migration-view.js';
import { FramePoll } from './frame-poll.js';
import { MigrationController } from './migration-controller.js';

export class RoundsController {
  /** The migration service from context (for the element's other reads). */
  readonly migration: MigrationController;
  private ring: RoundRecordsView | null = null;
  private generation = -1;
  private seen = 0;
  private list: RoundRecord[] = [];

  constructor(host: ReactiveControllerHost & HTMLElement) {
    // Status changes (a new migration, the end of one) still re-render through the service.
    this.migration = new MigrationController(host, { intervalMs: 200 });
    new FramePoll(host, () => this.poll());
  }

  get service(): MigrationView | undefined {
    return this.migration.service;
  }

  /** Every record of the current (or last) outgoing migration, oldest first. */
  get records(): readonly RoundRecord[] {
    this.poll();
    return this.list;
  }

  /** Pulls new records from the ring; true if the list changed. */
  private poll(): boolean {
    const ring = this.service?.rounds ?? null;
    if (!ring) {
      if (this.ring === null) return false;
      this.ring = null;
      this.list = [];
      return true;
    }
    const generation = ring.generation;
    const count = ring.count;
    if (ring === this.ring && generation === this.generation && count === this.seen) return false;
    if (ring !== this.ring || generation !== this.generation || count < this.seen) {
      // Another service, or a new migration started over: drop what was cached.
      this.ring = ring;
      this.generation = generation;
      this.seen = 0;
      this.list = [];
    }
    // Only up to the count read above: a record appended meanwhile is taken on the next frame.
    // Records the ring no longer holds (over its capacity behind) are skipped, as it drops them.
    const fresh: RoundRecord[] = [];
    for (let i = Math.max(this.seen, count - ring.capacity); i < count; i++) {
      const r = ring.get(i);
      if (r) fresh.push(r);
    }
    // A new array, so the host's render sees a changed value.
    this.list = [...this.list, ...fresh].slice(-ring.capacity);
    this.seen = count;
    return true;
  }
}
