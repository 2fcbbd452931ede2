// The vCPU thread: runs the guest CPU over shared guest RAM. It obeys the control block (run,
// stop, throttle, generation) between slices of a few thousand instructions, so any thread can
// stop it within a fraction of a millisecond without going through the main thread. It never
// dies on a guest error: faults become a guest-panicked machine, exits a shut-down one.

import { StopReason } from './bus.js';
import { ControlBlock, Ctl, Ctl64, VcpuState } from './control-block.js';
import { Cpu } from './cpu/cpu.js';
import { Clint, wallClockMicros } from './devices/clint.js';
import { Display } from './devices/display.js';
import { HostDevice } from './devices/host-device.js';
import { createMmioBus } from './devices/mmio.js';
import { TestFinisher } from './devices/test-finisher.js';
import { Uart } from './devices/uart.js';
import { DeviceName, DeviceState } from './device-state.js';
import type { FromVcpu, ToVcpu, VcpuInit } from './vcpu-protocol.js';
import { GateWord, PageGate } from './page-gate.js';

/** Instructions between looks at the control block (~0.15 ms at 100 MIPS: a stop lands well within 1 ms). */
const SLICE_INSTRUCTIONS = 16384;
/** Wall time between returns to the event loop, to take keyboard input and post serial output. */
const EVENT_LOOP_EVERY_MS = 4;
/** QEMU's cpu_throttle time slice. */
const THROTTLE_SLICE_MS = 10;
const MIP_MSIP = 1 << 3;
const MIP_MTIP = 1 << 7;

const post = (msg: FromVcpu, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(msg, transfer);

class VcpuThread {
  private readonly ctl: ControlBlock;
  private readonly state: DeviceState;
  private readonly cpu: Cpu;
  private readonly uart: Uart;
  private readonly clint: Clint;
  private readonly finisher = new TestFinisher();
  private readonly hostdev: HostDevice;
  private serialOut: number[] = [];
  private generation = -1;
  private inputArrived: (() => void) | null = null;
  private readonly tick = new MessageChannel();
  private tickResolve: (() => void) | null = null;
  /** Start of the current throttle time slice. A field, not a local of runUntilEventLoop: that
   *  returns to the event loop every EVENT_LOOP_EVERY_MS (< THROTTLE_SLICE_MS), so a per-call
   *  start never reached a full slice and the throttle never slept. WFI sleeps are excluded. */
  private runningSince = 0;
  /** Postcopy's page gate, and whether the CPU has it on (looked at once per slice). */
  private readonly gate: PageGate | null;
  private gateOn = false;

  constructor(init: VcpuInit) {
    this.ctl = new ControlBlock(init.control);
    this.state = new DeviceState(init.deviceState);
    this.uart = new Uart(this.state, (b) => this.serialOut.push(b));
    this.clint = new Clint(this.state);
    this.hostdev = new HostDevice(this.ctl);
    const mmio = createMmioBus({
      uart: this.uart,
      clint: this.clint,
      display: new Display(this.state),
      finisher: this.finisher,
      hostdev: this.hostdev,
    });
    this.cpu = new Cpu({
      ram: init.ram,
      ramSize: init.ram.byteLength,
      dirtyLog: new Uint8Array(init.dirtyLog),
      state: this.state,
      mmio,
      readTime: () => this.clint.mtime(),
    });
    this.tick.port1.onmessage = () => this.tickResolve?.();
    this.gate = init.pageGate ? new PageGate(init.pageGate) : null;
  }

  /** Follows the gate's ACTIVE word: the CPU checks pages only while postcopy has some missing. */
  private followGate(): void {
    const gate = this.gate!;
    this.gateOn = !this.gateOn;
    this.cpu.setPageGate(this.gateOn ? { present: gate.present, waitFor: (page) => gate.waitFor(page) } : null);
  }

  input(bytes: Uint8Array): void {
    this.uart.receive(bytes);
    this.inputArrived?.();
  }

  async loop(): Promise<never> {
    for (;;) {
      try {
        await this.step();
      } catch (e) {
        // A bug of ours, not the guest's: stop cleanly and say so rather than killing the thread.
        this.cpu.saveState();
        this.ctl.setVcpuState(VcpuState.PANICKED);
        post({ type: 'internal-error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      }
    }
  }

  private async step(): Promise<void> {
    const vs = this.ctl.vcpuState;
    // A panicked or exited machine stays so until a load, reset or incoming migration changes RAM.
    if ((vs === VcpuState.PANICKED || vs === VcpuState.EXITED) && this.ctl.generation === this.generation) {
      await this.waitWord(Ctl.GENERATION, this.generation, Infinity);
      this.ctl.setVcpuState(VcpuState.STOPPED);
      return;
    }
    if (!this.ctl.runRequested) {
      if (vs !== VcpuState.STOPPED) this.park();
      await this.waitWord(Ctl.RUN_REQUEST, 0, Infinity);
      return;
    }
    if (vs !== VcpuState.RUNNING) this.unpark();
    await this.runUntilEventLoop();
  }

  /** Leaves the registers in the shared device state and says the vCPU is idle. */
  private park(): void {
    this.cpu.saveState();
    this.flushSerial();
    Atomics.store(this.ctl.i64, Ctl64.STOPPED_AT_US, BigInt(Math.floor(wallClockMicros())));
    Atomics.add(this.ctl.i32, Ctl.STATE_SYNCS, 1);
    this.ctl.setVcpuState(VcpuState.STOPPED);
  }

  /** Picks up whatever the other threads put into the device state while we were stopped. */
  private unpark(): void {
    const gen = this.ctl.generation;
    const fresh = gen !== this.generation;
    if (fresh) {
      this.generation = gen;
      this.cpu.flushDecodeCache();
      this.finisher.take();
      this.hostdev.reset();
    }
    this.cpu.loadState();
    // A new guest state (a load, a reset, a migration that arrived): the page's instruction
    // counter goes on from the guest's own minstret, so a migrated guest keeps its count.
    if (fresh) this.ctl.instructionsRetired = this.cpu.instructionsRetired;
    this.cpu.setTohost(this.state.get(DeviceName.MACHINE, 'tohost'));
    this.runningSince = performance.now();
    Atomics.store(this.ctl.i64, Ctl64.STARTED_AT_US, BigInt(Math.floor(wallClockMicros())));
    this.ctl.setVcpuState(VcpuState.RUNNING);
  }

  private async runUntilEventLoop(): Promise<void> {
    const start = performance.now();
    const i32 = this.ctl.i32;
    const gateWords = this.gate?.words;
    while (Atomics.load(i32, Ctl.RUN_REQUEST) === 1 && Atomics.load(i32, Ctl.GENERATION) === this.generation) {
      if (gateWords && (Atomics.load(gateWords, GateWord.ACTIVE) !== 0) !== this.gateOn) this.followGate();
      this.updateInterrupts();
      const reason = this.cpu.run(SLICE_INSTRUCTIONS);
      Atomics.add(this.ctl.i64, Ctl64.INSTRET, BigInt(this.cpu.lastRunInstructions));
      const request = this.finisher.take();
      if (request?.kind === 'exit') return this.exit(request.code, 'finisher');
      if (request?.kind === 'reset' || reason === StopReason.RESET) return this.requestReset();
      if (reason === StopReason.EXIT) return this.exit(this.cpu.exitCode, 'tohost');
      if (reason === StopReason.PANIC) return this.panic(this.cpu.panicMessage);
      if (reason === StopReason.WFI) {
        const sleptAt = performance.now();
        await this.sleepUntilInterrupt();
        this.runningSince += performance.now() - sleptAt;
        return;
      }
      const now = performance.now();
      const pct = Atomics.load(i32, Ctl.THROTTLE_PCT);
      if (pct === 0) this.runningSince = now; // a slice starts when throttling does
      else if (now - this.runningSince >= THROTTLE_SLICE_MS) {
        await this.throttleSleep(((now - this.runningSince) * pct) / (100 - pct));
        this.runningSince = performance.now();
        return;
      }
      if (now - start >= EVENT_LOOP_EVERY_MS) break;
    }
    // Stopped, reset, or time to look at messages: a generation change means someone rewrote RAM
    // and device state, so our registers are stale — do not save them over the new ones.
    if (Atomics.load(i32, Ctl.GENERATION) !== this.generation) {
      this.ctl.setVcpuState(VcpuState.STOPPED);
      return;
    }
    this.flushSerial();
    await this.yieldToEventLoop();
  }

  private updateInterrupts(): void {
    this.cpu.setInterruptPending(MIP_MTIP, this.clint.timerPending);
    this.cpu.setInterruptPending(MIP_MSIP, this.clint.softwarePending);
  }

  private exit(code: number, via: 'tohost' | 'finisher'): void {
    this.cpu.saveState();
    this.state.set(DeviceName.MACHINE, 'exit_code', code);
    this.flushSerial();
    this.ctl.setVcpuState(VcpuState.EXITED);
    post({ type: 'exit', code, via });
  }

  private panic(message: string): void {
    this.cpu.saveState();
    this.flushSerial();
    this.ctl.setVcpuState(VcpuState.PANICKED);
    post({ type: 'panic', message });
  }

  private requestReset(): void {
    this.park();
    this.ctl.requestRun(false);
    post({ type: 'reset-request' });
  }

  /** WFI: sleep until the timer is due, input arrives, or another thread wants something. */
  private async sleepUntilInterrupt(): Promise<void> {
    this.flushSerial();
    const ms = Math.min(this.clint.msUntilTimer(), 50);
    if (ms <= 0 || this.uart.hasPendingInput) return;
    const input = new Promise<void>((r) => (this.inputArrived = r));
    await Promise.race([this.waitWord(Ctl.RUN_REQUEST, 1, ms), input]);
    this.inputArrived = null;
  }

  private async throttleSleep(ms: number): Promise<void> {
    this.flushSerial();
    this.ctl.setVcpuState(VcpuState.THROTTLED);
    await this.waitWord(Ctl.RUN_REQUEST, 1, ms);
    if (this.ctl.vcpuState === VcpuState.THROTTLED) this.ctl.setVcpuState(VcpuState.RUNNING);
  }

  private waitWord(index: number, value: number, ms: number): Promise<unknown> {
    const w = Atomics.waitAsync(this.ctl.i32, index, value, ms === Infinity ? undefined : ms);
    return w.async ? w.value : Promise.resolve(w.value);
  }

  /** A MessageChannel round trip: lets queued messages run without setTimeout's clamping. */
  private yieldToEventLoop(): Promise<void> {
    return new Promise((r) => {
      this.tickResolve = r;
      this.tick.port2.postMessage(0);
    });
  }

  /** Posts the guest's output: host device news first (so a blocker is in place by the time the
   *  guest's line about it arrives), then the serial bytes. */
  private flushSerial(): void {
    const hostdev = this.hostdev.takeReport();
    if (hostdev) post({ type: 'hostdev', ...hostdev });
    if (this.serialOut.length === 0) return;
    const bytes = Uint8Array.from(this.serialOut);
    this.serialOut = [];
    post({ type: 'serial', bytes }, [bytes.buffer]);
  }
}

let thread: VcpuThread | null = null;
self.onmessage = (e: MessageEvent<ToVcpu>) => {
  const msg = e.data;
  if (msg.type === 'init') {
    thread = new VcpuThread(msg);
    post({ type: 'ready' });
    void thread.loop();
  } else if (msg.type === 'input') {
    thread?.input(msg.bytes);
  }
};
