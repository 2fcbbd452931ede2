// The memory map after a migration: each page coloured by the round it was last sent in. Live,
// a page is 'dirty' from the sync that finds it until it leaves, then 'sent' until the next sync,
// so the map notes the round of every page it sees in either state on each frame it draws. Once
// the migration has ended, that is the picture a class can read at leisure: round 1 swept
// everything, later rounds only the pages the guest kept writing (its writable working set), the
// last one the stop-and-copy's.

/** Colours for rounds 1, 2, 3, 4 and 5 or later (light to dark), and for the last round. */
export const ROUND_COLOURS: readonly [number, number, number][] = [
  [0xa9, 0xc4, 0xf5],
  [0x5b, 0x8d, 0xef],
  [0x34, 0x51, 0xd1],
  [0x5a, 0x2c, 0xa8],
  [0x3b, 0x1a, 0x6e],
];
export const LAST_ROUND_COLOUR: [number, number, number] = [0xc9, 0x2a, 0x2a];
/** A page no frame saw sent (the tab was hidden meanwhile). */
export const UNSEEN_COLOUR: [number, number, number] = [0xdf, 0xe4, 0xeb];

const pack = ([r, g, b]: readonly [number, number, number]) => ((0xff << 24) | (b << 16) | (g << 8) | r) >>> 0;

export class LastSentRounds {
  private rounds: Uint16Array;
  /** The highest round noted: the last one once the migration ended. */
  last = 0;

  constructor(pages: number) {
    this.rounds = new Uint16Array(pages);
  }

  get pageCount(): number {
    return this.rounds.length;
  }

  /** A new migration: forget the last one's rounds. */
  reset(pages: number): void {
    if (pages !== this.rounds.length) this.rounds = new Uint16Array(pages);
    else this.rounds.fill(0);
    this.last = 0;
  }

  /**
   * Notes `round` for every page whose state byte is `sent`, or `toSend` (it leaves in this round,
   * or later if written again): a tab that missed frames still knows each page's round.
   */
  note(states: Uint8Array, sent: number, round: number, toSend = sent): void {
    const r = this.rounds;
    const n = Math.min(states.length, r.length);
    let any = false;
    for (let p = 0; p < n; p++) {
      const st = states[p];
      if (st === sent || st === toSend) {
        r[p] = round;
        any = true;
      }
    }
    if (any && round > this.last) this.last = round;
  }

  /** The migration ended with `round` as its last: the pages still marked sent are that round's. */
  finish(states: Uint8Array, sent: number, round: number): void {
    this.note(states, sent, round);
    let last = 0;
    for (const r of this.rounds) if (r > last) last = r;
    this.last = last;
  }

  roundOf(page: number): number {
    return this.rounds[page] ?? 0;
  }

  /** Paints every page by its round into `pixels` (RGBA packed, little-endian); returns pages per legend entry. */
  paint(pixels: Uint32Array): number[] {
    const colours = ROUND_COLOURS.map(pack);
    const lastColour = pack(LAST_ROUND_COLOUR);
    const unseen = pack(UNSEEN_COLOUR);
    const counts = new Array<number>(ROUND_COLOURS.length + 2).fill(0);
    const r = this.rounds;
    for (let p = 0; p < r.length; p++) {
      const round = r[p]!;
      let entry: number;
      if (round === 0) entry = ROUND_COLOURS.length + 1;
      else if (round === this.last && this.last > 1) entry = ROUND_COLOURS.length;
      else entry = Math.min(round, ROUND_COLOURS.length) - 1;
      counts[entry]!++;
      pixels[p] = entry === ROUND_COLOURS.length ? lastColour : entry > ROUND_COLOURS.length ? unseen : colours[entry]!;
    }
    return counts;
  }
}
