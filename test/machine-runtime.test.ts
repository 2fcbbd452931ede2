// Real machines (vCPU worker, 16 MiB) doing what a user watches them do: guests that exit through
// the test finisher or `tohost`, a guest that faults, throttling, stop/cont, the built-in programs
// and keyboard input. Outcomes only: runstates, QMP events, serial text, RAM contents, counters.

import { VcpuState } from '../src/guest/control-block.js';
import { AB_DEFAULT_SIZE, EXIT_BASE, RAM_BASE, UART_BASE, abRange } from '../src/guest/memory-map.js';
import { I, R, li } from './fixtures/cpu-asm.js';
import { bytesToBase64, writeElf } from './fixtures/machine-elf.js';
import { machineRig, pause, type MachineRig } from './fixtures/machine-rig.js';
import { deepEqual, equal, eventually, match, notEqual, ok } from './helpers/assert.js';

const J_SELF = I.jal(0, 0);
const { t0, t1 } = R;

/** Code that prints `text` on the UART. */
const print = (text: string) =>
  [...li(t0, UART_BASE), ...[...new TextEncoder().encode(text)].flatMap((b) => [...li(t1, b), I.sb(t1, t0, 0)])];
/** Code that writes `value` to the SiFive test finisher, then spins. */
const finisher = (value: number) => [...li(t0, EXIT_BASE), ...li(t1, value), I.sw(t1, t0, 0), J_SELF];

/** A one-segment executable at RAM base, as base64 for x-tabmig-load. */
const elf = (words: number[], symbols?: Record<string, number>) =>
  bytesToBase64(writeElf({ segments: [{ paddr: RAM_BASE, data: Uint32Array.from(words), memSize: 0x2000 }], symbols }));

const SHUTDOWN = ['SHUTDOWN', { guest: true, reason: 'guest-shutdown' }];
const generic = (desc: string) => ({ error: { class: 'GenericError', desc } });

async function withRig(fn: (rig: MachineRig) => Promise<void>, runstate: 'prelaunch' | 'running' = 'prelaunch'): Promise<void> {
  const rig = await machineRig(runstate);
  try {
    await fn(rig);
  } finally {
    rig.close();
  }
}

describe('machine runtime: guest exits', () => {
  it('a finisher exit shuts the machine down; cont needs a reset; system_reset runs it again', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: elf([...print('bye\n'), ...finisher((5 << 16) | 0x3333)]), name: 'fail5' });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      const info = await rig.info();
      deepEqual(info.exit, { code: 5, passed: false, via: 'finisher' });
      equal(info.runstate, 'shutdown');
      equal(info.serial, 'bye\n', 'raw bytes: the test program sends no CR');
      deepEqual(rig.shape(), [['RESUME'], SHUTDOWN, ['STOP']]);
      deepEqual(await rig.qmp('query-status'), { return: { running: false, singlestep: false, status: 'shutdown' } });
      deepEqual(await rig.qmp('cont'), generic('Resetting the Virtual Machine is required'));
      equal(rig.machine.runstate, 'shutdown');

      await rig.ok('system_reset');
      equal(rig.machine.runstate, 'prelaunch');
      equal((await rig.info()).exit, undefined, 'the exit is forgotten by the reset');
      await rig.ok('cont');
      await rig.runstate('shutdown');
      deepEqual((await rig.info()).exit, { code: 5, passed: false, via: 'finisher' });
      equal(rig.machine.serialOutput, 'bye\nbye\n', 'it ran again from the start');
      deepEqual(rig.shape(), [
        ['RESUME'],
        SHUTDOWN,
        ['STOP'],
        ['RESET', { guest: false, reason: 'host-qmp-system-reset' }],
        ['RESUME'],
        SHUTDOWN,
        ['STOP'],
      ]);
    }));

  it('a finisher pass (0x5555) exits with code 0, passed', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: elf(finisher(0x5555)) });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      deepEqual((await rig.info()).exit, { code: 0, passed: true, via: 'finisher' });
    }));

  /** Stores `value` to the `tohost` symbol, riscv-tests style. */
  const tohostProgram = (value: number) => {
    const tohost = RAM_BASE + 0x1000; // in the segment's bss
    return elf([...li(t0, tohost), ...li(t1, value), I.sw(t1, t0, 0), J_SELF], { tohost, fromhost: tohost + 0x40 });
  };

  it('a store of 1 to tohost passes (exit code 0)', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: tohostProgram(1), name: 'rv32ui-p-pass' });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      deepEqual((await rig.info()).exit, { code: 0, passed: true, via: 'tohost' });
      deepEqual(rig.shape(), [['RESUME'], SHUTDOWN, ['STOP']]);
    }));

  it('a store of (3 << 1) | 1 to tohost fails test 3', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: tohostProgram((3 << 1) | 1), name: 'rv32ui-p-fail' });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      deepEqual((await rig.info()).exit, { code: 3, passed: false, via: 'tohost' });
    }));

  it('without a tohost symbol the same stores are plain RAM writes', () =>
    withRig(async (rig) => {
      const at = RAM_BASE + 0x1000;
      await rig.ok('x-tabmig-load', { elf: elf([...li(t0, at), ...li(t1, 1), I.sw(t1, t0, 0), ...finisher(0x5555)]) });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      deepEqual((await rig.info()).exit, { code: 0, passed: true, via: 'finisher' });
      deepEqual(Array.from(rig.machine.readPhysical(at, 4)!), [1, 0, 0, 0]);
    }));
});

describe('machine runtime: guest faults', () => {
  it('an illegal instruction with no trap handler panics the guest; the worker still serves a load', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: elf([I.nop(), 0xffff_ffff]), name: 'bad' });
      await rig.ok('cont');
      await rig.runstate('guest-panicked');
      const info = await rig.info();
      ok(info.panic, 'guest-info has a panic message');
      match(info.panic, /illegal instruction/i, 'says what happened');
      match(info.panic, /pc 0x80000004/, 'names the faulting pc');
      match(info.panic, /mcause 2\b/, 'names the cause');
      equal(info.exit, undefined);
      deepEqual(rig.shape(), [['RESUME'], ['GUEST_PANICKED', { action: 'pause' }], ['STOP']]);

      // A new program boots on the same worker and runs.
      await rig.ok('x-tabmig-load', { program: 'ab' });
      equal(rig.machine.runstate, 'prelaunch');
      equal((await rig.info()).panic, undefined);
      await rig.ok('cont');
      await rig.serial(/^AB+/);
      equal(rig.machine.runstate, 'running');
    }));

  it('a load from an unmapped address faults the same way, naming the address', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { elf: elf([...li(t0, 0x2000_0000), I.lw(t1, t0, 0), J_SELF]) });
      await rig.ok('cont');
      await rig.runstate('guest-panicked');
      const panic = (await rig.info()).panic!;
      match(panic, /0x20000000/, 'the bad address');
      match(panic, /mcause 5\b/, 'load access fault');
    }));
});

describe('machine runtime: run control', () => {
  it('stop really stops: no instructions and no RAM changes until cont', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'ab' });
      await rig.serial(/AB/);
      await rig.ok('stop');
      equal(rig.machine.vcpuRunning, false);
      const n = rig.machine.instructionsRetired;
      const h = await rig.machine.ramHash();
      await pause(200);
      equal(rig.machine.instructionsRetired, n, 'instructions retired while stopped');
      equal(await rig.machine.ramHash(), h, 'RAM hash while stopped');
      await rig.ok('cont');
      await eventually(() => rig.machine.instructionsRetired > n, 20000, 'instructions after cont');
      await eventually(async () => (await rig.machine.ramHash()) !== h, 20000, 'RAM to change after cont');
    }, 'running'));

  it('the vCPU stamps the moment it really runs again (where an incoming migration ends the downtime)', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'ab' });
      await rig.serial(/AB/);
      await rig.ok('stop');
      const ctl = rig.machine.control;
      ctl.clearStartedAt();
      equal(await ctl.startedAt(100), null, 'no stamp while the vCPU stays stopped');
      const asked = performance.timeOrigin + performance.now();
      await rig.ok('cont');
      const at = await ctl.startedAt(5000);
      ok(at !== null, 'a stamp once it runs');
      ok(at! >= asked - 1 && at! <= performance.timeOrigin + performance.now() + 1, `stamped after cont was asked: ${at! - asked} ms`);
    }, 'running'));

  it('throttle: at 80% a CPU-bound guest retires far fewer instructions per interval, and stop still works', () =>
    withRig(async (rig) => {
      const { machine } = rig;
      await rig.ok('x-tabmig-load', { program: 'ab' });
      await rig.serial(/AB/);
      const retiredOver = async (ms: number) => {
        const a = machine.instructionsRetired;
        await pause(ms);
        return machine.instructionsRetired - a;
      };
      const free1 = await retiredOver(500);
      machine.control.throttlePercent = 80;
      await eventually(() => machine.control.vcpuState === VcpuState.THROTTLED, 20000, 'the vCPU to sleep for the throttle');
      const throttled = await retiredOver(500);
      machine.control.throttlePercent = 0;
      await pause(50);
      const free2 = await retiredOver(500);
      const free = Math.max(free1, free2); // the better of two unthrottled samples: the host is shared
      ok(free > 0 && throttled > 0, `both ran: free ${free1}, ${free2}, throttled ${throttled}`);
      ok(throttled < 0.6 * free, `throttled ${throttled} vs unthrottled ${free} instructions per interval`);
      equal(rig.machine.runstate, 'running', 'throttling is not a runstate change');

      machine.control.throttlePercent = 99;
      await eventually(() => machine.control.vcpuState === VcpuState.THROTTLED, 20000, 'a deep throttle sleep');
      await rig.ok('stop');
      equal(machine.vcpuRunning, false, 'stop wakes a throttled vCPU');
      equal(machine.runstate, 'paused');
    }, 'running'));
});

describe('machine runtime: the built-in programs', () => {
  it('life turns on a 320x240 display in RAM and keeps drawing frames', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'life', args: 'speed=60 seed=1' });
      await rig.ok('cont');
      await rig.serial(/^life: Game of Life, 160x120 cells, 60 generations\/s/);
      await eventually(() => rig.machine.display.enabled, 20000, 'the display to be enabled');
      const mode = rig.machine.display;
      equal(mode.width, 320);
      equal(mode.height, 240);
      ok(mode.stride >= 320 * 4, 'stride holds a line');
      ok(mode.fbAddr >= RAM_BASE && mode.fbAddr + mode.stride * mode.height <= RAM_BASE + (1 << 20), 'framebuffer in the program image');
      const frame = mode.frame;
      await eventually(() => rig.machine.display.frame > frame + 2, 20000, 'new frames');
      // Something is drawn: not every framebuffer pixel is black.
      const fb = rig.machine.readPhysical(mode.fbAddr, mode.stride * mode.height)!;
      ok(fb.some((b) => b !== 0), 'pixels on the framebuffer');
    }));

  it('ab prints A then Bs, and its range holds the a-b invariant whenever it is stopped', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'ab' });
      await rig.ok('cont');
      await rig.serial(/^ABBB/);
      match(rig.machine.serialOutput, /^AB+$/, 'nothing but A and Bs');
      const { start, end } = abRange(rig.machine.ramSize, AB_DEFAULT_SIZE);
      for (let round = 0; round < 3; round++) {
        await rig.ok('stop');
        const firsts: number[] = [];
        for (let p = start; p < end; p += 4096) {
          const page = rig.machine.readPhysical(p, 4096)!;
          firsts.push(page[0]!);
          ok(page.subarray(1).every((b) => b === 0), `the rest of page 0x${p.toString(16)} untouched`);
        }
        const n = firsts[0]!;
        const k = firsts.findIndex((b) => b !== n);
        const bad = k < 0 ? -1 : firsts.slice(k).findIndex((b) => b !== ((n - 1) & 0xff));
        equal(bad, -1, `round ${round}: N=${n} up to page ${k}, then N-1 (${firsts.slice(0, 4)}...)`);
        ok(firsts.some((b) => b !== 0), 'a pass has run');
        await rig.ok('cont');
        const bs = rig.machine.serialOutput.length;
        await eventually(() => rig.machine.serialOutput.length > bs, 20000, 'more Bs');
      }
      equal(rig.machine.readPhysical(end, 1)![0], 0, 'the page after the range is not touched');
    }));

  it('stress with its default args fits itself into 16 MiB, says ready and keeps changing RAM', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'stress' });
      equal((await rig.info()).args, 'wss=16M rate=4M mode=pattern');
      await rig.ok('cont');
      const serial = await rig.serial('stress: ready');
      match(serial, /stress: working set 16777216 bytes does not fit; using \d+/);
      match(serial, /stress: wss=\d+ at 0x8[0-9a-f]{7}\.\.0x8[0-9a-f]{7} rate=4194304\/s mode=pattern/);
      let h = await rig.machine.ramHash();
      for (let i = 0; i < 2; i++) {
        const before = h;
        h = await eventually(async () => {
          const now = await rig.machine.ramHash();
          return now !== before ? now : '';
        }, 20000, 'the RAM hash to change');
      }
      equal(rig.machine.runstate, 'running');
    }));

  it('stress with a bad mode= exits with fail code 2 and says why', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'stress', args: 'mode=bogus' });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      const info = await rig.info();
      deepEqual(info.exit, { code: 2, passed: false, via: 'finisher' });
      ok(info.serial.includes('error: mode=bogus is not pattern or random\r\n'), `serial: ${JSON.stringify(info.serial)}`);
    }));

  it('a malformed size argument is refused the same way', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'stress', args: 'wss=lots' });
      await rig.ok('cont');
      await rig.runstate('shutdown');
      const info = await rig.info();
      deepEqual(info.exit, { code: 2, passed: false, via: 'finisher' });
      match(info.serial, /error: wss=lots is not /);
    }));
});

describe('machine runtime: keyboard input', () => {
  it('life reacts to keys typed through x-tabmig-input: r reseeds, space pauses and resumes', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'life', args: 'speed=60 seed=7' });
      await rig.ok('cont');
      await rig.serial('life: Game of Life');
      await rig.ok('x-tabmig-input', { text: 'r' });
      await rig.serial('life: reseeded\r\n');
      rig.machine.sendInput(' ');
      const paused = await rig.serial(/life: paused at generation (\d+)/);
      const generation = Number(/life: paused at generation (\d+)/.exec(paused)![1]);
      await eventually(() => rig.machine.display.frame >= generation, 20000, 'the last frame to be shown');
      const frame = rig.machine.display.frame;
      await rig.ok('x-tabmig-input', { text: ' ' });
      await rig.serial(`life: running from generation ${generation}\r\n`);
      await eventually(() => rig.machine.display.frame > frame, 20000, 'frames again after resuming');
      notEqual(rig.machine.runstate, 'paused', 'the guest paused itself, not the machine');
    }));

  it('input typed before the guest reads it waits in the UART', () =>
    withRig(async (rig) => {
      await rig.ok('x-tabmig-load', { program: 'life', args: 'seed=3' });
      await rig.ok('x-tabmig-input', { text: 'g' }); // prelaunch: nobody is reading yet
      await rig.ok('cont');
      await rig.serial('life: glider gun\r\n');
    }));
});
