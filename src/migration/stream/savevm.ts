// The stream's outer frame (savevm.c): header, EOF, and the load loop that hands each section to
// whoever registered for its name and instance, checks footers, and processes commands
// (qemu_loadvm_state / qemu_loadvm_state_main). Writing is the savevm loop's job
// (src/migration/savevm.ts), over the framing helpers of vmstate.ts; this file knows no guest.

import { readCommand, type MigCommand, type ReadCommandOptions } from './commands.js';
import { StreamFormatError } from './errors.js';
import {
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  RAM_SECTION_INSTANCE,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  SectionType,
} from './format.js';
import type { RamPartStats, RamReader, RamVisitor } from './ram-format.js';
import { StreamReader } from './stream-reader.js';
import type { StreamWriter } from './stream-writer.js';
import { readConfiguration, readVmDescription, type ReadVmDescription } from './vm-description.js';
import {
  GLOBALSTATE_SPEC,
  checkSectionFooter,
  loadDeviceState,
  loadGlobalState,
  readSectionPartEnd,
  readSectionStartFull,
  unknownSectionError,
  unknownSectionIdError,
  unknownSectionTypeError,
  type VmsdSpec,
  type VmsdStore,
} from './vmstate.js';

// ---- header and EOF ---------------------------------------------------------------------------------

export function writeStreamHeader(w: StreamWriter): void {
  w.putBe32(QEMU_VM_FILE_MAGIC);
  w.putBe32(QEMU_VM_FILE_VERSION);
}

/** Checks magic and version in QEMU's words. */
export async function readStreamHeader(r: StreamReader): Promise<void> {
  if (!r.has(8)) await r.ensure(8);
  if (r.getBe32() !== QEMU_VM_FILE_MAGIC) throw r.fail(new StreamFormatError('bad-magic', 'Not a migration stream'));
  const v = r.getBe32();
  if (v === QEMU_VM_FILE_VERSION_COMPAT) {
    throw r.fail(new StreamFormatError('obsolete-version', "SaveVM v2 format is obsolete and don't work anymore"));
  }
  if (v !== QEMU_VM_FILE_VERSION) throw r.fail(new StreamFormatError('bad-version', 'Unsupported migration stream version'));
}

export function writeEof(w: StreamWriter): void {
  w.putU8(SectionType.EOF);
}

// ---- loading ----------------------------------------------------------------------------------------

export interface SectionContext {
  /** START, PART, END or FULL. */
  readonly type: number;
  readonly sectionId: number;
  /** The version id from the section's START/FULL header. */
  readonly versionId: number;
  readonly name: string;
  readonly instanceId: number;
}

/** Whoever loads one section (QEMU's SaveStateEntry on the load side). */
export interface SectionLoader {
  readonly name: string;
  readonly instanceId: number;
  /** Highest version this side loads; a newer one is refused before load() is called. */
  readonly version: number;
  /** Reads one part of the section's data (not the footer). */
  load(r: StreamReader, ctx: SectionContext): Promise<void>;
}

export interface LoadStreamOptions {
  readonly loaders: readonly SectionLoader[];
  /** The local machine type; a stream for another one is refused. Undefined accepts any. */
  readonly machineType?: string;
  /** Expect section footers (default true). */
  readonly footers?: boolean;
  /** Refuse a stream without the configuration section (default true). */
  readonly requireConfiguration?: boolean;
  /** Read the VM description after EOF (default true). */
  readonly readDescription?: boolean;
  /**
   * Called for every command after it has been checked and (PACKAGED) its nested stream loaded.
   * Return 'quit' to stop the loop (QEMU's LOADVM_QUIT, e.g. after POSTCOPY_RUN).
   */
  readonly onCommand?: (cmd: MigCommand) => void | 'quit' | Promise<void | 'quit'>;
  readonly commandOptions?: ReadCommandOptions;
}

export interface LoadStreamResult {
  /** Machine type from the configuration section, or null if there was none. */
  readonly machineType: string | null;
  /** True when the loop stopped at EOF; false when a command said quit. */
  readonly reachedEof: boolean;
  readonly description: ReadVmDescription | null;
  /** Sections (START/FULL/PART/END) loaded, nested streams included. */
  readonly sections: number;
}

interface LoadEntry {
  readonly loader: SectionLoader;
  readonly ctx: SectionContext;
}

/** qemu_loadvm_state: header, configuration, sections and commands up to EOF, then the description. */
export async function loadStream(r: StreamReader, options: LoadStreamOptions): Promise<LoadStreamResult> {
  await readStreamHeader(r);
  let machineType: string | null = null;
  if (options.requireConfiguration ?? true) {
    const type = await r.readU8();
    if (type !== SectionType.CONFIGURATION) throw r.fail(new StreamFormatError('no-configuration', 'Configuration section missing'));
    machineType = await readConfiguration(r, options.machineType);
  }
  const state = { sections: 0, entries: new Map<number, LoadEntry>() };
  const end = await loadMain(r, options, state);
  let description: ReadVmDescription | null = null;
  if (end === 'eof' && (options.readDescription ?? true)) description = await readVmDescription(r);
  return { machineType, reachedEof: end === 'eof', description, sections: state.sections };
}

/** qemu_loadvm_state_main: sections and commands until EOF (or a command says quit). */
async function loadMain(
  r: StreamReader,
  options: LoadStreamOptions,
  state: { sections: number; entries: Map<number, LoadEntry> },
): Promise<'eof' | 'quit'> {
  const footers = options.footers ?? true;
  for (;;) {
    const type = await r.readU8();
    switch (type) {
      case SectionType.EOF:
        return 'eof';
      case SectionType.START:
      case SectionType.FULL: {
        const h = await readSectionStartFull(r, type);
        const loader = options.loaders.find((l) => l.name === h.name && l.instanceId === h.instanceId);
        if (!loader) throw r.fail(unknownSectionError(h.name, h.instanceId));
        if (h.versionId > loader.version) {
          throw r.fail(new StreamFormatError('version-too-new', `savevm: unsupported version ${h.versionId} for '${h.name}' v${loader.version}`));
        }
        const ctx: SectionContext = { type, sectionId: h.sectionId, versionId: h.versionId, name: h.name, instanceId: h.instanceId };
        state.entries.set(h.sectionId, { loader, ctx });
        await loader.load(r, ctx);
        if (footers) await checkSectionFooter(r, h.sectionId, h.name);
        state.sections++;
        break;
      }
      case SectionType.PART:
      case SectionType.END: {
        const sectionId = await readSectionPartEnd(r);
        const entry = state.entries.get(sectionId);
        if (!entry) throw r.fail(unknownSectionIdError(sectionId));
        await entry.loader.load(r, { ...entry.ctx, type });
        if (footers) await checkSectionFooter(r, sectionId, entry.ctx.name);
        state.sections++;
        break;
      }
      case SectionType.COMMAND: {
        const cmd = await readCommand(r, options.commandOptions);
        if (cmd.type === 'PACKAGED') {
          // The package is a stream of its own (sections, then EOF), loaded as a unit.
          const nested = StreamReader.fromBytes(cmd.data);
          try {
            const end = await loadMain(nested, options, state);
            if (end === 'quit') return 'quit';
          } catch (e) {
            if (e instanceof Error) r.fail(e);
            throw e;
          }
        }
        if ((await options.onCommand?.(cmd)) === 'quit') return 'quit';
        break;
      }
      default:
        throw r.fail(unknownSectionTypeError(type));
    }
  }
}

/** Loads a device's FULL section into its store. */
export function deviceLoader(spec: VmsdSpec, store: VmsdStore): SectionLoader {
  return {
    name: spec.name,
    instanceId: spec.instanceId,
    version: spec.version,
    load: (r, ctx) => loadDeviceState(r, spec, store, ctx.versionId),
  };
}

/** Loads the globalstate section; `onRunState` gets the source's run state. */
export function globalStateLoader(validRunStates: readonly string[], onRunState: (runstate: string) => void): SectionLoader {
  return {
    name: GLOBALSTATE_SPEC.name,
    instanceId: GLOBALSTATE_SPEC.instanceId,
    version: GLOBALSTATE_SPEC.version,
    load: async (r, ctx) => onRunState(await loadGlobalState(r, ctx.versionId, validRunStates)),
  };
}

/** Loads the ram section's parts through one RamReader and visitor. */
export function ramLoader(ram: RamReader, visitor: RamVisitor, onPart?: (stats: RamPartStats, ctx: SectionContext) => void): SectionLoader {
  return {
    name: RAM_SECTION_NAME,
    instanceId: RAM_SECTION_INSTANCE,
    version: RAM_SECTION_VERSION,
    load: async (r, ctx) => {
      if (ctx.versionId !== RAM_SECTION_VERSION) {
        throw r.fail(new StreamFormatError('version-too-old', `error while loading state for instance 0x${ctx.instanceId.toString(16)} of device '${ctx.name}'`));
      }
      const stats = await ram.readPart(visitor);
      onPart?.(stats, ctx);
    },
  };
}
