// A complete stream of a machine that is not running, in one pass: the savevm loop with the same
// handlers a live migration registers, driven with the machine stopped (setup, one iteration
// that sends every page, completion). No commands: the result is valid as a saved file, which
// QEMU's analyze-migration.py reads. Used for snapshot export and by the tests.

import { DEVICES, type DeviceSpec, type DeviceState } from '../guest/device-state.js';
import { PAGE_SIZE } from '../guest/memory-map.js';
import type { RunState } from '../guest/runstate.js';
import { MigCounter, MigrationBlock } from './migration-block.js';
import { PageSender } from './ram/page-sender.js';
import { RamSaveHandler } from './ram/ram-save.js';
import { configurationHandler, deviceHandler, globalStateHandler } from './save-handlers.js';
import { SaveHandlerRegistry, SaveVmLoop } from './savevm.js';
import type { RamBlock, StreamWriter } from './stream/index.js';

export interface SnapshotInput {
  /** Written in the configuration section (the destination compares it with its own). */
  readonly machineType: string;
  /** The RAM block: its name and length. */
  readonly ramBlock: RamBlock;
  /** The bytes (guest RAM, shared or not), at least ramBlock.length of them. */
  readonly ram: Uint8Array;
  readonly state: DeviceState;
  /** Device sections in stream order (default: every tabmig device). */
  readonly devices?: readonly DeviceSpec[];
  /** When given, a globalstate section carries it (QEMU's run state at save time). */
  readonly runState?: RunState | string;
  readonly footers?: boolean;
  readonly pageSize?: number;
}

export interface SnapshotStats {
  readonly pages: number;
  readonly zeroPages: number;
  readonly bytes: number;
}

/** Writes header, configuration, ram (START, one PART with every page, END), globalstate, devices, EOF, description. */
export async function writeSnapshot(w: StreamWriter, input: SnapshotInput): Promise<SnapshotStats> {
  const { ramBlock, ram } = input;
  const pageSize = input.pageSize ?? PAGE_SIZE;
  if (ram.length < ramBlock.length) throw new RangeError(`RAM buffer of ${ram.length} bytes is shorter than block '${ramBlock.name}'`);
  const start = w.transferred;
  // Counters nobody reads but the stats below; a dirty log nobody writes (the machine is stopped).
  const block = new MigrationBlock();
  const registry = new SaveHandlerRegistry();
  registry.register(
    new RamSaveHandler({
      ram: ram.subarray(0, ramBlock.length),
      dirtyLog: new SharedArrayBuffer(ramBlock.length / pageSize),
      pageSize,
      blockName: ramBlock.name,
      sender: new PageSender([w], { pageSize }),
      block,
      onePass: true,
    }),
  );
  registry.register(configurationHandler(input.machineType));
  const runState = input.runState;
  if (runState !== undefined) registry.register(globalStateHandler(() => runState, true));
  for (const spec of input.devices ?? DEVICES) registry.register(deviceHandler(spec, input.state));

  const loop = new SaveVmLoop(registry, w, { footers: input.footers ?? true, pageSize });
  try {
    await loop.setup();
    while (!(await loop.iterate())) {
      if (w.error) throw w.error;
      await w.ready();
    }
    await loop.completePrecopy();
    await w.flush();
    if (w.error) throw w.error;
  } finally {
    loop.cleanup();
  }
  const zeroPages = block.get(MigCounter.DUPLICATE);
  return { pages: block.get(MigCounter.NORMAL), zeroPages, bytes: w.transferred - start };
}
