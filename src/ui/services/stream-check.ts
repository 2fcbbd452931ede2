// Checks that a file is a migration stream this tab could load, before it is imported as a
// snapshot: the stream layer's own load loop walks it (magic and version, the configuration's
// machine type, every section framed and footed, RAM records, device fields, the VM description
// after EOF) with loaders that parse into scratch and keep nothing. One parser: the one the
// destination uses. Runs on the main thread; pages are only skipped, so it is I/O bound.

import { DEVICES, DeviceState } from '../../guest/device-state.js';
import { RUN_STATES } from '../../guest/runstate.js';
import {
  RAM_BLOCK_MAIN,
  RAM_SECTION_NAME,
  RamReader,
  StreamReader,
  deviceLoader,
  globalStateLoader,
  loadStream,
  ramLoader,
  type MigCommand,
  type SectionLoader,
} from '../../migration/stream/index.js';
import { blobSource } from '../../transport/file.js';

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
const CPU_SECTION = 'cpu';

/** Walks the whole stream; resolves with what it found or rejects with StreamCheckError. */
export async function checkStream(blob: Blob, expect: StreamExpectations, onProgress?: (done: number, total: number) => void): Promise<StreamCheck> {
  const source = blobSource(blob);
  const reader = new StreamReader(source);
  const seen = new Set<string>();
  const counted = (l: SectionLoader): SectionLoader => ({
    ...l,
    load: async (r, ctx) => {
      seen.add(l.name);
      await l.load(r, ctx);
      onProgress?.(source.bytesRead, blob.size);
    },
  });
  const scratch = new DeviceState();
  const skipPages = { page() {}, zeroPage() {} };
  const loaders = [
    ramLoader(new RamReader(reader, [{ name: RAM_BLOCK_MAIN, length: expect.ramSize }]), skipPages),
    globalStateLoader(RUN_STATES, () => {}),
    ...DEVICES.map((spec) => deviceLoader(spec, scratch)),
  ].map(counted);
  try {
    const result = await loadStream(reader, {
      loaders,
      machineType: expect.machineType,
      onCommand: (cmd) => {
        if (!SNAPSHOT_COMMANDS.has(cmd.type)) throw new Error(`a saved stream carries no ${cmd.type} command`);
      },
    });
    if (!(await reader.atEnd())) throw new Error(`${blob.size - reader.position} bytes follow the end of the stream`);
    for (const needed of [RAM_SECTION_NAME, CPU_SECTION]) {
      if (!seen.has(needed)) throw new Error(`the stream carries no '${needed}' section`);
    }
    onProgress?.(blob.size, blob.size);
    return { machineType: result.machineType, sections: result.sections, bytes: reader.position };
  } catch (e) {
    throw new StreamCheckError(`Not a loadable migration stream: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    reader.shutdown();
  }
}
