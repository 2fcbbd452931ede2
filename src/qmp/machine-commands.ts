// The machine's QMP commands (query-status, stop, cont, system_reset, query-name and the
// x-tabmig- ones), their HMP forms, and the run-state events QEMU sends (STOP, RESUME, RESET,
// SHUTDOWN, GUEST_PANICKED), derived from what the Machine reports.

import type { DeviceState } from '../guest/device-state.js';
import { ElfError, base64ToBytes, checkFitsInRam, parseElf } from '../guest/elf.js';
import type { GuestInfo } from '../guest/machine.js';
import { BOOTINFO_CMDLINE_MAX, PAGE_SIZE } from '../guest/memory-map.js';
import type { RunState } from '../guest/runstate.js';
import type { QmpDispatcher } from './dispatcher.js';
import type { QmpEvents } from './events.js';
import { registerMemoryDump } from './hmp-memory.js';
import type { Hmp } from './hmp.js';
import { QmpError } from '../qapi/qmp-error.js';

/** What these commands need of the machine: src/guest/machine.ts's Machine, or a test double. */
export interface QmpMachine extends EventTarget {
  readonly runstate: RunState;
  readonly ramSize: number;
  stop(to?: RunState): Promise<void>;
  cont(): Promise<void>;
  reset(guest?: boolean): Promise<void>;
  load(program: { name: string; elf: Uint8Array } | { builtin: string }, args?: string): Promise<void>;
  guestInfo(): GuestInfo;
  ramHash(): Promise<string>;
  readPhysical(addr: number, length: number): Uint8Array | null;
  /** Postcopy: resolves once the range is in RAM (asks for missing pages); fakes may omit it. */
  whenResident?(addr: number, length: number): Promise<void>;
  sendInput(text: string): void;
  /** The shared device state, for `info registers` and x-tabmig-device-state (fakes may omit it). */
  readonly deviceState?: DeviceState;
  /** Why `cont` may not run the guest here (a guest committed to another tab), or absent. */
  readonly contRefusal?: (() => string | null) | null;
}

export interface MachineCommandsOptions {
  /** -name: what query-name and `info name` report (nothing when absent, as QEMU). */
  name?: string;
  /** QEMU's autostart: true unless the page was started with -S. */
  autostart?: boolean;
  /** The built-in programs x-tabmig-load accepts by name. */
  programs: readonly { name: string }[];
}

/** Run control shared with the rest of the page. */
export interface MachineControl {
  /**
   * Whether the guest runs once an incoming migration completes (QEMU's autostart): `cont` in
   * 'inmigrate' sets it and `stop` clears it. The incoming side reads it when it finishes.
   */
  autostart: boolean;
  /**
   * Called when `cont` or `stop` in 'inmigrate' changed autostart: the incoming migration's
   * worker decides the runstate the moment the source commits, so it must hear of it at once.
   */
  onAutostartChange: (() => void) | null;
  /** The QMP `stop` / `cont` / `system_reset` actions, for callers that are not QMP. */
  stop(): Promise<void>;
  cont(): Promise<void>;
  systemReset(): Promise<void>;
  /** Stops turning machine events into QMP events. */
  dispose(): void;
}

export function registerMachineCommands(
  dispatcher: QmpDispatcher,
  hmp: Hmp,
  machine: QmpMachine,
  events: QmpEvents,
  opts: MachineCommandsOptions,
): MachineControl {
  let loading = false;

  const control: MachineControl = {
    autostart: opts.autostart ?? true,
    onAutostartChange: null,

    async stop() {
      const state = machine.runstate;
      if (state === 'inmigrate') {
        control.autostart = false;
        control.onAutostartChange?.();
      }
      else if (state === 'running') await machine.stop('paused');
      // Anything else is already stopped: QEMU's vm_stop does nothing and sends no STOP.
    },

    async cont() {
      const state = machine.runstate;
      // QEMU lets a guest-panicked machine continue, but here a panic leaves the vCPU stopped
      // until the program is reloaded, so it needs a reset as shutdown and internal-error do.
      if (state === 'shutdown' || state === 'internal-error' || state === 'guest-panicked') {
        throw QmpError.generic('Resetting the Virtual Machine is required');
      }
      if (state === 'suspended') return;
      if (state === 'finish-migrate') throw QmpError.generic('Migration is not finalized yet');
      if (state === 'inmigrate') {
        control.autostart = true;
        control.onAutostartChange?.();
        return;
      }
      if (state === 'running') return;
      const refusal = machine.contRefusal?.();
      if (refusal) throw QmpError.generic(refusal);
      await machine.cont();
    },

    async systemReset() {
      await machine.reset(false);
    },

    dispose() {
      machine.removeEventListener('runstate', onRunstate);
      machine.removeEventListener('reset', onReset);
    },
  };

  // --- events

  const onRunstate = (e: Event) => {
    const { from, to } = (e as CustomEvent<{ from: RunState; to: RunState }>).detail;
    if (from === to) return;
    if (to === 'running') {
      events.emit('RESUME');
    } else if (from === 'running') {
      // QEMU announces why the guest stopped before the STOP itself.
      if (to === 'shutdown') events.emit('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
      else if (to === 'guest-panicked') events.emit('GUEST_PANICKED', { action: 'pause' });
      events.emit('STOP');
    }
  };
  const onReset = (e: Event) => {
    if (loading) return; // a new program is a fresh boot, not a reset
    const guest = Boolean((e as CustomEvent<{ guest: boolean }>).detail?.guest);
    events.emit('RESET', { guest, reason: guest ? 'guest-reset' : 'host-qmp-system-reset' });
  };
  machine.addEventListener('runstate', onRunstate);
  machine.addEventListener('reset', onReset);

  // --- QMP

  const status = () => {
    const state = machine.runstate;
    // QEMU 8.x/9.0 still sends the deprecated 'singlestep' member (always false here).
    return { running: state === 'running', singlestep: false, status: state };
  };

  dispatcher.register({ name: 'query-status', handler: status });
  dispatcher.register({ name: 'stop', handler: () => control.stop() });
  dispatcher.register({ name: 'cont', handler: () => control.cont() });
  dispatcher.register({ name: 'system_reset', handler: () => control.systemReset() });
  dispatcher.register({ name: 'query-name', handler: () => (opts.name !== undefined ? { name: opts.name } : {}) });

  dispatcher.register<{ program?: string; elf?: string; args?: string; name?: string }>({
    name: 'x-tabmig-load',
    args: { '*program': 'str', '*elf': 'str', '*args': 'str', '*name': 'str' },
    handler: async (a) => {
      // Everything is checked before the machine is touched, so a bad request leaves the
      // running guest as it was.
      if (a.program !== undefined && a.elf !== undefined) {
        throw QmpError.generic("Only one of 'program' and 'elf' can be given");
      }
      if (a.program === undefined && a.elf === undefined) throw QmpError.generic("Either 'program' or 'elf' must be given");
      // RAM belongs to the incoming migration until it completes.
      if (machine.runstate === 'inmigrate') throw QmpError.generic('Guest is waiting for an incoming migration');
      if (a.args !== undefined && new TextEncoder().encode(a.args).length >= BOOTINFO_CMDLINE_MAX) {
        throw QmpError.generic(`Parameter 'args' is longer than ${BOOTINFO_CMDLINE_MAX - 1} bytes`);
      }
      let request: { builtin: string } | { name: string; elf: Uint8Array };
      if (a.program !== undefined) {
        if (a.name !== undefined) throw QmpError.generic("Parameter 'name' goes with 'elf' (a built-in program has its own name)");
        if (!opts.programs.some((p) => p.name === a.program)) {
          const names = opts.programs.map((p) => p.name).join(', ');
          throw QmpError.generic(`Unknown program '${a.program}' (built-in programs: ${names})`);
        }
        request = { builtin: a.program };
      } else {
        let bytes: Uint8Array;
        try {
          bytes = base64ToBytes(a.elf!);
          checkFitsInRam(parseElf(bytes), machine.ramSize, PAGE_SIZE);
        } catch (e) {
          if (e instanceof ElfError) throw QmpError.generic(e.message);
          throw e;
        }
        request = { name: a.name ?? 'elf', elf: bytes };
      }
      loading = true;
      try {
        await machine.load(request, a.args);
      } finally {
        loading = false;
      }
    },
  });

  dispatcher.register({ name: 'x-tabmig-guest-info', handler: () => machine.guestInfo() });
  dispatcher.register({ name: 'x-tabmig-ram-hash', handler: async () => ({ hash: await machine.ramHash() }) });
  dispatcher.register<{ text: string }>({
    name: 'x-tabmig-input',
    args: { text: 'str' },
    handler: (a) => machine.sendInput(a.text),
  });

  // --- HMP

  hmp.registerInfo({
    name: 'status',
    argsType: '',
    params: '',
    help: 'show the current VM status (running|paused)',
    handler: (out) => {
      const s = status();
      out.print(`VM status: ${s.running ? 'running' : 'paused'}`);
      if (!s.running && s.status !== 'paused') out.print(` (${s.status})`);
      out.print('\n');
    },
  });
  hmp.registerInfo({
    name: 'name',
    argsType: '',
    params: '',
    help: 'show the current VM name',
    handler: (out) => {
      if (opts.name !== undefined) out.print(`${opts.name}\n`);
    },
  });
  hmp.register({ name: 'stop|s', argsType: '', params: '', help: 'stop emulation', handler: () => control.stop() });
  hmp.register({ name: 'cont|c', argsType: '', params: '', help: 'resume emulation', handler: () => control.cont() });
  hmp.register({
    name: 'system_reset',
    argsType: '',
    params: '',
    help: 'reset the system',
    handler: () => control.systemReset(),
  });
  registerMemoryDump(hmp, (addr, length) => machine.readPhysical(addr, length), machine.whenResident ? (a, l) => machine.whenResident!(a, l) : undefined);

  return control;
}
