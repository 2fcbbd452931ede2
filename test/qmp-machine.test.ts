import type { GuestInfo } from '../src/guest/machine.js';
import type { RunState } from '../src/guest/runstate.js';
import { QmpDispatcher, type QmpReply } from '../src/qmp/dispatcher.js';
import { registerControlCommands } from '../src/qmp/control-commands.js';
import { QmpEvents, type QmpEvent } from '../src/qmp/events.js';
import { Hmp } from '../src/qmp/hmp.js';
import { registerMachineCommands, type MachineControl, type QmpMachine } from '../src/qmp/machine-commands.js';
import { deepEqual, equal, eventually, ok } from './helpers/assert.js';

/** Machine's observable behaviour, without a vCPU: runstate changes and resets as events. */
class FakeMachine extends EventTarget implements QmpMachine {
  runstate: RunState;
  readonly ramSize = 16 << 20;
  readonly ram = new Uint8Array(0x1000);
  loads: unknown[] = [];
  inputs: string[] = [];
  program = 'life';

  constructor(runstate: RunState) {
    super();
    this.runstate = runstate;
  }

  setRunstate(to: RunState): void {
    const from = this.runstate;
    this.runstate = to;
    if (from !== to) this.dispatchEvent(new CustomEvent('runstate', { detail: { from, to } }));
  }

  async stop(to: RunState = 'paused'): Promise<void> {
    this.setRunstate(to);
  }

  async cont(): Promise<void> {
    this.setRunstate('running');
  }

  async reset(guest = false): Promise<void> {
    if (!['running', 'inmigrate', 'finish-migrate'].includes(this.runstate)) this.setRunstate('prelaunch');
    this.dispatchEvent(new CustomEvent('reset', { detail: { guest } }));
  }

  async load(program: { name: string; elf: Uint8Array } | { builtin: string }, args?: string): Promise<void> {
    this.loads.push({ program, args });
    this.program = 'builtin' in program ? program.builtin : program.name;
    if (!['running', 'inmigrate', 'finish-migrate', 'paused'].includes(this.runstate)) this.setRunstate('prelaunch');
    this.dispatchEvent(new CustomEvent('reset', { detail: { guest: false } }));
  }

  guestInfo(): GuestInfo {
    return { program: this.program, args: '', 'ram-size': this.ramSize, instructions: 0, serial: '', runstate: this.runstate };
  }

  async ramHash(): Promise<string> {
    return 'ab'.repeat(32);
  }

  readPhysical(addr: number, length: number): Uint8Array | null {
    const at = addr - 0x8000_0000;
    return at < 0 || at + length > this.ram.length ? null : this.ram.slice(at, at + length);
  }

  sendInput(text: string): void {
    this.inputs.push(text);
  }
}

interface Rig {
  qmp: (execute: string, args?: Record<string, unknown>) => Promise<QmpReply>;
  hmp: (line: string) => Promise<string>;
  events: QmpEvent[];
  names: () => string[];
  vm: MachineControl;
}

function rig(machine: QmpMachine, opts: { name?: string; autostart?: boolean } = {}): Rig {
  const dispatcher = new QmpDispatcher({ timeoutMs: 20_000 });
  const events = new QmpEvents();
  const hmp = new Hmp();
  registerControlCommands(dispatcher, hmp);
  const vm = registerMachineCommands(dispatcher, hmp, machine, events, {
    ...opts,
    programs: [{ name: 'life' }, { name: 'ab' }, { name: 'stress' }],
  });
  const seen: QmpEvent[] = [];
  events.subscribe((e) => seen.push(e));
  return {
    qmp: (execute, args) => dispatcher.execute(args ? { execute, arguments: args } : { execute }),
    hmp: async (line) => {
      const r = await dispatcher.execute({ execute: 'human-monitor-command', arguments: { 'command-line': line } });
      return (r as { return: string }).return;
    },
    events: seen,
    names: () => seen.map((e) => e.event),
    vm,
  };
}

const generic = (desc: string) => ({ error: { class: 'GenericError', desc } });

/** A minimal RV32 executable: one PT_LOAD segment of `words` at `at` (0x80000000 by default). */
function elf(words: number[], at = 0x8000_0000): Uint8Array {
  const code = new Uint8Array(new Uint32Array(words).buffer);
  const file = new Uint8Array(84 + code.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setUint32(24, at, true); // entry
  v.setUint32(28, 52, true); // phoff
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, 1, true);
  v.setUint16(46, 40, true);
  v.setUint32(52, 1, true); // PT_LOAD
  v.setUint32(56, 84, true);
  v.setUint32(60, at, true);
  v.setUint32(64, at, true);
  v.setUint32(68, code.length, true);
  v.setUint32(72, code.length, true);
  v.setUint32(76, 5, true);
  v.setUint32(80, 4, true);
  file.set(code, 84);
  return file;
}

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

const J_SELF = 0x0000006f; // j .
/** Writes `value` to the SiFive test finisher at 0x100000, then spins. */
const finisher = (value: number) => [
  0x001002b7, // lui t0, 0x100
  0x00000337 | (((value + 0x800) >>> 12) << 12), // lui t1, %hi(value)
  0x00030313 | ((value & 0xfff) << 20), // addi t1, t1, %lo(value)
  0x0062a023, // sw t1, 0(t0)
  J_SELF,
];

describe('QMP machine commands (fake machine)', () => {
  it('query-status and info status report the runstate as QEMU does', async () => {
    const m = new FakeMachine('prelaunch');
    const r = rig(m);
    deepEqual(await r.qmp('query-status'), { return: { running: false, singlestep: false, status: 'prelaunch' } });
    equal(await r.hmp('info status'), 'VM status: paused (prelaunch)\r\n');
    m.setRunstate('running');
    deepEqual(await r.qmp('query-status'), { return: { running: true, singlestep: false, status: 'running' } });
    equal(await r.hmp('info status'), 'VM status: running\r\n');
    m.setRunstate('paused');
    equal(await r.hmp('info status'), 'VM status: paused\r\n');
    m.setRunstate('postmigrate');
    equal(await r.hmp('info status'), 'VM status: paused (postmigrate)\r\n');
  });

  it('stop and cont change the runstate and send STOP and RESUME once', async () => {
    const m = new FakeMachine('prelaunch');
    const r = rig(m);
    deepEqual(await r.qmp('stop'), { return: {} }); // not running: nothing happens
    equal(m.runstate, 'prelaunch');
    deepEqual(await r.qmp('cont'), { return: {} });
    equal(m.runstate, 'running');
    deepEqual(await r.qmp('cont'), { return: {} }); // already running: no second RESUME
    deepEqual(await r.qmp('stop'), { return: {} });
    equal(m.runstate, 'paused');
    deepEqual(await r.qmp('stop'), { return: {} });
    equal(await r.hmp('c'), '');
    equal(await r.hmp('stop'), '');
    deepEqual(r.names(), ['RESUME', 'STOP', 'RESUME', 'STOP']);
    ok(r.events.every((e) => !('data' in e)), 'STOP and RESUME carry no data');
  });

  it('cont refuses a machine that needs a reset, or a migration not finished', async () => {
    for (const state of ['shutdown', 'internal-error', 'guest-panicked'] as RunState[]) {
      const r = rig(new FakeMachine(state));
      deepEqual(await r.qmp('cont'), generic('Resetting the Virtual Machine is required'), state);
      equal(await r.hmp('cont'), 'Error: Resetting the Virtual Machine is required\r\n');
    }
    deepEqual(await rig(new FakeMachine('finish-migrate')).qmp('cont'), generic('Migration is not finalized yet'));
  });

  it('in inmigrate, cont and stop only set autostart', async () => {
    const m = new FakeMachine('inmigrate');
    const r = rig(m, { autostart: false });
    equal(r.vm.autostart, false);
    deepEqual(await r.qmp('cont'), { return: {} });
    equal(r.vm.autostart, true);
    equal(m.runstate, 'inmigrate');
    deepEqual(await r.qmp('stop'), { return: {} });
    equal(r.vm.autostart, false);
    equal(m.runstate, 'inmigrate');
    deepEqual(r.events, []);
    equal(rig(new FakeMachine('inmigrate')).vm.autostart, true, 'autostart defaults to on, as without -S');
  });

  it('system_reset sends RESET with the host cause; a guest reset says so', async () => {
    const m = new FakeMachine('shutdown');
    const r = rig(m);
    deepEqual(await r.qmp('system_reset'), { return: {} });
    equal(m.runstate, 'prelaunch');
    await m.reset(true);
    equal(await r.hmp('system_reset'), '');
    deepEqual(
      r.events.map((e) => [e.event, e.data]),
      [
        ['RESET', { guest: false, reason: 'host-qmp-system-reset' }],
        ['RESET', { guest: true, reason: 'guest-reset' }],
        ['RESET', { guest: false, reason: 'host-qmp-system-reset' }],
      ],
    );
  });

  it('announces a guest shutdown and a guest panic before the STOP', async () => {
    const m = new FakeMachine('running');
    const r = rig(m);
    m.setRunstate('shutdown');
    m.setRunstate('running');
    m.setRunstate('guest-panicked');
    m.setRunstate('running');
    m.setRunstate('internal-error');
    deepEqual(
      r.events.map((e) => (e.data ? [e.event, e.data] : [e.event])),
      [
        ['SHUTDOWN', { guest: true, reason: 'guest-shutdown' }],
        ['STOP'],
        ['RESUME'],
        ['GUEST_PANICKED', { action: 'pause' }],
        ['STOP'],
        ['RESUME'],
        ['STOP'],
      ],
    );
  });

  it('query-name answers {name} only when there is a name', async () => {
    deepEqual(await rig(new FakeMachine('running'), { name: 'lab' }).qmp('query-name'), { return: { name: 'lab' } });
    deepEqual(await rig(new FakeMachine('running')).qmp('query-name'), { return: {} });
    equal(await rig(new FakeMachine('running'), { name: 'lab' }).hmp('info name'), 'lab\r\n');
    equal(await rig(new FakeMachine('running')).hmp('info name'), '');
  });

  it('x-tabmig-load checks everything before touching the machine', async () => {
    const m = new FakeMachine('running');
    const r = rig(m);
    const load = (args: Record<string, unknown>) => r.qmp('x-tabmig-load', args);
    deepEqual(await load({}), generic("Either 'program' or 'elf' must be given"));
    deepEqual(await load({ program: 'life', elf: 'AAAA' }), generic("Only one of 'program' and 'elf' can be given"));
    deepEqual(await load({ program: 'nope' }), generic("Unknown program 'nope' (built-in programs: life, ab, stress)"));
    deepEqual(await load({ program: 'life', name: 'x' }), generic("Parameter 'name' goes with 'elf' (a built-in program has its own name)"));
    deepEqual(await load({ elf: '***' }), generic('the ELF is not valid base64'));
    deepEqual(await load({ elf: base64(new Uint8Array(64)) }), generic('not an ELF file: bad magic'));
    deepEqual(
      await load({ elf: base64(elf([J_SELF], 0x1000)) }),
      generic('ELF segment 0x00001000..0x00001004 does not fit in RAM 0x80000000..0x80fff000'),
    );
    deepEqual(await load({ program: 'life', args: 'x'.repeat(2048) }), generic("Parameter 'args' is longer than 2047 bytes"));
    deepEqual(await load({ program: 5 }), generic("Invalid parameter type for 'program', expected: string"));
    deepEqual(m.loads, [], 'nothing reached the machine');
    equal(m.runstate, 'running');
    deepEqual(r.events, []);

    deepEqual(await load({ program: 'ab', args: 'quiet' }), { return: {} });
    const bytes = elf([J_SELF]);
    deepEqual(await load({ elf: base64(bytes), name: 'spin' }), { return: {} });
    deepEqual(m.loads, [
      { program: { builtin: 'ab' }, args: 'quiet' },
      { program: { name: 'spin', elf: bytes }, args: undefined },
    ]);
    deepEqual(r.events, [], 'a load is a fresh boot, not a RESET');
  });

  it('passes guest info, the RAM hash and console input through', async () => {
    const m = new FakeMachine('running');
    const r = rig(m);
    deepEqual(await r.qmp('x-tabmig-ram-hash'), { return: { hash: 'ab'.repeat(32) } });
    equal(((await r.qmp('x-tabmig-guest-info')) as { return: GuestInfo }).return.program, 'life');
    deepEqual(await r.qmp('x-tabmig-input', { text: 'hello\n' }), { return: {} });
    deepEqual(m.inputs, ['hello\n']);
  });

  it('xp reads the machine RAM', async () => {
    const m = new FakeMachine('running');
    m.ram.set([0x6f, 0, 0, 0, 0x13, 0, 0, 0]);
    equal(await rig(m).hmp('xp /2x 0x80000000'), '0000000080000000: 0x0000006f 0x00000013\r\n');
  });

  it('stops turning machine events into QMP events once disposed', async () => {
    const m = new FakeMachine('running');
    const r = rig(m);
    r.vm.dispose();
    m.setRunstate('paused');
    deepEqual(r.events, []);
  });
});

describe('QMP machine commands (real machine)', () => {
  it('runs, stops and hashes a real guest, with STOP and RESUME', async () => {
    const { Machine } = await import('../src/guest/machine.js');
    const { createQmp } = await import('../src/qmp/index.js');
    const machine = new Machine({ ramSize: 16 << 20, runstate: 'prelaunch' });
    try {
      const { dispatcher, events } = createQmp({ machine, name: 'lab' });
      const seen: QmpEvent[] = [];
      events.subscribe((e) => seen.push(e));
      const qmp = (execute: string, args?: Record<string, unknown>) =>
        dispatcher.execute(args ? { execute, arguments: args } : { execute });

      deepEqual(await qmp('query-status'), { return: { running: false, singlestep: false, status: 'prelaunch' } });
      deepEqual(await qmp('x-tabmig-load', { elf: base64(elf([J_SELF])), name: 'spin' }), { return: {} });
      deepEqual(await qmp('cont'), { return: {} });
      deepEqual(await qmp('query-status'), { return: { running: true, singlestep: false, status: 'running' } });
      await eventually(() => machine.instructionsRetired > 10_000, 20000, 'the guest to run');

      // A bad load leaves the running guest alone.
      deepEqual(await qmp('x-tabmig-load', { program: 'nope' }), generic("Unknown program 'nope' (built-in programs: life, ab, stress)"));
      deepEqual(await qmp('x-tabmig-load', { elf: base64(new Uint8Array(100)) }), generic('not an ELF file: bad magic'));
      equal(machine.runstate, 'running');
      const n = machine.instructionsRetired;
      await eventually(() => machine.instructionsRetired > n, 20000, 'the guest to keep running');

      deepEqual(await qmp('stop'), { return: {} });
      deepEqual(await qmp('query-status'), { return: { running: false, singlestep: false, status: 'paused' } });
      const h1 = (await qmp('x-tabmig-ram-hash')) as { return: { hash: string } };
      const stoppedAt = machine.instructionsRetired;
      await new Promise((r) => setTimeout(r, 100));
      const h2 = (await qmp('x-tabmig-ram-hash')) as { return: { hash: string } };
      ok(/^[0-9a-f]{64}$/.test(h1.return.hash), 'hash is hex SHA-256');
      equal(h2.return.hash, h1.return.hash, 'RAM hash stable while stopped');
      equal(machine.instructionsRetired, stoppedAt, 'no instructions while stopped');

      const xp = (await qmp('human-monitor-command', { 'command-line': 'xp /1x 0x80000000' })) as { return: string };
      equal(xp.return, '0000000080000000: 0x0000006f\r\n');
      equal(((await qmp('x-tabmig-guest-info')) as { return: GuestInfo }).return.program, 'spin');
      deepEqual(
        seen.map((e) => e.event),
        ['RESUME', 'STOP'],
      );
    } finally {
      machine.terminate();
    }
  });

  /** A fresh real machine with QMP, for one scenario. */
  async function realRig(): Promise<{
    machine: { runstate: RunState; terminate(): void };
    qmp: (execute: string, args?: Record<string, unknown>) => Promise<QmpReply>;
    seen: QmpEvent[];
    shape: () => unknown[];
  }> {
    const { Machine } = await import('../src/guest/machine.js');
    const { createQmp } = await import('../src/qmp/index.js');
    const machine = new Machine({ ramSize: 16 << 20, runstate: 'prelaunch' });
    const { dispatcher, events } = createQmp({ machine });
    const seen: QmpEvent[] = [];
    events.subscribe((e) => seen.push(e));
    return {
      machine,
      qmp: (execute, args) => dispatcher.execute(args ? { execute, arguments: args } : { execute }),
      seen,
      shape: () => seen.map((e) => (e.data ? [e.event, e.data] : [e.event])),
    };
  }

  it('reports a guest shutdown as SHUTDOWN then STOP, and needs a reset after it', async () => {
    const { machine, qmp, shape } = await realRig();
    try {
      await qmp('x-tabmig-load', { elf: base64(elf(finisher(0x5555))) });
      await qmp('cont');
      await eventually(() => machine.runstate === 'shutdown', 20000, 'the guest to shut down');
      deepEqual(shape(), [['RESUME'], ['SHUTDOWN', { guest: true, reason: 'guest-shutdown' }], ['STOP']]);
      deepEqual(await qmp('cont'), generic('Resetting the Virtual Machine is required'));
      deepEqual(await qmp('system_reset'), { return: {} });
      equal(machine.runstate, 'prelaunch');
      deepEqual(shape().slice(3), [['RESET', { guest: false, reason: 'host-qmp-system-reset' }]]);
    } finally {
      machine.terminate();
    }
  });

  it('reports a guest panic as GUEST_PANICKED then STOP', async () => {
    const { machine, qmp, shape } = await realRig();
    try {
      await qmp('x-tabmig-load', { elf: base64(elf([0])) }); // an illegal instruction, no trap handler
      await qmp('cont');
      await eventually(() => machine.runstate === 'guest-panicked', 20000, 'the guest to panic');
      deepEqual(shape(), [['RESUME'], ['GUEST_PANICKED', { action: 'pause' }], ['STOP']]);
      deepEqual(await qmp('query-status'), { return: { running: false, singlestep: false, status: 'guest-panicked' } });
      deepEqual(await qmp('cont'), generic('Resetting the Virtual Machine is required'));
    } finally {
      machine.terminate();
    }
  });

  it('reports a guest-requested reset as RESET with the guest cause', async () => {
    const { machine, qmp, seen, shape } = await realRig();
    try {
      await qmp('x-tabmig-load', { elf: base64(elf(finisher(0x7777))) });
      await qmp('cont');
      await eventually(() => seen.length >= 2, 20000, 'the guest to ask for a reset');
      deepEqual(shape().slice(0, 2), [['RESUME'], ['RESET', { guest: true, reason: 'guest-reset' }]]);
    } finally {
      machine.terminate();
    }
  });
});

