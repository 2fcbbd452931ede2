// Puts a program into a stopped machine: RAM, boot information, device and CPU reset state. Runs
// on whichever thread owns the load (the main thread for x-tabmig-load and system_reset); the vCPU
// picks the new state up when it next starts, because the control block's generation changes.

import { Clint } from './devices/clint.js';
import { Display } from './devices/display.js';
import { Uart } from './devices/uart.js';
import { DeviceName, deviceLayout, type DeviceState } from './device-state.js';
import { checkFitsInRam, loadSegments, type ElfImage } from './elf.js';
import {
  BOOTINFO_CMDLINE_MAX,
  BOOTINFO_MAGIC,
  PAGE_SIZE,
  RAM_BASE,
  bootInfoAddress,
  initialStackPointer,
} from './memory-map.js';

export interface BootRequest {
  image: ElfImage;
  program: string;
  args: string;
  /** Zero all of RAM first (a fresh machine) rather than only reloading the image (a reset). */
  clearRam: boolean;
}

const REG_SP = 2;
const REG_A0 = 10;
const REG_A1 = 11;

/** Everything that could make a boot fail, checked before the running guest is touched. */
export function checkBootable(image: ElfImage, args: string, ramSize: number): void {
  checkFitsInRam(image, ramSize, PAGE_SIZE);
  if (new TextEncoder().encode(args).length >= BOOTINFO_CMDLINE_MAX) throw new RangeError(`args are longer than ${BOOTINFO_CMDLINE_MAX - 1} bytes`);
}

export function bootProgram(ram: Uint8Array, state: DeviceState, req: BootRequest): void {
  const ramSize = ram.length;
  checkBootable(req.image, req.args, ramSize);
  const cmdline = new TextEncoder().encode(req.args);

  if (req.clearRam) ram.fill(0);
  loadSegments(req.image, ram);
  writeBootInfo(ram, cmdline);

  new Uart(state, () => {}).reset();
  new Clint(state).reset();
  new Display(state).reset();

  const cpu = DeviceName.CPU;
  state.bytes.fill(0, ...deviceByteRange(cpu));
  state.set(cpu, 'pc', req.image.entry);
  state.set(cpu, 'regs', initialStackPointer(ramSize), REG_SP);
  state.set(cpu, 'regs', 0, REG_A0);
  state.set(cpu, 'regs', bootInfoAddress(ramSize), REG_A1);
  state.set(cpu, 'mstatus', 0x1800); // MPP = M

  const m = DeviceName.MACHINE;
  state.setString(m, 'program', req.program.slice(0, 63));
  state.setString(m, 'args', truncateUtf8(req.args, 255));
  state.set(m, 'tohost', req.image.symbols.get('tohost') ?? 0);
  state.set(m, 'exit_code', 0);
}

function writeBootInfo(ram: Uint8Array, cmdline: Uint8Array): void {
  const at = bootInfoAddress(ram.length) - RAM_BASE;
  const v = new DataView(ram.buffer, ram.byteOffset + at, PAGE_SIZE);
  new Uint8Array(ram.buffer, ram.byteOffset + at, PAGE_SIZE).fill(0);
  const cmdOffset = 64;
  v.setUint32(0, BOOTINFO_MAGIC, true);
  v.setUint32(4, RAM_BASE, true);
  v.setUint32(8, ram.length >>> 0, true);
  v.setUint32(12, bootInfoAddress(ram.length) + cmdOffset, true);
  v.setUint32(16, cmdline.length, true);
  ram.set(cmdline, at + cmdOffset);
}

/** The bytes a device's fields occupy in the device-state buffer (laid out contiguously). */
function deviceByteRange(device: string): [number, number] {
  const fields = [...deviceLayout(device).fields.values()];
  return [Math.min(...fields.map((f) => f.offset)), Math.max(...fields.map((f) => f.offset + f.byteSize))];
}

function truncateUtf8(text: string, maxBytes: number): string {
  const enc = new TextEncoder();
  while (enc.encode(text).length > maxBytes) text = text.slice(0, -1);
  return text;
}
