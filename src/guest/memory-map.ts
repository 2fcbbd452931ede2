// The toy machine's physical address map. RAM sits where QEMU's `virt` machine and Spike put it,
// so standard RISC-V test binaries (riscv-tests `-p-` variants) load unchanged; the devices sit
// below it at the addresses QEMU `virt` guests already know.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE_DEFAULT = 64 * 1024 * 1024;
export const RAM_SIZE_MIN = 16 * 1024 * 1024;
export const RAM_SIZE_MAX = 1024 * 1024 * 1024;

/** SiFive test finisher (QEMU `virt` "sifive_test"): write 0x5555 pass, 0x3333|code<<16 fail, 0x7777 reset. */
export const EXIT_BASE = 0x0010_0000;
export const EXIT_SIZE = 0x1000;
export const EXIT_PASS = 0x5555;
export const EXIT_FAIL = 0x3333;
export const EXIT_RESET = 0x7777;

/** CLINT (QEMU `virt`): msip at +0, mtimecmp at +0x4000, mtime at +0xbff8; mtime ticks at 10 MHz. */
export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x1_0000;
export const CLINT_MSIP = 0x0;
export const CLINT_MTIMECMP = 0x4000;
export const CLINT_MTIME = 0xbff8;
export const TIMEBASE_HZ = 10_000_000;

/** NS16550A UART (QEMU `virt`), byte registers at stride 1. */
export const UART_BASE = 0x1000_0000;
export const UART_SIZE = 0x100;

/**
 * tabmig display: a framebuffer in guest RAM (so it migrates as RAM), described by these registers.
 * All 32-bit: +0 FB_ADDR (guest physical), +4 WIDTH, +8 HEIGHT, +12 STRIDE (bytes per line),
 * +16 ENABLE (1 = show), +20 FRAME (guest bumps after drawing a frame). Pixels are 0x00RRGGBB words.
 */
export const DISPLAY_BASE = 0x1000_1000;
export const DISPLAY_SIZE = 0x100;
export const DISPLAY_FB_ADDR = 0x00;
export const DISPLAY_WIDTH = 0x04;
export const DISPLAY_HEIGHT = 0x08;
export const DISPLAY_STRIDE = 0x0c;
export const DISPLAY_ENABLE = 0x10;
export const DISPLAY_FRAME = 0x14;
export const DISPLAY_MAX_WIDTH = 1024;
export const DISPLAY_MAX_HEIGHT = 768;

/**
 * tabmig-hostdev: a host device passed through to the guest, like VFIO. Its state lives in the
 * host, so while the guest has it enabled the VM cannot migrate (it is a migration blocker).
 * 32-bit registers: +0 ENABLE (write 1 to enable, 0 to disable; reads 1 while enabled),
 * +4 STATUS (reads 1 if the last enable was refused: only-migratable, or a migration running).
 */
export const HOSTDEV_BASE = 0x1000_2000;
export const HOSTDEV_SIZE = 0x100;
export const HOSTDEV_ENABLE = 0x00;
export const HOSTDEV_STATUS = 0x04;

/**
 * Boot information, written by the loader into the last page of RAM; a1 points at it at entry
 * (a0 = hart id), the way QEMU hands a device tree to a kernel.
 * Layout (little-endian u32): +0 magic BOOTINFO_MAGIC, +4 RAM base, +8 RAM size,
 * +12 address of the NUL-terminated command line (`args` of x-tabmig-load), +16 its length.
 */
export const BOOTINFO_MAGIC = 0x544d_4249; // "TMBI"
export const BOOTINFO_CMDLINE_MAX = 2048;

export function bootInfoAddress(ramSize: number): number {
  return RAM_BASE + ramSize - PAGE_SIZE;
}

/** The guest's stack grows down from just below the boot-info page. */
export function initialStackPointer(ramSize: number): number {
  return bootInfoAddress(ramSize) - 16;
}

/** The `ab` guest's default range size (its `size=` argument). */
export const AB_DEFAULT_SIZE = 2 * 1024 * 1024;

/**
 * The range QEMU's migration-test a-b guest walks here: `size` bytes from 1 MiB into RAM (the
 * program image sits below), never closer than 1 MiB to the end (stack and boot info).
 */
export function abRange(ramSize: number, size = AB_DEFAULT_SIZE): { start: number; end: number } {
  const start = RAM_BASE + 0x10_0000;
  const limit = RAM_BASE + ramSize - 0x10_0000;
  return { start, end: Math.min(limit, start + Math.max(PAGE_SIZE, size - (size % PAGE_SIZE))) };
}

/** Parses QEMU's `-m` size syntax: a number with an optional K/M/G/T suffix (default unit M). */
export function parseRamSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new RangeError(`Invalid RAM size: '${text}'`);
  const unit = (m[2] || 'M').toUpperCase();
  const mult = { K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 }[unit as 'K' | 'M' | 'G' | 'T'];
  return Math.round(parseFloat(m[1]!) * mult);
}

export function checkRamSize(bytes: number): void {
  if (bytes < RAM_SIZE_MIN || bytes > RAM_SIZE_MAX) {
    throw new RangeError(`RAM size ${bytes} bytes is out of range: tabmig takes 16M to 1G`);
  }
  if (bytes % PAGE_SIZE !== 0) throw new RangeError(`RAM size ${bytes} is not a multiple of the 4 KiB page size`);
}
