// Which runstate a destination's guest gets once the whole machine is here: QEMU's rule in
// process_incoming_migration_bh. A source that was running (or sent no globalstate) is resumed
// only under autostart (-S, or `stop` while inmigrate, turns it off: the guest waits paused for
// `cont`); any other sent runstate is taken as it was. Lives in the incoming thread because
// postcopy starts the guest mid-stream, from there.

import { RUN_STATES, type RunState } from '../../guest/runstate.js';
import { ControlBlock } from '../../guest/control-block.js';

export function decideRunstate(globalRunstate: string | null, autostart: boolean): RunState {
  if (globalRunstate === null || globalRunstate === 'running') return autostart ? 'running' : 'paused';
  return (RUN_STATES as readonly string[]).includes(globalRunstate) ? (globalRunstate as RunState) : 'paused';
}

/**
 * Hands the loaded machine to the vCPU in runstate `to`: the generation bump makes the vCPU drop
 * what it decoded from the old RAM and reload its registers from the device state before it runs.
 * Returns the runstate it replaced.
 */
export function giveGuest(controlBuffer: SharedArrayBuffer, to: RunState): RunState {
  const control = new ControlBlock(controlBuffer);
  const from = control.runstate;
  control.bumpGeneration();
  control.clearStartedAt();
  control.runstate = to;
  control.requestRun(to === 'running');
  return from;
}
