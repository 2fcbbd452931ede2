// The control block: a small SharedArrayBuffer through which any thread (main, migration worker,
// incoming worker) steers the vCPU worker without going through the main thread's event loop.
// Every access is atomic. Requests are made by storing a word and Atomics.notify-ing it; the vCPU
// polls RUN_REQUEST every few thousand instructions and acknowledges through VCPU_STATE.

import { runStateIndex, runStateName, type RunState } from './runstate.js';

/** Int32 word indexes. */
export const Ctl = {
  /** 1 = the vCPU should execute, 0 = it should stop at the next instruction boundary. */
  RUN_REQUEST: 0,
  /** What the vCPU is actually doing: a VcpuState. */
  VCPU_STATE: 1,
  /** cpu_throttle percentage 0..99: the vCPU sleeps pct/(100-pct) of every 10 ms it runs. */
  THROTTLE_PCT: 2,
  /** The machine's QEMU runstate, as an index into RUN_STATES. */
  RUNSTATE: 3,
  /** Bumped whenever RAM contents change under the vCPU's feet (load, reset, incoming migration):
   *  the vCPU drops its decoded-instruction cache when it sees a new value. */
  GENERATION: 4,
  /** Bumped by the vCPU each time it has written its registers back into the device-state buffer. */
  STATE_SYNCS: 5,
  /** 1 when the page runs with only-migratable (QEMU's --only-migratable): set once at start by
   *  the main thread, read by the vCPU, which must refuse migration blockers on its own. */
  ONLY_MIGRATABLE: 6,
  /** Migration blockers and migrations exclude each other through this one word (GuardBit), so
   *  the vCPU enabling a non-migratable device and the main thread starting a migration cannot
   *  both win: each sets its bit by compare-and-exchange only while the other's is clear. */
  MIGRATION_GUARD: 7,
} as const;

/** Bits of Ctl.MIGRATION_GUARD. */
export const GuardBit = {
  /** An outgoing migration is in setup, active or cancelling (kept by the MigrationService). */
  MIGRATING: 1,
  /** The guest has enabled the tabmig-hostdev device (devices/host-device.ts). */
  HOSTDEV: 2,
  /** The main thread is rewriting RAM and device state (system_reset, x-tabmig-load). */
  RESETTING: 4,
  /** An outgoing migration stopped the guest for its switchover; kept until the migration ends. */
  SWITCHOVER: 8,
} as const;

/** Why a reset or a load is refused once a migration stopped the guest for its switchover. */
export const RESET_SWITCHOVER_TEXT = 'The guest is being migrated (finish-migrate): it cannot be reset or replaced until the migration ends';

/** Why the vCPU refused a migration blocker (QEMU's -EACCES and -EBUSY of migrate_add_blocker). */
export type BlockerRefusal = 'only-migratable' | 'migration-in-progress';
export type BlockerVerdict = 'ok' | BlockerRefusal;

/** BigInt64 word indexes (the same buffer, viewed as BigInt64Array; index 4 starts at byte 32). */
export const Ctl64 = {
  /** Instructions retired since the machine was created (keeps counting across resets). */
  INSTRET: 4,
  /** Milliseconds (performance.timeOrigin-based wall clock, x1000 = µs) when the vCPU last stopped. */
  STOPPED_AT_US: 5,
  /** The same clock when the vCPU last started executing; an incoming migration clears it first
   *  and reads it back, so `downtime` ends where the guest's own clock sees it end. */
  STARTED_AT_US: 6,
} as const;

export const VcpuState = {
  STOPPED: 0,
  RUNNING: 1,
  /** Guest fault with no handler: stopped for good until reset/load. */
  PANICKED: 2,
  /** Guest ended through tohost or the test finisher. */
  EXITED: 3,
  /** Sleeping for the throttle. Counts as running for QEMU; it wakes on a stop request. */
  THROTTLED: 4,
} as const;
export type VcpuStateValue = (typeof VcpuState)[keyof typeof VcpuState];

export const CONTROL_BLOCK_BYTES = 256;

export class ControlBlock {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(CONTROL_BLOCK_BYTES)) {
    this.i32 = new Int32Array(buffer);
    this.i64 = new BigInt64Array(buffer);
  }

  get runRequested(): boolean {
    return Atomics.load(this.i32, Ctl.RUN_REQUEST) === 1;
  }

  requestRun(run: boolean): void {
    Atomics.store(this.i32, Ctl.RUN_REQUEST, run ? 1 : 0);
    Atomics.notify(this.i32, Ctl.RUN_REQUEST);
  }

  get vcpuState(): VcpuStateValue {
    return Atomics.load(this.i32, Ctl.VCPU_STATE) as VcpuStateValue;
  }

  setVcpuState(state: VcpuStateValue): void {
    Atomics.store(this.i32, Ctl.VCPU_STATE, state);
    Atomics.notify(this.i32, Ctl.VCPU_STATE);
  }

  /**
   * After a requestRun(true) that followed clearStartedAt(): the wall clock (ms) at which the vCPU
   * really started, once it has; null if it has not within `timeoutMs`.
   */
  async startedAt(timeoutMs: number): Promise<number | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const us = Atomics.load(this.i64, Ctl64.STARTED_AT_US);
      if (us !== 0n) return Number(us) / 1000;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      const w = Atomics.waitAsync(this.i32, Ctl.VCPU_STATE, this.vcpuState, Math.min(left, 20));
      if (w.async) await w.value;
    }
  }

  clearStartedAt(): void {
    Atomics.store(this.i64, Ctl64.STARTED_AT_US, 0n);
  }

  get runstate(): RunState {
    return runStateName(Atomics.load(this.i32, Ctl.RUNSTATE));
  }

  set runstate(state: RunState) {
    Atomics.store(this.i32, Ctl.RUNSTATE, runStateIndex(state));
    Atomics.notify(this.i32, Ctl.RUNSTATE);
  }

  get throttlePercent(): number {
    return Atomics.load(this.i32, Ctl.THROTTLE_PCT);
  }

  set throttlePercent(pct: number) {
    Atomics.store(this.i32, Ctl.THROTTLE_PCT, Math.max(0, Math.min(99, Math.round(pct))));
  }

  get generation(): number {
    return Atomics.load(this.i32, Ctl.GENERATION);
  }

  bumpGeneration(): void {
    Atomics.add(this.i32, Ctl.GENERATION, 1);
    Atomics.notify(this.i32, Ctl.GENERATION);
  }

  get onlyMigratable(): boolean {
    return Atomics.load(this.i32, Ctl.ONLY_MIGRATABLE) === 1;
  }

  set onlyMigratable(on: boolean) {
    Atomics.store(this.i32, Ctl.ONLY_MIGRATABLE, on ? 1 : 0);
  }

  get hostDeviceEnabled(): boolean {
    return (Atomics.load(this.i32, Ctl.MIGRATION_GUARD) & GuardBit.HOSTDEV) !== 0;
  }

  /** vCPU side of QEMU's migrate_add_blocker for the host device: decided here, without a round
   *  trip to the main thread (which is told afterwards). */
  tryEnableHostDevice(): BlockerVerdict {
    if (this.onlyMigratable) return 'only-migratable';
    for (;;) {
      const old = Atomics.load(this.i32, Ctl.MIGRATION_GUARD);
      if (old & GuardBit.MIGRATING) return 'migration-in-progress';
      if (Atomics.compareExchange(this.i32, Ctl.MIGRATION_GUARD, old, old | GuardBit.HOSTDEV) === old) return 'ok';
    }
  }

  /** migrate_del_blocker for the host device (guest disable, reset, load). Returns whether it was on. */
  disableHostDevice(): boolean {
    return (Atomics.and(this.i32, Ctl.MIGRATION_GUARD, ~GuardBit.HOSTDEV) & GuardBit.HOSTDEV) !== 0;
  }

  /** Main thread, as a migration starts: false (and nothing set) if the guest has the host device
   *  enabled, even when the main thread has not heard about it yet. */
  tryBeginMigration(): boolean {
    for (;;) {
      const old = Atomics.load(this.i32, Ctl.MIGRATION_GUARD);
      if (old & GuardBit.HOSTDEV) return false;
      if (Atomics.compareExchange(this.i32, Ctl.MIGRATION_GUARD, old, old | GuardBit.MIGRATING) === old) return true;
    }
  }

  /** The outgoing migration has ended (completed, failed, cancelled): blockers and resets may come again. */
  endMigration(): void {
    Atomics.and(this.i32, Ctl.MIGRATION_GUARD, ~(GuardBit.MIGRATING | GuardBit.SWITCHOVER));
    Atomics.notify(this.i32, Ctl.MIGRATION_GUARD);
  }

  /**
   * Main thread, before a reset or a load rewrites the machine: false (and nothing set) once a
   * migration has stopped the guest for its switchover — what it sends must be what it stopped.
   */
  tryBeginReset(): boolean {
    for (;;) {
      const old = Atomics.load(this.i32, Ctl.MIGRATION_GUARD);
      if (old & GuardBit.SWITCHOVER) return false;
      if (Atomics.compareExchange(this.i32, Ctl.MIGRATION_GUARD, old, old | GuardBit.RESETTING) === old) return true;
    }
  }

  endReset(): void {
    Atomics.and(this.i32, Ctl.MIGRATION_GUARD, ~GuardBit.RESETTING);
    Atomics.notify(this.i32, Ctl.MIGRATION_GUARD);
  }

  /** Main thread: resolves once no migration holds the guest stopped for its switchover. */
  async whenMigrationEnds(): Promise<void> {
    for (;;) {
      const old = Atomics.load(this.i32, Ctl.MIGRATION_GUARD);
      if (!(old & GuardBit.SWITCHOVER)) return;
      const w = Atomics.waitAsync(this.i32, Ctl.MIGRATION_GUARD, old);
      if (w.async) await w.value;
    }
  }

  /**
   * Migration worker, before it stops the guest for the switchover: waits out a reset under way
   * (its RAM writes and dirty marks must all be in before the last sync), then keeps resets out
   * until endMigration. Resolves false if a reset still runs after `timeoutMs`.
   */
  async claimSwitchover(timeoutMs = 5000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const old = Atomics.load(this.i32, Ctl.MIGRATION_GUARD);
      if (!(old & GuardBit.RESETTING)) {
        if (Atomics.compareExchange(this.i32, Ctl.MIGRATION_GUARD, old, old | GuardBit.SWITCHOVER) === old) return true;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.i32, Ctl.MIGRATION_GUARD, old, left);
      if (w.async) await w.value;
    }
  }

  get instructionsRetired(): number {
    return Number(Atomics.load(this.i64, Ctl64.INSTRET));
  }

  /** Where the page's instruction counter goes on from: the guest's own minstret, when a new guest state arrives. */
  set instructionsRetired(n: number) {
    Atomics.store(this.i64, Ctl64.INSTRET, BigInt(Math.max(0, Math.floor(n))));
  }

  /** True when the vCPU is not executing guest code (and its registers are in the device-state buffer). */
  get vcpuIdle(): boolean {
    const s = this.vcpuState;
    return s === VcpuState.STOPPED || s === VcpuState.PANICKED || s === VcpuState.EXITED;
  }

  /**
   * Blocking stop for workers (Atomics.wait is not allowed on the main thread): asks the vCPU to
   * stop and waits until it has, or until timeoutMs passes. Returns whether it stopped.
   */
  stopAndWait(timeoutMs = 1000): boolean {
    this.requestRun(false);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = Atomics.load(this.i32, Ctl.VCPU_STATE);
      if (s !== VcpuState.RUNNING && s !== VcpuState.THROTTLED) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.i32, Ctl.VCPU_STATE, s, left);
    }
  }

  /** Non-blocking stop for the main thread. */
  async stopAsync(timeoutMs = 1000): Promise<boolean> {
    this.requestRun(false);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const s = Atomics.load(this.i32, Ctl.VCPU_STATE);
      if (s !== VcpuState.RUNNING && s !== VcpuState.THROTTLED) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.i32, Ctl.VCPU_STATE, s, left);
      if (w.async) await w.value;
    }
  }
}
