// QEMU's MigrationStatus and the transitions a migration may take, for both ends. Changes are
// compare-and-set, as QEMU's migrate_set_state: a transition only happens from the state the
// caller expects, so a cancel racing a completion leaves exactly one winner.

export const MIGRATION_STATUSES = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
] as const;

export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** Where each status may go next. */
const NEXT: Record<MigrationStatus, readonly MigrationStatus[]> = {
  none: ['setup', 'active', 'failed'],
  setup: ['active', 'failed', 'cancelling', 'completed'],
  active: ['pre-switchover', 'device', 'completed', 'failed', 'cancelling', 'postcopy-active', 'colo'],
  'pre-switchover': ['device', 'failed', 'cancelling'],
  device: ['completed', 'failed', 'cancelling', 'postcopy-active'],
  'postcopy-active': ['completed', 'failed', 'postcopy-paused', 'cancelling'],
  'postcopy-paused': ['postcopy-recover', 'failed', 'cancelling'],
  // migrate_fd_cancel cancels from every setup-or-active state, postcopy-recover included.
  'postcopy-recover': ['postcopy-active', 'postcopy-paused', 'failed', 'cancelling'],
  cancelling: ['cancelled', 'failed'],
  completed: ['setup', 'none'],
  failed: ['setup', 'none'],
  cancelled: ['setup', 'none'],
  colo: ['completed', 'failed'],
};

export function canTransition(from: MigrationStatus, to: MigrationStatus): boolean {
  return NEXT[from].includes(to);
}

/** QEMU's migration_is_setup_or_active(). */
export function isSetupOrActive(s: MigrationStatus): boolean {
  return ['setup', 'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'pre-switchover', 'device'].includes(s);
}

/** A migration that has ended one way or the other (or never started). */
export function isFinished(s: MigrationStatus): boolean {
  return s === 'none' || s === 'completed' || s === 'failed' || s === 'cancelled';
}

export class MigrationStateMachine {
  private current: MigrationStatus = 'none';

  constructor(private readonly onChange: (to: MigrationStatus, from: MigrationStatus) => void = () => {}) {}

  get status(): MigrationStatus {
    return this.current;
  }

  /** Moves from `from` to `to` if the machine is in `from`; returns whether it moved. */
  set(from: MigrationStatus, to: MigrationStatus): boolean {
    if (this.current !== from) return false;
    if (!canTransition(from, to)) throw new Error(`invalid migration state change ${from} -> ${to}`);
    this.current = to;
    this.onChange(to, from);
    return true;
  }

  /** Moves from whatever the state is now (QEMU's migrate_set_state(&s->state, s->state, to)). */
  force(to: MigrationStatus): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.onChange(to, from);
  }
}
