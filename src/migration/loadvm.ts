// The loadvm loop (QEMU's qemu_loadvm_state / qemu_loadvm_state_main): header, configuration,
// then sections and commands up to EOF, each section handed to the LoadHandler registered for its
// name and instance, footers checked, then the VM description, then every handler's validate().
// The loop owns the framing and the command rules that protect the destination (a PACKAGED
// stream only after POSTCOPY_ADVISE, and never inside another package); the handlers own their
// sections' data; the caller (the incoming thread) decides what each other command means.
// Runs in the destination's incoming worker (and in tests, on any thread).

import type { LoadContext, LoadHandler } from './handlers.js';
import { VM_DESCRIPTION_TYPE, type StreamTap } from './stream-tap.js';
import {
  MigCmd,
  SectionType,
  StreamFormatError,
  StreamReader,
  checkSectionFooter,
  readCommand,
  readSectionPartEnd,
  readSectionStartFull,
  readStreamHeader,
  readVmDescription,
  unknownSectionError,
  unknownSectionIdError,
  unknownSectionTypeError,
  type MigCommand,
  type ReadCommandOptions,
  type ReadVmDescription,
} from './stream/index.js';

export interface LoadVmOptions {
  /** Every section this side loads; at most one of kind 'configuration'. */
  readonly handlers: readonly LoadHandler[];
  /** Expect section footers (send-section-footer; default true). */
  readonly footers?: boolean;
  /** Refuse a stream without the configuration section (send-configuration; default true). */
  readonly requireConfiguration?: boolean;
  /** Read the VM description after EOF (default true). */
  readonly readDescription?: boolean;
  /** Run every handler's validate() after EOF and refuse the stream on the first error (default true). */
  readonly validate?: boolean;
  /**
   * Every command but PACKAGED (which the loop loads itself) after the loop's checks. Return
   * 'quit' to stop the loop (QEMU's LOADVM_QUIT, e.g. after POSTCOPY_RUN). Throw to refuse it.
   */
  readonly onCommand?: (cmd: MigCommand) => void | 'quit' | Promise<void | 'quit'>;
  readonly commandOptions?: ReadCommandOptions;
  /** Called after every section (START/PART/END/FULL), for counters. */
  readonly onSection?: (name: string, type: number) => void;
  /** Told of every section, command and end marker as it is read (the stream inspector). */
  readonly tap?: StreamTap | null;
}

export interface LoadVmResult {
  /** True when the loop stopped at EOF; false when a command said quit. */
  readonly reachedEof: boolean;
  readonly description: ReadVmDescription | null;
  /** Sections (START/PART/END/FULL) loaded, nested streams included. */
  readonly sections: number;
  /**
   * Where the loop stands (the sections it knows by id), for continueLoadVm after a quit: in
   * postcopy the stream goes on after POSTCOPY_RUN quit the package (QEMU's listen thread).
   */
  readonly state: LoadVmState;
}

/** The loop's memory between calls (opaque to callers). */
export type LoadVmState = LoopState;

/** A stream that loaded but whose state a handler's validate() refused. */
export class LoadValidationError extends StreamFormatError {
  override name = 'LoadValidationError';
  constructor(message: string) {
    super('bad-value', message);
  }
}

interface Entry {
  readonly handler: LoadHandler;
  readonly ctx: LoadContext;
}

interface LoopState {
  sections: number;
  readonly entries: Map<number, Entry>;
  /** POSTCOPY_ADVISE was seen: only then may a PACKAGED command come. */
  postcopyAdvised: boolean;
}

/** Calls every handler's loadSetup (before the first byte is read). */
export async function loadSetupAll(handlers: readonly LoadHandler[]): Promise<void> {
  for (const h of handlers) await h.loadSetup?.();
}

/** Every handler's validate(), in registration order: the first error text, or null. */
export function validateAll(handlers: readonly LoadHandler[]): string | null {
  for (const h of handlers) {
    const why = h.validate?.() ?? null;
    if (why) return why;
  }
  return null;
}

/** Every handler's loadCleanup, whatever happened (one failing does not skip the others). */
export function loadCleanupAll(handlers: readonly LoadHandler[]): void {
  for (const h of handlers) {
    try {
      h.loadCleanup?.();
    } catch {
      // cleanup is best effort: the migration is over either way
    }
  }
}

/** qemu_loadvm_state: the whole stream. Calls loadSetup first; loadCleanup is the caller's. */
export async function loadVm(r: StreamReader, options: LoadVmOptions): Promise<LoadVmResult> {
  await loadSetupAll(options.handlers);
  await readStreamHeader(r);
  if (options.requireConfiguration ?? true) {
    const type = await r.readU8();
    if (type !== SectionType.CONFIGURATION) throw r.fail(new StreamFormatError('no-configuration', 'Configuration section missing'));
    const conf = options.handlers.find((h) => h.kind === 'configuration');
    if (!conf) throw new Error('loadVm: no handler for the configuration section');
    const at = r.position - 1;
    await conf.loadState(r, { type: SectionType.CONFIGURATION, sectionId: 0, versionId: conf.version });
    options.tap?.section({ type, sectionId: -1, name: conf.name, instanceId: 0, version: conf.version, offset: at, bytes: r.position - at, nested: false });
  }
  const state: LoopState = { sections: 0, entries: new Map(), postcopyAdvised: false };
  const end = await loadMain(r, options, state, false);
  let description: ReadVmDescription | null = null;
  if (end === 'eof' && (options.readDescription ?? true)) {
    const at = r.position;
    description = await readVmDescription(r);
    options.tap?.marker(VM_DESCRIPTION_TYPE, at, r.position - at);
  }
  if (end === 'eof' && (options.validate ?? true)) {
    const why = validateAll(options.handlers);
    if (why) throw r.fail(new LoadValidationError(why));
  }
  return { reachedEof: end === 'eof', description, sections: state.sections, state };
}

/**
 * Goes on reading sections and commands after a command said quit (QEMU's postcopy listen
 * thread, which takes over the main stream after POSTCOPY_RUN), on `r` — the same reader, or
 * the new connection's after a postcopy recovery. No VM description follows a postcopy EOF.
 */
export async function continueLoadVm(r: StreamReader, options: LoadVmOptions, state: LoadVmState): Promise<LoadVmResult> {
  const end = await loadMain(r, options, state, false);
  if (end === 'eof' && (options.validate ?? true)) {
    const why = validateAll(options.handlers);
    if (why) throw r.fail(new LoadValidationError(why));
  }
  return { reachedEof: end === 'eof', description: null, sections: state.sections, state };
}

/** qemu_loadvm_state_main: sections and commands until EOF (or a command says quit). */
async function loadMain(r: StreamReader, options: LoadVmOptions, state: LoopState, nested: boolean): Promise<'eof' | 'quit'> {
  const footers = options.footers ?? true;
  const tap = options.tap ?? null;
  for (;;) {
    const type = await r.readU8();
    // Where this item began (its type byte), for the tap.
    const at = r.position - 1;
    switch (type) {
      case SectionType.EOF:
        // A package's own EOF ends the package, not the stream: not an item of its own.
        if (!nested) tap?.marker(type, at, 1);
        return 'eof';
      case SectionType.START:
      case SectionType.FULL: {
        const h = await readSectionStartFull(r, type);
        const handler = options.handlers.find((x) => x.kind !== 'configuration' && x.name === h.name && x.instanceId === h.instanceId);
        if (!handler) throw r.fail(unknownSectionError(h.name, h.instanceId));
        if (h.versionId > handler.version) {
          throw r.fail(new StreamFormatError('version-too-new', `savevm: unsupported version ${h.versionId} for '${h.name}' v${handler.version}`));
        }
        const ctx: LoadContext = { type, sectionId: h.sectionId, versionId: h.versionId };
        state.entries.set(h.sectionId, { handler, ctx });
        await handler.loadState(r, ctx);
        if (footers) await checkSectionFooter(r, h.sectionId, h.name);
        state.sections++;
        options.onSection?.(h.name, type);
        tap?.section({ type, sectionId: h.sectionId, name: h.name, instanceId: h.instanceId, version: h.versionId, offset: at, bytes: r.position - at, nested });
        break;
      }
      case SectionType.PART:
      case SectionType.END: {
        const sectionId = await readSectionPartEnd(r);
        const entry = state.entries.get(sectionId);
        if (!entry) throw r.fail(unknownSectionIdError(sectionId));
        await entry.handler.loadState(r, { ...entry.ctx, type });
        if (footers) await checkSectionFooter(r, sectionId, entry.handler.name);
        state.sections++;
        options.onSection?.(entry.handler.name, type);
        const h = entry.handler;
        tap?.section({ type, sectionId, name: h.name, instanceId: h.instanceId, version: entry.ctx.versionId, offset: at, bytes: r.position - at, nested });
        break;
      }
      case SectionType.COMMAND: {
        // Look at the command number before readCommand buffers a payload: a package that may
        // not be loaded is refused before its bytes are held (up to 16 MiB each).
        if (!r.has(2)) await r.ensure(2);
        if (((r.peekU8(0) << 8) | r.peekU8(1)) === MigCmd.PACKAGED) {
          if (nested) throw r.fail(new StreamFormatError('bad-command', 'CMD_PACKAGED inside a package: nested packages are not allowed'));
          if (!state.postcopyAdvised) throw r.fail(new StreamFormatError('bad-command', 'CMD_PACKAGED in wrong postcopy state (0): no POSTCOPY_ADVISE before it'));
        }
        const cmd = await readCommand(r, options.commandOptions);
        // Before a package's own sections, as they sit inside it.
        tap?.command(cmd, at, r.position - at, nested);
        if (cmd.type === 'PACKAGED') {
          // The package is a stream of its own (sections, then EOF), loaded as a unit.
          const inner = StreamReader.fromBytes(cmd.data);
          try {
            if ((await loadMain(inner, options, state, true)) === 'quit') return 'quit';
          } catch (e) {
            if (e instanceof Error) r.fail(e);
            throw e;
          }
        }
        if ((await options.onCommand?.(cmd)) === 'quit') return 'quit';
        if (cmd.type === 'POSTCOPY_ADVISE') state.postcopyAdvised = true;
        break;
      }
      default:
        throw r.fail(unknownSectionTypeError(type));
    }
  }
}
