// What the UI needs from QMP (src/qmp/ implements it; tests pass a fake). Everything the page does
// to the machine goes through execute(), so a test or a user at the console can do the same.

export { QMP_EVENT, type QmpEvent } from '../../qmp/events.js';

export interface QmpCommand {
  execute: string;
  arguments?: object;
  id?: unknown;
}

export interface QmpErrorReply {
  class: string;
  desc: string;
}

/** QEMU's reply shape: exactly one of `return` and `error`. */
export interface QmpReply {
  return?: unknown;
  error?: QmpErrorReply;
  id?: unknown;
}

export interface QmpClient {
  execute(cmd: QmpCommand): Promise<QmpReply>;
  /** Dispatches QMP_EVENT ('qmp-event') CustomEvents whose detail is a QmpEvent. */
  events: EventTarget;
}

/** Runs a command, turning a thrown exception into the GenericError reply QEMU would give. */
export async function executeSafely(client: QmpClient, cmd: QmpCommand): Promise<QmpReply> {
  try {
    return await client.execute(cmd);
  } catch (e) {
    return { error: { class: 'GenericError', desc: e instanceof Error ? e.message : String(e) } };
  }
}

/** An HMP line as QMP sends it. */
export function hmpCommand(line: string): QmpCommand {
  return { execute: 'human-monitor-command', arguments: { 'command-line': line } };
}

/** One line for an error reply, the way QEMU's own clients print it. */
export function describeError(err: QmpErrorReply): string {
  return `${err.class}: ${err.desc}`;
}
