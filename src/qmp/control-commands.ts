// Commands about the monitor itself (QEMU's qmp-cmds-control.c and human-monitor-command).

import { qapiArray, qapiEnum, type QmpDispatcher } from './dispatcher.js';
import type { Hmp } from './hmp.js';
import { QmpError } from '../qapi/qmp-error.js';

export function registerControlCommands(dispatcher: QmpDispatcher, hmp: Hmp): void {
  // window.qmp is always in command mode: there is no greeting to negotiate after.
  dispatcher.register({
    name: 'qmp_capabilities',
    args: { '*enable': qapiArray(qapiEnum(['oob'])) },
    handler: () => {
      throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    },
  });

  dispatcher.register({
    name: 'query-commands',
    handler: () => dispatcher.commandNames().map((name) => ({ name })),
  });

  dispatcher.register<{ 'command-line': string; 'cpu-index'?: number }>({
    name: 'human-monitor-command',
    args: { 'command-line': 'str', '*cpu-index': 'int' },
    handler: (args) => {
      // One vCPU, index 0.
      if (args['cpu-index'] !== undefined && args['cpu-index'] !== 0) {
        throw QmpError.generic("Parameter 'cpu-index' expects a CPU number");
      }
      return hmp.run(args['command-line']);
    },
  });
}
