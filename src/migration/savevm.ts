// The savevm loop (QEMU's qemu_savevm_state_* in savevm.c): one registry of SaveHandlers and
// the one place that frames their data. A live migration and a `file:`/`idb:` snapshot are both
// driven through it, so the stream has exactly one framing:
//
//   header, configuration, setup commands, START+setup per iterable, (PART+iterate)*,
//   END+completePrecopy per iterable, FULL+completePrecopy per device, EOF, VM description
//
// Section ids are handed out in registration order, as QEMU's register_savevm_live does, so a
// handler that is inactive for one migration keeps its id and the others keep theirs. Handlers
// write only their section's data; headers, footers and the description are written here.
// Everything here runs in the source's migration worker (or the snapshot writer's thread).

import type { PendingBytes, SaveHandler } from './handlers.js';
import { VM_DESCRIPTION_TYPE, type StreamTap } from './stream-tap.js';
import {
  SectionType,
  assembleVmDescription,
  writeCommand,
  writeEof,
  writeSectionEnd,
  writeSectionFooter,
  writeSectionFull,
  writeSectionPart,
  writeSectionStart,
  writeStreamHeader,
  writeVmDescription,
  type DeviceDescription,
  type MigCommand,
  type StreamWriter,
  type VmsdDescription,
} from './stream/index.js';

export interface SaveVmOptions {
  /** QEMU's send-section-footer: a footer after every section's data. */
  readonly footers: boolean;
  /** The guest's target page size, for the VM description. */
  readonly pageSize: number;
  /** Write the VM description after EOF (default true). */
  readonly description?: boolean;
  /** Told of every section, command and end marker as it is written (the stream inspector's log). */
  readonly tap?: StreamTap | null;
}

interface Entry {
  readonly handler: SaveHandler;
  /** Stream section id; -1 for the configuration section, which has none. */
  readonly sectionId: number;
}

/** The handlers of one machine, in registration order (QEMU's savevm_state.handlers). */
export class SaveHandlerRegistry {
  private readonly list: Entry[] = [];
  private nextId = 0;

  /** Registers a handler and returns its section id (-1 for the configuration section). */
  register(handler: SaveHandler): number {
    if (handler.kind !== 'configuration' && this.list.some((e) => e.handler.name === handler.name && e.handler.instanceId === handler.instanceId)) {
      throw new Error(`savevm: section '${handler.name}' instance ${handler.instanceId} registered twice`);
    }
    if (handler.kind === 'configuration' && this.list.some((e) => e.handler.kind === 'configuration')) {
      throw new Error('savevm: a second configuration section');
    }
    const sectionId = handler.kind === 'configuration' ? -1 : this.nextId++;
    this.list.push({ handler, sectionId });
    return sectionId;
  }

  get entries(): readonly Entry[] {
    return this.list;
  }

  sectionId(name: string, instanceId = 0): number | undefined {
    return this.list.find((e) => e.handler.name === name && e.handler.instanceId === instanceId)?.sectionId;
  }
}

function active(h: SaveHandler): boolean {
  return h.isActive ? h.isActive() : true;
}

/**
 * One run of the loop over a registry and one stream writer. The caller (the migration thread,
 * the snapshot writer) decides when to iterate and when to complete; this class decides what
 * goes on the wire and in which frame.
 */
export class SaveVmLoop {
  private readonly entries: readonly Entry[];
  /** The configuration and iterables taking part, asked at setup (QEMU asks is_active per phase). */
  private participants: Entry[] = [];
  /** Device sections taking part, asked at completion (globalstate depends on the stopped runstate). */
  private devices: Entry[] = [];
  private cleanedUp = false;

  constructor(
    registry: SaveHandlerRegistry,
    private w: StreamWriter,
    private readonly options: SaveVmOptions,
  ) {
    this.entries = registry.entries;
  }

  /**
   * qemu_savevm_state_header + qemu_savevm_state_setup: the header, the configuration section,
   * the caller's setup commands (OPEN_RETURN_PATH, PING…; none for a saved file), then START and
   * setup() for every iterable.
   */
  async setup(commands: readonly MigCommand[] = []): Promise<void> {
    this.participants = this.entries.filter((e) => e.handler.kind !== 'device' && active(e.handler));
    writeStreamHeader(this.w);
    for (const e of this.participants) {
      if (e.handler.kind !== 'configuration') continue;
      const at = this.w.transferred;
      this.w.putU8(SectionType.CONFIGURATION);
      await e.handler.completePrecopy(this.w);
      this.passed(e, SectionType.CONFIGURATION, at);
    }
    for (const cmd of commands) this.command(cmd);
    for (const e of this.iterables()) {
      const h = e.handler;
      const at = this.w.transferred;
      writeSectionStart(this.w, e.sectionId, h.name, h.instanceId, h.version);
      await h.setup?.(this.w);
      this.footer(e.sectionId);
      this.passed(e, SectionType.START, at);
    }
  }

  /** qemu_savevm_state_pending: what the iterables still have to send. */
  pending(thresholdBytes: number): PendingBytes {
    const out: PendingBytes = { precopyOnly: 0, postcopyable: 0 };
    for (const e of this.iterables()) {
      const p = e.handler.pending?.(thresholdBytes);
      if (!p) continue;
      out.precopyOnly += p.precopyOnly;
      out.postcopyable += p.postcopyable;
    }
    return out;
  }

  /**
   * qemu_savevm_state_iterate: a PART per iterable, until one of them says it has more to send
   * (it stopped for the rate limit or back-pressure). Resolves true when every one is done.
   */
  async iterate(): Promise<boolean> {
    for (const e of this.iterables()) {
      if (this.w.rateLimitExceeded()) return false;
      const at = this.w.transferred;
      writeSectionPart(this.w, e.sectionId);
      const done = e.handler.iterate ? await e.handler.iterate(this.w) : true;
      this.footer(e.sectionId);
      this.passed(e, SectionType.PART, at);
      if (!done) return false;
    }
    return true;
  }

  /** Writes a command mid-stream (a PING, postcopy's commands), or into a package being built (`w`). */
  command(cmd: MigCommand, w: StreamWriter = this.w): void {
    const at = w.transferred;
    writeCommand(w, cmd);
    this.options.tap?.command(cmd, at, w.transferred - at, w !== this.w);
  }

  /**
   * qemu_savevm_state_complete_precopy, the guest stopped: END and completePrecopy() for every
   * iterable, then FULL and completePrecopy() for every device in registration order, EOF and the
   * VM description. Does not flush: the caller awaits the writer.
   */
  async completePrecopy(): Promise<void> {
    for (const e of this.iterables()) {
      const at = this.w.transferred;
      writeSectionEnd(this.w, e.sectionId);
      await e.handler.completePrecopy(this.w);
      this.footer(e.sectionId);
      this.passed(e, SectionType.END, at);
    }
    this.devices = this.entries.filter((e) => e.handler.kind === 'device' && active(e.handler));
    for (const e of this.devices) {
      const h = e.handler;
      const at = this.w.transferred;
      writeSectionFull(this.w, e.sectionId, h.name, h.instanceId, h.version);
      await h.completePrecopy(this.w);
      this.footer(e.sectionId);
      this.passed(e, SectionType.FULL, at);
    }
    this.eof();
    if (this.options.description ?? true) {
      const at = this.w.transferred;
      writeVmDescription(this.w, this.describe());
      this.options.tap?.marker(VM_DESCRIPTION_TYPE, at, this.w.transferred - at);
    }
  }

  /**
   * Postcopy's package (QEMU's postcopy_start): every device section as FULL into `w` (a buffer
   * that goes out inside PACKAGED), and no EOF — the stream goes on after POSTCOPY_RUN.
   */
  async saveDevices(w: StreamWriter): Promise<void> {
    this.devices = this.entries.filter((e) => e.handler.kind === 'device' && active(e.handler));
    for (const e of this.devices) {
      const h = e.handler;
      const at = w.transferred;
      writeSectionFull(w, e.sectionId, h.name, h.instanceId, h.version);
      await h.completePrecopy(w);
      if (this.options.footers) writeSectionFooter(w, e.sectionId);
      this.passed(e, SectionType.FULL, at, w);
    }
  }

  /**
   * qemu_savevm_state_complete_postcopy: END and completePostcopy() (else completePrecopy()) for
   * every iterable, then EOF. No VM description: the devices went in the package.
   */
  async completePostcopy(): Promise<void> {
    for (const e of this.iterables()) {
      const at = this.w.transferred;
      writeSectionEnd(this.w, e.sectionId);
      const h = e.handler;
      if (h.completePostcopy) await h.completePostcopy(this.w);
      else await h.completePrecopy(this.w);
      this.footer(e.sectionId);
      this.passed(e, SectionType.END, at);
    }
    this.eof();
  }

  /**
   * A PART its owner framed itself, from `at` to here (postcopy's urgent pages on the main
   * stream, between iterations): the tap hears of it as of any other.
   */
  partWritten(sectionId: number, at: number): void {
    const e = this.entries.find((x) => x.sectionId === sectionId);
    if (e) this.passed(e, SectionType.PART, at);
  }

  /** Postcopy recovery: the stream goes on through a new connection's writer. */
  rebind(w: StreamWriter): void {
    this.w = w;
  }

  /** Every handler's cleanup, once, whatever the outcome (QEMU's qemu_savevm_state_cleanup). */
  cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    for (const e of this.entries) {
      try {
        e.handler.cleanup?.();
      } catch {
        // one handler's failed cleanup must not keep the others from releasing theirs
      }
    }
  }

  /** The VM description: every device section that went out, and the configuration. */
  describe() {
    let configuration: VmsdDescription | undefined;
    const devices: DeviceDescription[] = [];
    for (const e of this.participants) {
      const h = e.handler;
      if (h.kind === 'configuration' && h.fields) configuration = { vmsd_name: h.name, version: h.version, fields: h.fields, subsections: [] };
    }
    for (const { handler: h } of this.devices) {
      // Key order as QEMU writes it (analyze-migration.py does not care; byte-identity does).
      devices.push({ name: h.name, instance_id: h.instanceId, vmsd_name: h.name, version: h.version, fields: h.fields ?? [], subsections: [] });
    }
    return assembleVmDescription(this.options.pageSize, devices, configuration);
  }

  private iterables(): Entry[] {
    return this.participants.filter((e) => e.handler.kind === 'iterable');
  }

  private footer(sectionId: number): void {
    if (this.options.footers) writeSectionFooter(this.w, sectionId);
  }

  private eof(): void {
    const at = this.w.transferred;
    writeEof(this.w);
    this.options.tap?.marker(SectionType.EOF, at, this.w.transferred - at);
  }

  /** Tells the tap of a section that began at `at` on `w` and ends where `w` stands now. */
  private passed(e: Entry, type: number, at: number, w: StreamWriter = this.w): void {
    const tap = this.options.tap;
    if (!tap) return;
    const h = e.handler;
    tap.section({ type, sectionId: e.sectionId, name: h.name, instanceId: h.instanceId, version: h.version, offset: at, bytes: w.transferred - at, nested: w !== this.w });
  }
}
