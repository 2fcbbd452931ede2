// Slow motion for a class: the migration's max-bandwidth (QEMU's rate limit, changeable live) set
// low enough that each round takes seconds, so the rounds can be watched on the memory map and the
// charts. Off, max-bandwidth goes back to what it was (QEMU's default unless changed).

import { defaultParameters } from '../migration/options-schema.js';

/** 2 MiB/s: a 24 MiB working set takes about twelve seconds in round 1. */
export const SLOW_MOTION_BANDWIDTH = 2 << 20;

export function isSlowMotion(maxBandwidth: unknown): boolean {
  return maxBandwidth === SLOW_MOTION_BANDWIDTH;
}

/** The max-bandwidth to go back to when slow motion is switched off. */
export function normalBandwidth(before: number | null): number {
  return before !== null && before !== SLOW_MOTION_BANDWIDTH ? before : (defaultParameters()['max-bandwidth'] as number);
}
