// QEMU's RunState names (qapi/run-state.json), shared by every thread as an index in the control block.

export const RUN_STATES = [
  'debug',
  'inmigrate',
  'internal-error',
  'io-error',
  'paused',
  'postmigrate',
  'prelaunch',
  'finish-migrate',
  'restore-vm',
  'running',
  'save-vm',
  'shutdown',
  'suspended',
  'watchdog',
  'guest-panicked',
  'colo',
] as const;

export type RunState = (typeof RUN_STATES)[number];

export function runStateIndex(state: RunState): number {
  return RUN_STATES.indexOf(state);
}

export function runStateName(index: number): RunState {
  const name = RUN_STATES[index];
  if (name === undefined) throw new RangeError(`no run state ${index}`);
  return name;
}

/** QEMU's runstate_is_running(): only 'running' executes guest code. */
export function isRunning(state: RunState): boolean {
  return state === 'running';
}
