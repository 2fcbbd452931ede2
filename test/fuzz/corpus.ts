// Seeds for the stream fuzzer: real saved streams, written by the same savevm loop a snapshot
// uses (snapshot-writer.ts), of several guests (ab's page walk, random "stress" RAM, a display
// with its framebuffer in RAM, an almost empty machine), RAM sizes and capabilities (section
// footers on and off, a live source's OPEN_RETURN_PATH and PING, globalstate running or paused).
// Runs anywhere: in the browser under web-test-runner and in Node for `npm run fuzz`.

import { DeviceState } from '../../src/guest/device-state.js';
import { PAGE_SIZE, RAM_BASE } from '../../src/guest/memory-map.js';
import { writeSnapshot } from '../../src/migration/snapshot-writer.js';
import {
  BufferSink,
  RAM_BLOCK_MAIN,
  StreamWriter,
  writeCommand,
  writeConfiguration,
  writeStreamHeader,
  type MigCommand,
} from '../../src/migration/stream/index.js';

/** migration-service.ts's MACHINE_TYPE (not imported: that module pulls in the workers). */
export const FUZZ_MACHINE_TYPE = 'tabmig-rv32-virt';

export interface Seed {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly ramSize: number;
  /** send-section-footer on the destination (it must match the source's). */
  readonly footers: boolean;
  /** The RAM and device state the stream carries: a load that completes must reproduce them. */
  readonly ram: Uint8Array;
  readonly state: DeviceState;
  readonly runState: string;
}

type Guest = 'ab' | 'stress' | 'display' | 'empty';

function machine(guest: Guest, ramSize: number, salt: number): { ram: Uint8Array; state: DeviceState } {
  const ram = new Uint8Array(ramSize);
  const state = new DeviceState();
  const pages = ramSize / PAGE_SIZE;
  let s = (salt * 2654435761) >>> 0 || 1;
  const rnd = () => ((s = (s ^ (s << 13)) >>> 0), (s = (s ^ (s >>> 17)) >>> 0), (s = (s ^ (s << 5)) >>> 0), s);
  switch (guest) {
    case 'ab': {
      // migration-test's a-b walk, stopped half way: N…N then N-1…N-1 on the first byte of each page.
      const cut = 1 + (rnd() % Math.max(1, pages - 2));
      for (let p = 1; p < pages; p++) ram[p * PAGE_SIZE] = p < cut ? 0x42 : 0x41;
      break;
    }
    case 'stress':
      for (let p = 0; p < pages; p += 1 + (rnd() % 3)) for (let i = 0; i < PAGE_SIZE; i += 4) ram[p * PAGE_SIZE + i] = rnd() & 0xff;
      break;
    case 'display': {
      const w = 16;
      const h = 8;
      const fb = ramSize - w * h * 4;
      for (let i = fb; i < ramSize; i++) ram[i] = rnd() & 0xff;
      state.set('tabmig-display', 'fb_addr', RAM_BASE + fb);
      state.set('tabmig-display', 'width', w);
      state.set('tabmig-display', 'height', h);
      state.set('tabmig-display', 'stride', w * 4);
      state.set('tabmig-display', 'enable', 1);
      break;
    }
    case 'empty':
      break;
  }
  state.set('cpu', 'pc', RAM_BASE + 4 * (rnd() % (ramSize / 4)));
  for (let i = 1; i < 32; i++) state.set('cpu', 'regs', rnd(), i);
  state.set('cpu', 'mcycle', rnd() * 1000);
  state.set('serial', 'lsr', 0x60);
  state.set('serial', 'rx_count', rnd() % 17);
  state.set('riscv.aclint.mtimer', 'mtimecmp', 2 ** 40 + rnd());
  state.setString('tabmig-machine', 'program', guest);
  return { ram, state };
}

/** A saved stream, with a live source's commands after the configuration when `commands` is set. */
async function saved(guest: Guest, ramSize: number, footers: boolean, runState: string, commands: MigCommand[], salt: number): Promise<Seed> {
  const { ram, state } = machine(guest, ramSize, salt);
  const sink = new BufferSink();
  const w = new StreamWriter(sink, { chunkSize: 64 * 1024 });
  await writeSnapshot(w, { machineType: FUZZ_MACHINE_TYPE, ramBlock: { name: RAM_BLOCK_MAIN, length: ramSize }, ram, state, runState, footers });
  await w.flush();
  let bytes = sink.toBytes();
  if (commands.length) {
    const head = new BufferSink();
    const hw = new StreamWriter(head);
    writeStreamHeader(hw);
    writeConfiguration(hw, FUZZ_MACHINE_TYPE);
    await hw.flush();
    const prefix = head.toBytes().length;
    for (const c of commands) writeCommand(hw, c);
    await hw.flush();
    const withCommands = head.toBytes();
    const out = new Uint8Array(withCommands.length + bytes.length - prefix);
    out.set(withCommands);
    out.set(bytes.subarray(prefix), withCommands.length);
    bytes = out;
  }
  const name = `${guest}-${ramSize >> 10}K-${footers ? 'footers' : 'nofooters'}-${runState}${commands.length ? '-rp' : ''}`;
  return { name, bytes, ramSize, footers, ram, state, runState };
}

/** Every seed: 4 guests × 3 sizes, with the capabilities varied across them. */
export async function buildCorpus(): Promise<Seed[]> {
  const out: Seed[] = [];
  const guests: Guest[] = ['ab', 'stress', 'display', 'empty'];
  const sizes = [32 << 10, 256 << 10, 1 << 20];
  let salt = 1;
  for (const guest of guests) {
    for (const size of sizes) {
      const footers = salt % 3 !== 0;
      const runState = salt % 2 ? 'running' : 'paused';
      const cmds: MigCommand[] = salt % 4 < 2 ? [{ type: 'OPEN_RETURN_PATH' }, { type: 'PING', value: salt }] : [];
      out.push(await saved(guest, size, footers, runState, cmds, salt++));
    }
  }
  return out;
}
