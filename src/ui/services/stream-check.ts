// Checks that a file is a migration stream this tab could load, before it is imported as a
// snapshot: the destination's own loadvm loop and load handlers walk it (magic and version, the
// configuration's machine type, every section framed and footed, RAM records, device fields with
// their range checks, RAM and CPU present, the VM description after EOF, nothing after it), into
// scratch state that is thrown away. One parser: the one the destination uses. Runs on the main
// thread; pages are only skipped, so it is I/O bound.

import { DEVICES, DeviceState } from '../../guest/device-state.js';
import { PAGE_SIZE, RAM_BASE } from '../../guest/memory-map.js';
import type { LoadHandler } from '../../migration/handlers.js';
import { machineLoadHandlers } from '../../migration/load-handlers.js';
import type { StreamTap as LoopTap } from '../../migration/stream-tap.js';
import { loadVm } from '../../migration/loadvm.js';
import { NO_RAM_SECTION, RAM_SECTION, checkRamSectionVersion } from '../../migration/ram/ram-load.js';
import {
  RAM_BLOCK_MAIN,
  RamReader,
  StreamReader,
  type MigCommand,
  type RamPartStats,
  type RamVisitor,
} from '../../migration/stream/index.js';
import { blobSource } from '../../transport/file.js';

/** RV32IM without the C extension: the CPU's pc must be 4-byte aligned (as the destination checks). */
const PC_ALIGN = 4;

export interface StreamExpectations {
  /** This tab's machine type; a stream for another is refused in QEMU's words. */
  machineType: string;
  /** This tab's RAM size in bytes (Restore keeps -m, so a stream of another size cannot load here). */
  ramSize: number;
}

export interface StreamCheck {
  machineType: string | null;
  /** Sections (START/PART/END/FULL) walked. */
  sections: number;
  bytes: number;
}

/** The file is not a stream this tab can load; `message` says why, in the stream layer's words. */
export class StreamCheckError extends Error {
  override name = 'StreamCheckError';
}

/** Commands a saved stream may carry; anything else belongs to a live (or postcopy) migration. */
const SNAPSHOT_COMMANDS: ReadonlySet<MigCommand['type']> = new Set(['OPEN_RETURN_PATH', 'PING']);

/**
 * Every record kind the destination's loader takes from a saved stream: plain and zero pages,
 * XBZRLE (always understood) and compressed pages (a stream saved with `compress` on; loading it
 * needs `compress` on, as in QEMU). Their framing and bounds are checked by RamReader; contents skipped.
 */
const SKIP_PAGES: RamVisitor = { page() {}, zeroPage() {}, xbzrlePage() {}, compressedPage() {} };

/**
 * The `ram` section read by the stream layer's RamReader (block list, flags, offsets, page
 * framing) with nowhere to put the pages: the destination's ram-load handler writes into guest
 * RAM, which a check on the main thread must not have to allocate.
 */
function ramCheckHandler(ramSize: number, onPart?: (stats: RamPartStats) => void): LoadHandler {
  let ramReader: RamReader | null = null;
  let reader: StreamReader | null = null;
  let started = false;
  return {
    ...RAM_SECTION,
    async loadState(r, ctx) {
      checkRamSectionVersion(r, ctx);
      if (r !== reader || !ramReader) {
        reader = r;
        ramReader = new RamReader(r, [{ name: RAM_BLOCK_MAIN, length: ramSize }], { pageSize: PAGE_SIZE, allowCompressed: true });
      }
      const stats = await ramReader.readPart(SKIP_PAGES);
      onPart?.(stats);
      started = true;
    },
    validate: () => (started ? null : NO_RAM_SECTION),
  };
}

/**
 * What the walk saw, for the stream inspector (tm-stream-inspector): the loadvm loop's own tap
 * (each section, command and end marker with its offset and size), and each RAM part's records.
 */
export interface StreamCheckTap extends Partial<LoopTap> {
  /** The RAM records of one part of the `ram` section, summarised (before that part's section()). */
  ramPart?(stats: RamPartStats): void;
}

/** Walks the whole stream; resolves with what it found or rejects with StreamCheckError. */
export async function checkStream(
  blob: Blob,
  expect: StreamExpectations,
  onProgress?: (done: number, total: number) => void,
  tap?: StreamCheckTap,
): Promise<StreamCheck> {
  const source = blobSource(blob);
  const reader = new StreamReader(source);
  // The destination's own handlers (configuration, globalstate, every device with its range
  // checks, the CPU required) into scratch state; only RAM differs, see ramCheckHandler.
  const machine = machineLoadHandlers({
    staging: new DeviceState(),
    limits: { ramBase: RAM_BASE, ramSize: expect.ramSize, pcAlign: PC_ALIGN },
    machineType: expect.machineType,
    devices: DEVICES,
  });
  const plain = [machine.configuration, ramCheckHandler(expect.ramSize, tap?.ramPart), machine.globalState, ...machine.devices];
  const loopTap: LoopTap | null = tap
    ? {
        section: (x) => tap.section?.(x),
        command: (cmd, offset, bytes, nested) => tap.command?.(cmd, offset, bytes, nested),
        marker: (type, offset, bytes) => tap.marker?.(type, offset, bytes),
      }
    : null;
  try {
    const result = await loadVm(reader, {
      handlers: plain,
      tap: loopTap,
      onCommand: (cmd) => {
        if (!SNAPSHOT_COMMANDS.has(cmd.type)) throw new Error(`a saved stream carries no ${cmd.type} command`);
      },
      onSection: () => onProgress?.(source.bytesRead, blob.size),
    });
    if (!(await reader.atEnd())) throw new Error(`${blob.size - reader.position} bytes follow the end of the stream`);
    onProgress?.(blob.size, blob.size);
    return { machineType: machine.configuration.machineType, sections: result.sections, bytes: reader.position };
  } catch (e) {
    throw new StreamCheckError(`Not a loadable migration stream: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    reader.shutdown();
  }
}
