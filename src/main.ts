// The page: reads its QEMU-style command line from the address, builds the machine and its QMP
// control plane, boots the demo (unless -S or -incoming say otherwise) and mounts the UI.

import './ui/tm-app.js';
import { CommandLineError, parseCommandLine, type CommandLine } from './command-line.js';
import { Machine } from './guest/machine.js';
import { DEMO_PROGRAM } from './guest/programs.js';
import type { RunState } from './guest/runstate.js';
import { createQmp, installQmp } from './qmp/index.js';
import type { TmApp } from './ui/tm-app.js';

function initialRunstate(cl: CommandLine): RunState {
  if (cl.incoming) return 'inmigrate';
  return cl.startPaused ? 'prelaunch' : 'running';
}

async function start(app: TmApp): Promise<void> {
  let cl: CommandLine;
  try {
    cl = parseCommandLine(location.search);
  } catch (e) {
    app.startupError = e instanceof CommandLineError ? e.message : String(e);
    return;
  }
  const machine = new Machine({ ramSize: cl.ramSize, runstate: initialRunstate(cl) });
  await machine.ready;
  // QEMU -S loads the guest but does not start it; -incoming leaves RAM for the migration to fill.
  // Booting is not a reset, so it happens before QMP listens for the machine's events.
  if (!cl.incoming) await machine.load({ builtin: DEMO_PROGRAM });
  const qmp = createQmp({ machine, name: cl.name, autostart: !cl.startPaused });
  app.vmName = cl.name ?? '';
  app.machine = machine;
  app.qmp = { execute: (cmd) => qmp.dispatcher.execute(cmd), events: qmp.events };
  installQmp(window, qmp.dispatcher, qmp.events);
}

const app = document.querySelector('tm-app') ?? document.body.appendChild(document.createElement('tm-app'));
start(app as TmApp).catch((e) => {
  (app as TmApp).startupError = `tabmig could not start: ${e instanceof Error ? e.message : String(e)}`;
});
