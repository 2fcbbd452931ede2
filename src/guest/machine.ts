// The machine as the main thread sees it: owns the shared buffers (RAM, dirty log, control block,
// device state) and the vCPU worker, keeps the QEMU runstate, and reports what the guest does as
// events. It imports nothing from the DOM: QMP and the UI sit on top of it.

import { bootProgram, checkBootable } from './boot.js';
import { DirtyLog } from './dirty-log.js';
import { ControlBlock, RESET_SWITCHOVER_TEXT, VcpuState, type BlockerRefusal } from './control-block.js';
import { readDisplayMode, type DisplayMode } from './devices/display.js';
import { DeviceName, DeviceState } from './device-state.js';
import { parseElf, type ElfImage } from './elf.js';
import { PAGE_SIZE, RAM_BASE, checkRamSize } from './memory-map.js';
import { findProgram, programImage } from './programs.js';
import type { RunState } from './runstate.js';
import type { FromVcpu, ToVcpu } from './vcpu-protocol.js';
import { PageGate } from './page-gate.js';

/** How much serial output the page keeps (x-tabmig-guest-info shows the last 4 KiB of it). */
const SERIAL_HISTORY_CHARS = 64 * 1024;

export interface MachineOptions {
  ramSize: number;
  /** The initial runstate: 'running', 'prelaunch' (QEMU's -S) or 'inmigrate' (-incoming). */
  runstate: RunState;
  /** QEMU's --only-migratable (the migration object's only-migratable property): the guest may
   *  not enable devices that block migration. The MigrationService sets it too. */
  onlyMigratable?: boolean;
}

export interface GuestExit {
  code: number;
  passed: boolean;
  via: 'tohost' | 'finisher';
}

export interface GuestInfo {
  program: string;
  args: string;
  'ram-size': number;
  instructions: number;
  serial: string;
  runstate: RunState;
  exit?: GuestExit;
  panic?: string;
  /** Whether the guest has the tabmig-hostdev device (a migration blocker) enabled. */
  hostdev?: boolean;
}

export type MachineEventMap = {
  runstate: { from: RunState; to: RunState };
  serial: { text: string };
  'guest-exit': GuestExit;
  'guest-panic': { message: string };
  reset: { guest: boolean };
  /** A new program was loaded (x-tabmig-load): a guest of this machine's own, from a fresh RAM. */
  load: { program: string };
  /** The host device was enabled or disabled (`enabled` is its state now), or the guest's enable
   *  was refused (`refused` says why; QEMU's migrate_add_blocker errors). */
  hostdev: { enabled: boolean; refused?: BlockerRefusal };
};

export class Machine extends EventTarget {
  readonly ramSize: number;
  readonly ram: SharedArrayBuffer;
  readonly ramBytes: Uint8Array;
  /** One byte per page, set by the vCPU after every store (see DESIGN.md §1). */
  readonly dirtyLog: SharedArrayBuffer;
  readonly control = new ControlBlock();
  readonly deviceState = new DeviceState();
  /** Postcopy's page gate (page-gate.ts): off except on a postcopy destination with pages missing. */
  readonly pageGate: PageGate;
  readonly ready: Promise<void>;

  private readonly worker: Worker;
  private image: ElfImage | null = null;
  private serialHistory = '';
  private readonly decoder = new TextDecoder();
  private exitInfo: GuestExit | undefined;
  private panicMessage: string | undefined;
  private hostdevEnabled = false;

  constructor(opts: MachineOptions) {
    super();
    checkRamSize(opts.ramSize);
    this.ramSize = opts.ramSize;
    this.ram = new SharedArrayBuffer(opts.ramSize);
    this.ramBytes = new Uint8Array(this.ram);
    this.dirtyLog = new SharedArrayBuffer(opts.ramSize / PAGE_SIZE);
    this.pageGate = new PageGate(opts.ramSize / PAGE_SIZE);
    this.pageGate.reset(true);
    this.control.runstate = opts.runstate;
    this.control.onlyMigratable = opts.onlyMigratable ?? false;
    this.worker = new Worker(new URL('./vcpu.worker.ts', import.meta.url), { type: 'module', name: 'vcpu' });
    this.ready = new Promise((resolve, reject) => {
      this.worker.addEventListener('message', (e: MessageEvent<FromVcpu>) => {
        if (e.data.type === 'ready') resolve();
        else this.onWorkerMessage(e.data);
      });
      this.worker.addEventListener('error', (e) => reject(new Error(`vCPU worker failed to start: ${e.message}`)));
    });
    const init: ToVcpu = {
      type: 'init',
      ram: this.ram,
      dirtyLog: this.dirtyLog,
      control: this.control.buffer,
      deviceState: this.deviceState.buffer,
      pageGate: this.pageGate.buffer,
    };
    this.worker.postMessage(init);
  }

  get runstate(): RunState {
    return this.control.runstate;
  }

  /** Changes the runstate, telling the vCPU whether to execute, and announces the change. */
  setRunstate(to: RunState): void {
    const from = this.control.runstate;
    this.control.runstate = to;
    this.control.requestRun(to === 'running');
    if (from !== to) this.emit('runstate', { from, to });
  }

  /** Records a runstate another thread (the migration worker) already put in the control block. */
  noteRunstate(from: RunState): void {
    const to = this.control.runstate;
    // A guest arrived (an incoming migration gave it, running or not): the instruction counter
    // goes on from its own minstret, as the vCPU's does when it next runs a new guest state.
    if (from === 'inmigrate' && to !== 'inmigrate') this.control.instructionsRetired = this.deviceState.get(DeviceName.CPU, 'minstret');
    if (from !== to) this.emit('runstate', { from, to });
  }

  get programName(): string {
    return this.deviceState.getString(DeviceName.MACHINE, 'program');
  }

  get programArgs(): string {
    return this.deviceState.getString(DeviceName.MACHINE, 'args');
  }

  /** Stops the guest (QEMU's vm_stop to 'paused'). Resolves once the vCPU has really stopped. */
  async stop(to: RunState = 'paused'): Promise<void> {
    await this.ready;
    await this.control.stopAsync();
    this.setRunstate(to);
  }

  /**
   * Set by whoever knows better than the runstate whether this guest may run here: migration
   * says no once the guest was committed to another tab. Returns the refusal's text, or null.
   */
  contRefusal: (() => string | null) | null = null;

  /**
   * Set by migration: why system_reset (and x-tabmig-load) may not rewrite the machine now (a
   * migration in flight would be damaged), or null.
   */
  resetRefusal: (() => string | null) | null = null;

  async cont(): Promise<void> {
    await this.ready;
    this.setRunstate('running');
  }

  /** Loads a new program into a fresh (zeroed) RAM, keeping the runstate (x-tabmig-load). */
  async load(program: { name: string; elf: Uint8Array } | { builtin: string }, args?: string): Promise<void> {
    let name: string;
    let image: ElfImage;
    if ('builtin' in program) {
      const p = findProgram(program.builtin);
      if (!p) throw new Error(`unknown program '${program.builtin}'`);
      name = p.name;
      image = programImage(p);
      args ??= p.defaultArgs;
    } else {
      name = program.name;
      image = parseElf(program.elf);
    }
    await this.reboot(image, name, args ?? '', true);
    this.emit('load', { program: name });
  }

  /** system_reset: reloads the program image and restarts the CPU (QEMU keeps RAM otherwise). */
  async reset(guest = false): Promise<void> {
    const image = this.image ?? this.imageFromDeviceState();
    await this.reboot(image, this.programName, this.programArgs, false, guest);
  }

  private async reboot(image: ElfImage | null, name: string, args: string, fresh: boolean, guest = false): Promise<void> {
    await this.ready;
    if (image) checkBootable(image, args, this.ramSize);
    const refusal = this.resetRefusal?.();
    if (refusal && !guest) throw new Error(refusal);
    // The guest's own reset waits for what a migration in flight needs: every postcopy page in
    // (pages still on their way would land over the new contents), the switchover over.
    if (this.pageGate.active) await this.pageGate.whenPresent(0, this.ramSize);
    while (!this.control.tryBeginReset()) {
      if (!guest) throw new Error(refusal ?? RESET_SWITCHOVER_TEXT);
      await this.control.whenMigrationEnds();
    }
    try {
      await this.rebootClaimed(image, name, args, fresh, guest);
    } finally {
      this.control.endReset();
    }
  }

  /** The reboot itself, with the migration guard held (no switchover can stop the guest meanwhile). */
  private async rebootClaimed(image: ElfImage | null, name: string, args: string, fresh: boolean, guest: boolean): Promise<void> {
    const before = this.runstate;
    // New RAM contents: nothing is missing any more (a vCPU waiting on a postcopy page lets go).
    this.pageGate.setActive(false);
    this.pageGate.reset(true);
    await this.control.stopAsync();
    // A reset unplugs nothing, but the device comes up disabled: its blocker goes.
    this.control.disableHostDevice();
    this.syncHostDevice();
    if (image) {
      bootProgram(this.ramBytes, this.deviceState, { image, program: name, args, clearRam: fresh });
      // These writes bypass the vCPU, so they must be logged by hand: a migration running
      // meanwhile then sends the new contents again (a reset is just guest activity to it).
      new DirtyLog(this.dirtyLog).markAll();
    }
    this.image = image;
    this.exitInfo = undefined;
    this.panicMessage = undefined;
    if (fresh) this.serialHistory = '';
    this.control.bumpGeneration();
    // QEMU: a reset leaves a running (or migrating) machine as it was; any other becomes prelaunch.
    // A load keeps a paused machine paused, as the user asked for a different program, not a boot.
    let after: RunState = before;
    if (!['running', 'inmigrate', 'finish-migrate'].includes(before) && !(fresh && before === 'paused')) after = 'prelaunch';
    this.setRunstate(after);
    this.emit('reset', { guest });
  }

  /** After an incoming migration the program is known only by name: find its image for resets. */
  private imageFromDeviceState(): ElfImage | null {
    const p = findProgram(this.programName);
    return p ? programImage(p) : null;
  }

  sendInput(text: string): void {
    const msg: ToVcpu = { type: 'input', bytes: new TextEncoder().encode(text) };
    this.worker.postMessage(msg);
  }

  get instructionsRetired(): number {
    return this.control.instructionsRetired;
  }

  get serialOutput(): string {
    return this.serialHistory;
  }

  /** Whether the guest has the tabmig-hostdev device enabled (as last heard on this thread). */
  get hostDeviceEnabled(): boolean {
    return this.hostdevEnabled;
  }

  get display(): DisplayMode {
    return readDisplayMode(this.deviceState);
  }

  guestInfo(): GuestInfo {
    const info: GuestInfo = {
      program: this.programName,
      args: this.programArgs,
      'ram-size': this.ramSize,
      instructions: this.instructionsRetired,
      serial: this.serialHistory.slice(-4096),
      runstate: this.runstate,
      hostdev: this.control.hostDeviceEnabled,
    };
    if (this.exitInfo) info.exit = this.exitInfo;
    if (this.panicMessage) info.panic = this.panicMessage;
    return info;
  }

  /** SHA-256 of all guest RAM, hex (WebCrypto will not hash shared memory, so copy it first). */
  async ramHash(): Promise<string> {
    // Postcopy: every page must be here before it is read (never hash a missing page as zeros).
    await this.pageGate.whenPresent(0, this.ramSize);
    const copy = new Uint8Array(this.ramSize);
    copy.set(this.ramBytes);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', copy));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** Postcopy: resolves once the guest-physical range is in RAM (asks for the missing pages). */
  async whenResident(addr: number, length: number): Promise<void> {
    const at = addr - RAM_BASE;
    if (at < 0 || at >= this.ramSize) return;
    await this.pageGate.whenPresent(at, Math.min(length, this.ramSize - at));
  }

  /** Guest-physical read for the monitor (`xp`): RAM only; null where nothing readable is mapped. */
  readPhysical(addr: number, length: number): Uint8Array | null {
    const at = addr - RAM_BASE;
    if (at < 0 || at + length > this.ramSize) return null;
    // A page that has not arrived (postcopy) is not readable yet: callers await whenResident().
    if (this.pageGate.anyMissing(at, length)) return null;
    return this.ramBytes.slice(at, at + length);
  }

  private onWorkerMessage(msg: FromVcpu): void {
    switch (msg.type) {
      case 'serial': {
        const text = this.decoder.decode(msg.bytes, { stream: true });
        this.serialHistory = (this.serialHistory + text).slice(-SERIAL_HISTORY_CHARS);
        this.emit('serial', { text });
        return;
      }
      case 'exit':
        this.exitInfo = { code: msg.code, passed: msg.code === (msg.via === 'tohost' ? 1 : 0), via: msg.via };
        if (msg.via === 'tohost') this.exitInfo.code = msg.code === 1 ? 0 : msg.code >>> 1;
        this.setRunstate('shutdown');
        this.emit('guest-exit', this.exitInfo);
        return;
      case 'panic':
        this.panicMessage = msg.message;
        this.setRunstate('guest-panicked');
        this.emit('guest-panic', { message: msg.message });
        return;
      case 'internal-error':
        this.panicMessage = `internal error: ${msg.message}`;
        this.setRunstate('internal-error');
        this.emit('guest-panic', { message: this.panicMessage });
        return;
      case 'hostdev':
        this.syncHostDevice(msg.refused);
        return;
      case 'reset-request':
        void this.reset(true);
        return;
      case 'ready':
        return;
    }
  }

  /** Announces the host device's state from the control block, which is the truth (a message can
   *  arrive after a reset already turned the device off), plus any refusal the vCPU reported. */
  private syncHostDevice(refused?: BlockerRefusal): void {
    const enabled = this.control.hostDeviceEnabled;
    if (enabled === this.hostdevEnabled && !refused) return;
    this.hostdevEnabled = enabled;
    this.emit('hostdev', refused ? { enabled, refused } : { enabled });
  }

  private emit<K extends keyof MachineEventMap>(type: K, detail: MachineEventMap[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** True while the vCPU thread is executing guest code. */
  get vcpuRunning(): boolean {
    const s = this.control.vcpuState;
    return s === VcpuState.RUNNING || s === VcpuState.THROTTLED;
  }

  terminate(): void {
    this.worker.terminate();
  }
}
