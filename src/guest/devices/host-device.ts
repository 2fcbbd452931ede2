// tabmig-hostdev: a host device passed through to the guest, like VFIO. Its state lives in the
// host, not in guest RAM or the device-state buffer, so a VM using it cannot migrate: enabling it
// adds a migration blocker (QEMU's migrate_add_blocker) and disabling it removes the blocker.
//
// The vCPU cannot wait for the main thread, so the device applies QEMU's rules itself through the
// control block (ControlBlock.tryEnableHostDevice): refused under only-migratable, refused while a
// migration is in progress, otherwise enabled. The main thread hears about it afterwards (a
// 'hostdev' vCPU message) and registers the blocker with the MigrationService. Whether the device
// is enabled is a control-block word, not device state, since nothing of this device migrates.

import type { BlockerRefusal, ControlBlock } from '../control-block.js';
import { HOSTDEV_ENABLE, HOSTDEV_STATUS } from '../memory-map.js';

/** The blocker's id in the MigrationService. */
export const HOSTDEV_ID = 'tabmig-hostdev';

/** The blocker's reason: what `migrate` answers while the device is enabled. */
export const HOSTDEV_BLOCKER_REASON = 'Migration is disabled when the tabmig-hostdev host device is in use';

/** What the vCPU tells the main thread: the device changed state, or an enable was refused. */
export interface HostDeviceReport {
  enabled: boolean;
  refused?: BlockerRefusal;
}

export class HostDevice {
  /** STATUS: the last enable was refused. vCPU-local; reset with the machine. */
  private refused = false;
  private report: HostDeviceReport | null = null;

  constructor(private readonly ctl: ControlBlock) {}

  /** Machine reset, program load or incoming migration: the device comes up disabled. */
  reset(): void {
    this.refused = false;
    if (this.ctl.disableHostDevice()) this.note(false);
  }

  read(offset: number, size: number): number | undefined {
    if (size !== 4) return undefined;
    if (offset === HOSTDEV_ENABLE) return this.ctl.hostDeviceEnabled ? 1 : 0;
    if (offset === HOSTDEV_STATUS) return this.refused ? 1 : 0;
    return undefined;
  }

  write(offset: number, size: number, value: number): boolean {
    if (size !== 4) return false;
    if (offset === HOSTDEV_STATUS) return true; // read-only
    if (offset !== HOSTDEV_ENABLE) return false;
    if (value & 1) this.enable();
    else if (this.ctl.disableHostDevice()) this.note(false);
    return true;
  }

  /** The news since the last call, coalesced (a guest toggling in a loop sends one message per
   *  flush, not one per write); the control block holds the current state either way. */
  takeReport(): HostDeviceReport | null {
    const r = this.report;
    this.report = null;
    return r;
  }

  private enable(): void {
    if (this.ctl.hostDeviceEnabled) return;
    const verdict = this.ctl.tryEnableHostDevice();
    this.refused = verdict !== 'ok';
    this.note(verdict === 'ok', verdict === 'ok' ? undefined : verdict);
  }

  /** Merges into the pending report; a refusal stays in it until taken, so the page logs it. */
  private note(enabled: boolean, refused = this.report?.refused): void {
    this.report = refused ? { enabled, refused } : { enabled };
  }
}
