// What a live migration registers with the savevm loop, in stream order: RAM, then the
// configuration, globalstate and every device (save-handlers.ts). A new thing to migrate is a new
// handler registered here; the thread loop does not change.

import type { ControlBlock } from '../../guest/control-block.js';
import type { DeviceState } from '../../guest/device-state.js';
import { PAGE_SIZE } from '../../guest/memory-map.js';
import type { RunState } from '../../guest/runstate.js';
import type { MigrationBlock } from '../migration-block.js';
import type { MigrationOptions } from '../options.js';
import type { PageState } from '../page-state.js';
import type { PageSender } from '../ram/page-sender.js';
import { RamSaveHandler, type RamRound } from '../ram/ram-save.js';
import { PostcopyRamSaveHandler } from '../postcopy/postcopy-ram-save.js';
import { registerMachineSections } from '../save-handlers.js';
import { SaveHandlerRegistry } from '../savevm.js';
import { RAM_BLOCK_MAIN } from '../stream/index.js';

export interface SourceSectionsInput {
  readonly ram: Uint8Array;
  readonly dirtyLog: SharedArrayBuffer;
  readonly state: DeviceState;
  readonly ctl: ControlBlock;
  readonly block: MigrationBlock;
  readonly pageState: PageState;
  readonly sender: PageSender;
  readonly options: MigrationOptions;
  readonly machineType: string;
  /** The runstate the guest had when the switchover stopped it (globalstate carries it). */
  readonly runstateAtStop: () => RunState;
  readonly onSync: (round: RamRound) => void;
}

export function sourceSections(input: SourceSectionsInput): SaveHandlerRegistry {
  const registry = new SaveHandlerRegistry();
  const ram = {
    ram: input.ram,
    dirtyLog: input.dirtyLog,
    pageSize: PAGE_SIZE,
    blockName: RAM_BLOCK_MAIN,
    sender: input.sender,
    block: input.block,
    pageState: input.pageState,
    onSync: input.onSync,
  };
  // postcopy-ram: RAM may go after the switch too (postcopy/postcopy-ram-save.ts).
  registry.register(
    input.options.postcopyRam ? new PostcopyRamSaveHandler({ ...ram, releaseRam: input.options.capability('release-ram') }) : new RamSaveHandler(ram),
  );
  registerMachineSections(registry, {
    machineType: input.machineType,
    state: input.state,
    runstate: input.runstateAtStop,
    sendConfiguration: input.options.sendConfiguration,
    storeGlobalState: input.options.storeGlobalState,
  });
  return registry;
}
