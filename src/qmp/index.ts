// The QMP control plane in one place: createQmp() builds the dispatcher, the event emitter and the
// human monitor with the machine's commands registered; installQmp() puts it on the page.

import { PROGRAMS } from '../guest/programs.js';
import { registerControlCommands } from './control-commands.js';
import { registerDeviceCommands } from './device-commands.js';
import { QmpDispatcher } from './dispatcher.js';
import { QmpEvents } from './events.js';
import { Hmp } from './hmp.js';
import { registerMachineCommands, type MachineControl, type QmpMachine } from './machine-commands.js';

export * from './dispatcher.js';
export * from './events.js';
export * from './hmp.js';
export * from './hmp-memory.js';
export * from './install.js';
export * from './machine-commands.js';
export * from './control-commands.js';
export * from '../qapi/qmp-error.js';

export interface CreateQmpOptions {
  machine: QmpMachine;
  /** -name */
  name?: string;
  /** false when the page was started with -S (QEMU's autostart). */
  autostart?: boolean;
  /** Per-command time limit (see QmpDispatcherOptions). */
  timeoutMs?: number;
  /** How many events the event log keeps. */
  eventLogSize?: number;
}

export interface Qmp {
  dispatcher: QmpDispatcher;
  events: QmpEvents;
  hmp: Hmp;
  /** autostart and the stop/cont/reset actions (the incoming migration reads autostart). */
  vm: MachineControl;
}

export function createQmp(opts: CreateQmpOptions): Qmp {
  const dispatcher = new QmpDispatcher({ timeoutMs: opts.timeoutMs });
  const events = new QmpEvents({ logSize: opts.eventLogSize });
  const hmp = new Hmp();
  registerControlCommands(dispatcher, hmp);
  const vm = registerMachineCommands(dispatcher, hmp, opts.machine, events, {
    name: opts.name,
    autostart: opts.autostart,
    programs: PROGRAMS,
  });
  if (opts.machine.deviceState) registerDeviceCommands(dispatcher, hmp, opts.machine.deviceState);
  return { dispatcher, events, hmp, vm };
}
