// The incoming migration's shared block: the destination's status (compare-and-set, guarded by
// the same transition table as the source's MigrationBlock), its counters, the runstate the
// incoming worker decided, the switchover verdict word and the fault-test hold points. The
// incoming worker writes it; the main thread observes it (and writes only VERDICT, AUTOSTART
// and the hold words), so query-migrate and the UI read exact numbers without asking anyone.

import { RUN_STATES, type RunState } from '../guest/runstate.js';
import { SharedBlock, sharedBlockBytes } from './shared-block.js';
import { HoldPoints } from './switchover.js';

/** Int32 words. */
export const IncomingWord = {
  STATUS: 0,
  /** The runstate the worker gave the guest, as an index into RUN_STATES; -1 until decided. */
  RUNSTATE: 1,
  /** The source's word on the switchover: Verdict (switchover.ts), written by the main thread. */
  VERDICT: 2,
  /** Three words of fault-test hold points (HoldPoints): mask, reached, release. */
  HOLD: 3,
  /** QEMU's autostart (1 unless -S, or `cont`/`stop` while inmigrate changed it); main thread. */
  AUTOSTART: 6,
  /** 1 once the source opened the return path (OPEN_RETURN_PATH). */
  RP_OPEN: 7,
  /** Where the switchover is: Phase. */
  PHASE: 8,
  /** PINGs answered with a PONG. */
  PONGS: 9,
  /**
   * The migration the source named when it connected (its hello; main thread): every handshake
   * message of this migration carries it, and one naming another is dropped. 0 until known.
   */
  MIGRATION: 10,
} as const;

/** Values of IncomingWord.PHASE. */
export const Phase = {
  LOADING: 0,
  /** Everything loaded and checked; 'ready' posted, waiting for the verdict. */
  READY: 1,
  /** The guest is ours (running or paused): nothing more to wait for. */
  STARTED: 2,
  /** Ended without a guest (load failure, abort, cancel). */
  DISCARDED: 3,
  /** The link went away after 'ready': the complete machine is kept paused, in doubt (status 'active'). */
  KEPT_PAUSED: 4,
} as const;

/** Float64 counters. */
export const IncomingCounter = {
  /** Bytes read from the stream so far. */
  BYTES: 0,
  /** Pages written (normal pages and zero pages alike). */
  PAGES: 1,
  ZERO_PAGES: 2,
  /** Sections loaded (START/PART/END/FULL). */
  SECTIONS: 3,
  /** Date.now() when the worker started. */
  START_TIME: 4,
  /** Milliseconds from start until the whole stream had loaded and been checked. */
  LOAD_TIME: 5,
  /** Milliseconds from 'ready' to the verdict (the destination's share of the downtime). */
  VERDICT_WAIT: 6,
} as const;

const WORDS = 16;
const COUNTERS = 8;
export const INCOMING_BLOCK_BYTES = sharedBlockBytes(WORDS, COUNTERS);

export class IncomingBlock extends SharedBlock {
  readonly holds: HoldPoints;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(INCOMING_BLOCK_BYTES)) {
    super(buffer, WORDS, COUNTERS);
    this.holds = new HoldPoints(this.words, IncomingWord.HOLD);
    if (this.word(IncomingWord.RUNSTATE) === 0 && this.status === 'none') {
      // A fresh block: no runstate decided yet (0 is a valid RUN_STATES index).
      Atomics.store(this.words, IncomingWord.RUNSTATE, -1);
    }
  }

  /** The runstate the worker decided for the guest, or null while undecided. */
  get runstate(): RunState | null {
    const i = this.word(IncomingWord.RUNSTATE);
    return i < 0 ? null : RUN_STATES[i]!;
  }

  setRunstate(state: RunState): void {
    this.setWord(IncomingWord.RUNSTATE, RUN_STATES.indexOf(state));
  }

  get autostart(): boolean {
    return this.word(IncomingWord.AUTOSTART) === 1;
  }

  set autostart(on: boolean) {
    this.setWord(IncomingWord.AUTOSTART, on ? 1 : 0);
  }

  get verdict(): number {
    return this.word(IncomingWord.VERDICT);
  }

  /**
   * Main thread: records what the source (or the link) said, once. The first verdict wins: a link
   * that drops right after 'commit' arrived does not turn a commit into LINK_LOST.
   */
  setVerdict(v: number): boolean {
    const won = Atomics.compareExchange(this.words, IncomingWord.VERDICT, 0, v) === 0;
    if (won) Atomics.notify(this.words, IncomingWord.VERDICT);
    return won;
  }

  /** The migration the source named, or 0 while it has not. */
  get migrationId(): number {
    return this.word(IncomingWord.MIGRATION);
  }

  get phase(): number {
    return this.word(IncomingWord.PHASE);
  }
}
