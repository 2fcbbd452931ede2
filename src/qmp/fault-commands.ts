// Fault-injection commands for tests (tabmig's own, x- prefixed like QEMU's test-only ones):
// stop a migration worker at a named instant of the switchover, act (cancel, close a tab, drop
// the link), then let it go on. The two-tab fault tests use them to hit each instant exactly.

import type { MigrationService } from '../migration/migration-service.js';
import { HOLD_POINTS, setControlDelay, type HoldPoint } from '../migration/switchover.js';
import { qapiEnum, type QmpDispatcher } from './dispatcher.js';

export function registerFaultCommands(dispatcher: QmpDispatcher, mig: MigrationService): void {
  dispatcher.register<{ point: string }>({
    name: 'x-tabmig-hold',
    args: { point: qapiEnum(HOLD_POINTS) },
    handler: (a) => mig.hold(a.point as HoldPoint),
  });
  dispatcher.register({ name: 'x-tabmig-release', handler: () => mig.releaseHolds() });
  // `committed`: this tab's last outgoing migration passed the point of no return (DESIGN §8).
  dispatcher.register({ name: 'x-tabmig-held', handler: () => ({ point: mig.heldAt(), committed: mig.switchoverCommitted() }) });
  dispatcher.register({ name: 'x-tabmig-drop-link', handler: () => ({ dropped: mig.dropLink() }) });
  // The destination hangs up the return path (its migration worker aborts the channel).
  dispatcher.register({ name: 'x-tabmig-close-return-path', handler: () => ({ closed: mig.closeReturnPath() }) });
  // Every control message this tab sends waits min..max ms (random each): late and reordered. 0 0 clears.
  dispatcher.register<{ 'min-ms': number; 'max-ms': number }>({
    name: 'x-tabmig-delay-control',
    args: { 'min-ms': 'int', 'max-ms': 'int' },
    handler: (a) => setControlDelay(a['min-ms'], a['max-ms']),
  });
}
