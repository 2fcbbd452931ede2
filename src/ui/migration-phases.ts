// What each MigrationStatus means, in a sentence a class can follow, for the sending and the
// receiving tab. The names are QEMU's (qapi/migration.json MigrationStatus).

import type { MigrationStatus } from './services/migration-view.js';

const OUTGOING: Record<MigrationStatus, string> = {
  none: 'none: no migration yet. Pick a destination and press Migrate; the guest keeps running while its RAM is copied.',
  setup: 'setup: connecting to the destination and preparing the dirty log; the guest keeps running.',
  active: 'active: copying RAM while the guest keeps running; pages it writes again are sent again in the next round.',
  'pre-switchover':
    'pre-switchover: the guest is stopped; the last dirty pages and the devices wait for Continue (capability pause-before-switchover).',
  device: 'device: the guest is stopped; the last dirty pages, the CPU and the devices are being sent. This pause is the downtime.',
  completed: 'completed: the destination has the whole machine and runs it; this copy stays stopped (postmigrate).',
  failed: 'failed: the migration stopped; the guest carries on here as if nothing had happened.',
  cancelling: 'cancelling: stopping the migration; the guest keeps running here.',
  cancelled: 'cancelled: the migration was called off; the guest carries on here.',
  'postcopy-active': 'postcopy-active: the guest runs on the destination, which fetches missing pages on demand.',
  'postcopy-paused': 'postcopy-paused: the connection broke during postcopy; waiting to recover.',
  'postcopy-recover': 'postcopy-recover: reconnecting to resume the paused postcopy migration.',
  colo: 'colo: fault tolerance, the two copies run in lockstep.',
};

const INCOMING: Partial<Record<MigrationStatus, string>> = {
  none: 'none: this tab was started with -incoming defer; migrate-incoming (Wait for a migration) starts listening.',
  setup: 'setup: waiting for the source to connect; the guest here is empty and does not run.',
  active: 'active: receiving RAM and device state; the guest here starts only once all of it has arrived.',
  completed: 'completed: the whole machine arrived and now runs in this tab.',
  failed: 'failed: the incoming stream broke off; the guest here never starts (the source keeps its copy).',
};

export function phaseText(status: MigrationStatus, direction: 'outgoing' | 'incoming'): string {
  return (direction === 'incoming' ? INCOMING[status] : undefined) ?? OUTGOING[status];
}

/** The final stop-and-copy inside `active` (QEMU enters `device` only after pre-switchover). */
export const STOP_AND_COPY =
  'active, guest stopped (runstate finish-migrate): the last dirty pages, the CPU and the devices are being sent. This pause is the downtime.';

/**
 * The phases of a precopy migration in order, for the step strip. As in QEMU, `pre-switchover`
 * and `device` happen only with the pause-before-switchover capability.
 */
export function phaseSteps(direction: 'outgoing' | 'incoming', preSwitchover: boolean): MigrationStatus[] {
  if (direction === 'incoming') return ['setup', 'active', 'completed'];
  return preSwitchover ? ['setup', 'active', 'pre-switchover', 'device', 'completed'] : ['setup', 'active', 'completed'];
}
