// CLINT timer as on QEMU `virt`: mtime at 10 MHz, mtimecmp, msip. mtime follows the host's wall
// clock from an epoch kept in device state, so it stays continuous when the machine migrates to
// another tab (both tabs share the wall clock) and the guest sees migration downtime as a gap.

import { CLINT_MSIP, CLINT_MTIME, CLINT_MTIMECMP, TIMEBASE_HZ } from '../memory-map.js';
import { DeviceName, fieldLayout, type DeviceState } from '../device-state.js';

const EPOCH = fieldLayout(DeviceName.CLINT, 'epoch_us').offset;
const MTIMECMP = fieldLayout(DeviceName.CLINT, 'mtimecmp').offset;
const MSIP = fieldLayout(DeviceName.CLINT, 'msip').offset;
const TICKS_PER_US = TIMEBASE_HZ / 1_000_000;

/** Microseconds since the Unix epoch, from a monotonic source where the platform has one. */
export function wallClockMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export class Clint {
  private readonly view: DataView;

  constructor(state: DeviceState) {
    this.view = state.view;
  }

  /** Power-on: mtime restarts at 0, no timer armed. */
  reset(): void {
    this.view.setBigUint64(EPOCH, BigInt(Math.floor(wallClockMicros())), true);
    this.view.setBigUint64(MTIMECMP, 0xffff_ffff_ffff_ffffn, true);
    this.view.setUint32(MSIP, 0, true);
  }

  mtime(): number {
    const epoch = Number(this.view.getBigUint64(EPOCH, true));
    return Math.max(0, Math.floor((wallClockMicros() - epoch) * TICKS_PER_US));
  }

  mtimecmp(): number {
    return Number(this.view.getBigUint64(MTIMECMP, true));
  }

  get timerPending(): boolean {
    return this.mtime() >= this.mtimecmp();
  }

  get softwarePending(): boolean {
    return (this.view.getUint32(MSIP, true) & 1) !== 0;
  }

  /** Milliseconds until the timer fires (0 if already due, Infinity if not armed). */
  msUntilTimer(): number {
    const cmp = this.mtimecmp();
    if (cmp >= 2 ** 63) return Infinity;
    return Math.max(0, (cmp - this.mtime()) / (TICKS_PER_US * 1000));
  }

  read(offset: number, size: number): number | undefined {
    if (offset === CLINT_MSIP && size === 4) return this.view.getUint32(MSIP, true);
    const word = this.word64At(offset);
    if (word === undefined) return undefined;
    const [value, shift] = word;
    if (size === 4) return Number((value >> BigInt(shift)) & 0xffff_ffffn);
    return undefined;
  }

  write(offset: number, size: number, value: number): boolean {
    if (size !== 4) return false;
    if (offset === CLINT_MSIP) {
      this.view.setUint32(MSIP, value & 1, true);
      return true;
    }
    const v = BigInt(value >>> 0);
    if (offset === CLINT_MTIMECMP || offset === CLINT_MTIMECMP + 4) {
      const old = this.view.getBigUint64(MTIMECMP, true);
      const next = offset === CLINT_MTIMECMP ? (old & 0xffff_ffff_0000_0000n) | v : (old & 0xffff_ffffn) | (v << 32n);
      this.view.setBigUint64(MTIMECMP, next, true);
      return true;
    }
    if (offset === CLINT_MTIME || offset === CLINT_MTIME + 4) {
      const old = BigInt(this.mtime());
      const next = offset === CLINT_MTIME ? (old & 0xffff_ffff_0000_0000n) | v : (old & 0xffff_ffffn) | (v << 32n);
      // Writing mtime moves the epoch so that mtime reads back as written.
      const epoch = wallClockMicros() - Number(next) / TICKS_PER_US;
      this.view.setBigUint64(EPOCH, BigInt(Math.floor(epoch)), true);
      return true;
    }
    return false;
  }

  private word64At(offset: number): [bigint, number] | undefined {
    if (offset === CLINT_MTIME || offset === CLINT_MTIME + 4) return [BigInt(this.mtime()), (offset - CLINT_MTIME) * 8];
    if (offset === CLINT_MTIMECMP || offset === CLINT_MTIMECMP + 4) {
      return [this.view.getBigUint64(MTIMECMP, true), (offset - CLINT_MTIMECMP) * 8];
    }
    return undefined;
  }
}
