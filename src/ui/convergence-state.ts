// Whether the outgoing migration is converging, as its migration thread judged (source/
// convergence.ts writes "migration is not converging: …" and "migration is converging again" into
// the service's log): the panels read that one verdict instead of judging again, and the remedies
// a person can apply from the page, each as the QMP it sends.

import type { MigrationLogEntry, MigrationView, RoundRecord } from './services/migration-view.js';

export interface ConvergenceState {
  stuck: boolean;
  /** The thread's own sentence: rates and what is left against what is allowed. */
  why: string;
}

const STUCK = 'migration is not converging';
const AGAIN = 'migration is converging again';

/** The last verdict since the current outgoing migration's setup, or null if there is none. */
export function convergenceState(log: readonly MigrationLogEntry[]): ConvergenceState | null {
  for (let i = log.length - 1; i >= 0; i--) {
    const text = log[i]!.text;
    if (text === 'migration setup') return null;
    if (text === AGAIN) return { stuck: false, why: text };
    if (text.startsWith(STUCK)) return { stuck: true, why: text.replace(/\.? Remedies: .*$/, '.').replace(/^migration is not converging: /, '') };
  }
  return null;
}

/** The switchover decision plans to this share of downtime-limit (README, "Downtime as promised"). */
const PLANNED_SHARE = 0.6;

/**
 * A downtime-limit under which the last round's expected downtime fits what the decision plans
 * to, with a margin, in whole 100 ms; never below the current limit plus 100 ms.
 */
export function raisedDowntimeLimit(last: RoundRecord | undefined, current: number): number {
  const need = last ? (last.expectedDowntime / PLANNED_SHARE) * 1.25 : current * 2;
  return Math.max(current + 100, Math.ceil(need / 100) * 100);
}

export type MigrationViewForRemedies = Pick<MigrationView, 'options' | 'outgoingStatus'>;
