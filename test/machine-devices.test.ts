// The machine's devices driven directly over a DeviceState, as the vCPU drives them (no worker):
// what a guest polling the UART, arming the CLINT timer, setting up the display or ending its run
// through the test finisher sees, and how the MMIO bus routes (and refuses) accesses.

import { ControlBlock } from '../src/guest/control-block.js';
import { Clint, wallClockMicros } from '../src/guest/devices/clint.js';
import { Display, readDisplayMode } from '../src/guest/devices/display.js';
import { HostDevice } from '../src/guest/devices/host-device.js';
import { createMmioBus } from '../src/guest/devices/mmio.js';
import { TestFinisher } from '../src/guest/devices/test-finisher.js';
import { Uart } from '../src/guest/devices/uart.js';
import { DeviceName, DeviceState } from '../src/guest/device-state.js';
import {
  CLINT_BASE,
  CLINT_MSIP,
  CLINT_MTIME,
  CLINT_MTIMECMP,
  CLINT_SIZE,
  DISPLAY_BASE,
  DISPLAY_ENABLE,
  DISPLAY_FB_ADDR,
  DISPLAY_FRAME,
  DISPLAY_HEIGHT,
  DISPLAY_MAX_HEIGHT,
  DISPLAY_MAX_WIDTH,
  DISPLAY_SIZE,
  DISPLAY_STRIDE,
  DISPLAY_WIDTH,
  EXIT_BASE,
  EXIT_SIZE,
  HOSTDEV_BASE,
  HOSTDEV_SIZE,
  RAM_BASE,
  TIMEBASE_HZ,
  UART_BASE,
  UART_SIZE,
} from '../src/guest/memory-map.js';
import { deepEqual, equal, eventually, ok } from './helpers/assert.js';

// 16550 register offsets and bits, as a guest driver names them.
const RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const LCR_DLAB = 0x80;

function uart(): { u: Uart; out: number[]; state: DeviceState } {
  const state = new DeviceState();
  const out: number[] = [];
  const u = new Uart(state, (b) => out.push(b));
  u.reset();
  return { u, out, state };
}

const text = (s: string) => new TextEncoder().encode(s);
/** Reads RBR while LSR says data is ready, as a polling guest does. */
function drain(u: Uart): string {
  let s = '';
  for (let i = 0; i < 1000 && u.read(LSR) & LSR_DR; i++) s += String.fromCharCode(u.read(RBR));
  return s;
}

describe('machine devices: UART (16550)', () => {
  it('bytes written to THR go to the output callback, in order', () => {
    const { u, out } = uart();
    for (const b of text('hi\n')) u.write(THR, b);
    u.write(THR, 0x1ff); // a register is 8 bits wide
    deepEqual(out, [0x68, 0x69, 0x0a, 0xff]);
  });

  it('LSR: THR empty and transmitter empty always, data ready only while the FIFO holds bytes', () => {
    const { u } = uart();
    equal(u.read(LSR), LSR_THRE | LSR_TEMT, 'idle');
    u.write(THR, 0x41);
    equal(u.read(LSR), LSR_THRE | LSR_TEMT, 'transmit is instant');
    u.receive(text('x'));
    equal(u.read(LSR), LSR_THRE | LSR_TEMT | LSR_DR);
    equal(u.read(RBR), 0x78);
    equal(u.read(LSR), LSR_THRE | LSR_TEMT, 'DR clears with the last byte');
    equal(u.read(RBR), 0, 'reading an empty FIFO gives 0');
    u.write(LSR, 0); // read-only
    u.write(MSR, 0xff);
    equal(u.read(LSR), LSR_THRE | LSR_TEMT);
    equal(u.read(MSR), 0);
  });

  it('receive FIFO: oldest first; a paste longer than 16 bytes waits in the backlog, nothing lost', () => {
    const { u, state } = uart();
    u.receive(text('abc'));
    equal(drain(u), 'abc');
    const paste = 'the quick brown fox jumps over';
    u.receive(text(paste.slice(0, 10)));
    u.receive(text(paste.slice(10)));
    equal(state.get(DeviceName.UART, 'rx_count'), 16, 'the FIFO holds 16');
    ok(u.hasPendingInput);
    equal(String.fromCharCode(u.read(RBR)), 't');
    equal(state.get(DeviceName.UART, 'rx_count'), 16, 'refilled from the backlog');
    equal(drain(u), paste.slice(1));
    equal(u.hasPendingInput, false);
  });

  it('the divisor latch (DLAB) takes offsets 0 and 1 without transmitting or touching IER', () => {
    const { u, out, state } = uart();
    equal(state.get(DeviceName.UART, 'divider'), 1, 'reset divisor');
    u.write(IER, 0x03);
    u.write(LCR, LCR_DLAB | 0x03);
    u.write(DLL, 0x0c);
    u.write(DLM, 0x01);
    equal(u.read(DLL), 0x0c);
    equal(u.read(DLM), 0x01);
    equal(state.get(DeviceName.UART, 'divider'), 0x10c);
    deepEqual(out, [], 'nothing transmitted while DLAB is set');
    u.write(LCR, 0x03);
    equal(u.read(LCR), 0x03);
    equal(u.read(IER), 0x03, 'IER kept');
    u.write(IER, 0xff);
    equal(u.read(IER), 0x0f, 'IER has four bits');
    u.write(THR, 0x42);
    deepEqual(out, [0x42]);
  });

  it('IIR reports what would interrupt: received data before THR empty, FIFO bits when enabled', () => {
    const { u } = uart();
    equal(u.read(IIR), 0x01, 'nothing pending');
    u.write(IER, 0x02); // THR empty
    equal(u.read(IIR), 0x02);
    u.write(IER, 0x03); // + received data
    equal(u.read(IIR), 0x02, 'no data yet');
    u.receive(text('k'));
    equal(u.read(IIR), 0x04, 'received data has priority');
    u.write(FCR, 0x01); // FIFOs on
    equal(u.read(IIR), 0xc4);
    u.read(RBR);
    equal(u.read(IIR), 0xc2);
    u.write(IER, 0);
    equal(u.read(IIR), 0xc1);
  });

  it('FCR bit 1 empties the receive FIFO; the backlog then moves in', () => {
    const { u } = uart();
    u.receive(text('stale'));
    u.write(FCR, 0x03);
    equal(u.read(LSR) & LSR_DR, 0, 'no data after the reset');
    equal(u.hasPendingInput, false);
    u.receive(text('0123456789abcdefXYZ')); // 19 bytes: 3 wait in the backlog
    u.write(FCR, 0x03);
    // The bytes still on the way were never in the FIFO: they arrive after the reset, as from
    // a wire. (They used to stay stuck with DR clear while the vCPU saw input pending.)
    equal(drain(u), 'XYZ');
    equal(u.hasPendingInput, false);
  });

  it('scratch register and MCR keep what the guest writes; reset clears everything', () => {
    const { u, out } = uart();
    u.write(SCR, 0xa5);
    equal(u.read(SCR), 0xa5);
    u.write(MCR, 0xff);
    equal(u.read(MCR), 0x1f);
    u.write(LCR, 0x83);
    u.write(DLL, 9);
    u.receive(text('pending'));
    u.reset();
    equal(u.read(SCR), 0);
    equal(u.read(MCR), 0);
    equal(u.read(LCR), 0);
    equal(u.read(LSR), LSR_THRE | LSR_TEMT);
    equal(u.hasPendingInput, false);
    deepEqual(out, []);
    equal(u.read(9), 0, 'offsets past SCR read 0');
  });
});

describe('machine devices: CLINT', () => {
  function clint(): { c: Clint; state: DeviceState } {
    const state = new DeviceState();
    const c = new Clint(state);
    c.reset();
    return { c, state };
  }
  const mtimeMmio = (c: Clint) => c.read(CLINT_MTIME, 4)! + c.read(CLINT_MTIME + 4, 4)! * 2 ** 32;

  it('mtime starts near 0 at reset and advances', async () => {
    const { c } = clint();
    const t0 = c.mtime();
    ok(t0 >= 0 && t0 < TIMEBASE_HZ * 60, `mtime ${t0} just after reset`);
    await eventually(() => c.mtime() > t0, 5000, 'mtime to advance');
    ok(mtimeMmio(c) >= t0, 'the MMIO words read the same clock');
  });

  it('writing mtime moves the epoch so mtime continues from the written value', () => {
    const { c, state } = clint();
    const epoch = state.get(DeviceName.CLINT, 'epoch_us');
    ok(Math.abs(epoch - wallClockMicros()) < 60e6, 'the epoch is wall-clock microseconds');
    ok(c.write(CLINT_MTIME, 4, 0));
    ok(c.write(CLINT_MTIME + 4, 4, 5));
    equal(c.read(CLINT_MTIME + 4, 4), 5, 'high word as written');
    const t = c.mtime();
    ok(t >= 5 * 2 ** 32 && t < 6 * 2 ** 32, `mtime ${t} continues from 5 << 32`);
    ok(state.get(DeviceName.CLINT, 'epoch_us') < epoch, 'a later mtime means an earlier epoch');
    // Back to a small value: mtime never goes negative.
    ok(c.write(CLINT_MTIME + 4, 4, 0));
    ok(c.write(CLINT_MTIME, 4, 1000));
    ok(c.mtime() >= 1000 && c.mtime() < 2 ** 32);
  });

  it('mtimecmp: low and high words, timerPending, msUntilTimer', () => {
    const { c } = clint();
    equal(c.mtimecmp(), 2 ** 64 - 1, 'not armed after reset');
    equal(c.timerPending, false);
    equal(c.msUntilTimer(), Infinity);
    ok(c.write(CLINT_MTIMECMP, 4, 0x10));
    equal(c.read(CLINT_MTIMECMP, 4), 0x10);
    equal(c.read(CLINT_MTIMECMP + 4, 4), 0xffff_ffff, 'high word untouched by a low write');
    equal(c.timerPending, false);
    ok(c.write(CLINT_MTIMECMP + 4, 4, 0));
    equal(c.mtimecmp(), 0x10);
    ok(c.write(CLINT_MTIMECMP, 4, 0));
    equal(c.timerPending, true, 'mtimecmp 0 is due at once');
    equal(c.msUntilTimer(), 0);
    // An hour from now: armed, not due.
    const later = c.mtime() + 3600 * TIMEBASE_HZ;
    ok(c.write(CLINT_MTIMECMP + 4, 4, Math.floor(later / 2 ** 32)));
    ok(c.write(CLINT_MTIMECMP, 4, later % 2 ** 32));
    equal(c.timerPending, false);
    const ms = c.msUntilTimer();
    ok(ms > 3500e3 && ms <= 3600e3, `${ms} ms until the timer`);
  });

  it('msip: bit 0 only, drives softwarePending', () => {
    const { c } = clint();
    equal(c.softwarePending, false);
    ok(c.write(CLINT_MSIP, 4, 0xffff_ffff));
    equal(c.read(CLINT_MSIP, 4), 1);
    equal(c.softwarePending, true);
    ok(c.write(CLINT_MSIP, 4, 2));
    equal(c.softwarePending, false);
    c.write(CLINT_MSIP, 4, 1);
    c.reset();
    equal(c.softwarePending, false, 'reset clears msip');
  });

  it('only 32-bit accesses to its registers are answered', () => {
    const { c } = clint();
    equal(c.read(CLINT_MTIME, 8 as 4), undefined);
    equal(c.read(CLINT_MTIME, 2), undefined);
    equal(c.read(CLINT_MSIP, 1), undefined);
    equal(c.write(CLINT_MTIMECMP, 2, 0), false);
    equal(c.write(CLINT_MSIP, 1, 1), false);
    equal(c.softwarePending, false);
    equal(c.read(0x8, 4), undefined, 'a hole in the register map');
    equal(c.write(0x8, 4, 0), false);
  });
});

describe('machine devices: display', () => {
  function display(): { d: Display; state: DeviceState } {
    const state = new DeviceState();
    const d = new Display(state);
    d.reset();
    return { d, state };
  }

  it('registers read back; width and height are clamped to the largest mode', () => {
    const { d, state } = display();
    deepEqual(readDisplayMode(state), { fbAddr: 0, width: 0, height: 0, stride: 0, enabled: false, frame: 0 });
    ok(d.write(DISPLAY_FB_ADDR, 4, RAM_BASE + 0x10000));
    ok(d.write(DISPLAY_WIDTH, 4, 320));
    ok(d.write(DISPLAY_HEIGHT, 4, 240));
    ok(d.write(DISPLAY_ENABLE, 4, 1));
    ok(d.write(DISPLAY_FRAME, 4, 7));
    deepEqual(readDisplayMode(state), { fbAddr: RAM_BASE + 0x10000, width: 320, height: 240, stride: 1280, enabled: true, frame: 7 });
    equal(d.read(DISPLAY_WIDTH, 4), 320);
    ok(d.write(DISPLAY_STRIDE, 4, 2048));
    equal(readDisplayMode(state).stride, 2048, 'an explicit stride wins');
    ok(d.write(DISPLAY_WIDTH, 4, 5000));
    ok(d.write(DISPLAY_HEIGHT, 4, 0xffff_ffff));
    equal(d.read(DISPLAY_WIDTH, 4), DISPLAY_MAX_WIDTH);
    equal(d.read(DISPLAY_HEIGHT, 4), DISPLAY_MAX_HEIGHT);
    d.reset();
    equal(readDisplayMode(state).enabled, false);
  });

  it('refuses unknown registers and accesses that are not 32-bit', () => {
    const { d } = display();
    equal(d.write(0x18, 4, 1), false);
    equal(d.read(0x18, 4), undefined);
    equal(d.write(DISPLAY_WIDTH, 2, 100), false);
    equal(d.read(DISPLAY_WIDTH, 1), undefined);
    equal(d.read(DISPLAY_WIDTH, 4), 0, 'the refused write changed nothing');
  });
});

describe('machine devices: SiFive test finisher', () => {
  it('0x5555 passes, 0x3333 | code << 16 fails with code, 0x7777 resets, anything else is ignored', () => {
    const f = new TestFinisher();
    ok(f.write(0, 4, 0x5555));
    deepEqual(f.take(), { kind: 'exit', code: 0 });
    equal(f.take(), null, 'a request is taken once');
    ok(f.write(0, 4, (3 << 16) | 0x3333));
    deepEqual(f.take(), { kind: 'exit', code: 3 });
    ok(f.write(0, 4, 0xffff_3333));
    deepEqual(f.take(), { kind: 'exit', code: 0xffff });
    ok(f.write(0, 4, 0x7777));
    deepEqual(f.take(), { kind: 'reset' });
    for (const v of [0, 1, 0x1234, 0x5554, 0x3334]) {
      ok(f.write(0, 4, v), 'ignored values are still accepted, as on QEMU');
      equal(f.take(), null, `0x${v.toString(16)}`);
    }
    equal(f.write(4, 4, 0x5555), false, 'only offset 0');
    equal(f.write(0, 2, 0x5555), false, 'only 32-bit writes');
    equal(f.take(), null);
  });
});

describe('machine devices: MMIO routing', () => {
  function bus() {
    const state = new DeviceState();
    const out: number[] = [];
    const devices = {
      uart: new Uart(state, (b) => out.push(b)),
      clint: new Clint(state),
      display: new Display(state),
      finisher: new TestFinisher(),
      hostdev: new HostDevice(new ControlBlock()),
    };
    devices.uart.reset();
    devices.clint.reset();
    devices.display.reset();
    return { mmio: createMmioBus(devices), devices, out, state };
  }

  it('routes each device range to its device', () => {
    const { mmio, devices, out, state } = bus();
    ok(mmio.store(UART_BASE + THR, 1, 0x41));
    deepEqual(out, [0x41]);
    equal(mmio.load(UART_BASE + LSR, 1), LSR_THRE | LSR_TEMT);
    ok(mmio.store(CLINT_BASE + CLINT_MSIP, 4, 1));
    equal(devices.clint.softwarePending, true);
    ok(mmio.store(CLINT_BASE + CLINT_MTIMECMP + 4, 4, 0));
    equal(mmio.load(CLINT_BASE + CLINT_MTIMECMP + 4, 4), 0);
    ok(mmio.store(DISPLAY_BASE + DISPLAY_WIDTH, 4, 320));
    equal(state.get(DeviceName.DISPLAY, 'width'), 320);
    equal(mmio.load(DISPLAY_BASE + DISPLAY_WIDTH, 4), 320);
    ok(mmio.store(EXIT_BASE, 4, 0x5555));
    deepEqual(devices.finisher.take(), { kind: 'exit', code: 0 });
    equal(mmio.load(EXIT_BASE, 4), 0, 'the finisher reads as zero');
    equal(mmio.load(HOSTDEV_BASE, 4), 0, 'host device off');
  });

  it('answers nothing outside the devices: loads are undefined, stores false', () => {
    const { mmio } = bus();
    const holes = [
      0,
      0x1000,
      EXIT_BASE + EXIT_SIZE,
      CLINT_BASE - 4,
      CLINT_BASE + CLINT_SIZE,
      UART_BASE + UART_SIZE,
      DISPLAY_BASE + DISPLAY_SIZE,
      HOSTDEV_BASE + HOSTDEV_SIZE,
      RAM_BASE - 4,
      0x2000_0000,
    ];
    for (const a of holes) {
      equal(mmio.load(a, 4), undefined, `load 0x${a.toString(16)}`);
      equal(mmio.store(a, 4, 0), false, `store 0x${a.toString(16)}`);
    }
  });

  it('refuses access sizes a device does not have', () => {
    const { mmio, out, devices } = bus();
    equal(mmio.store(UART_BASE + THR, 4, 0x41), false, 'UART registers are bytes');
    equal(mmio.store(UART_BASE + SCR, 2, 1), false);
    equal(mmio.load(UART_BASE + LSR, 4), undefined);
    equal(mmio.load(UART_BASE + LSR, 2), undefined);
    deepEqual(out, [], 'a refused store transmits nothing');
    equal(mmio.load(CLINT_BASE + CLINT_MTIME, 1), undefined, 'CLINT registers are words');
    equal(mmio.store(CLINT_BASE + CLINT_MSIP, 1, 1), false);
    equal(devices.clint.softwarePending, false);
    equal(mmio.load(DISPLAY_BASE + DISPLAY_ENABLE, 2), undefined);
    equal(mmio.store(DISPLAY_BASE + DISPLAY_ENABLE, 1, 1), false);
    equal(mmio.store(EXIT_BASE, 1, 0x55), false);
    equal(mmio.store(EXIT_BASE, 2, 0x5555), false);
    equal(devices.finisher.take(), null);
    equal(mmio.load(HOSTDEV_BASE, 1), undefined);
    equal(mmio.store(HOSTDEV_BASE, 2, 1), false);
  });
});
