// mcause values and the wording of panic messages for traps nobody handles.

export const Cause = {
  INSN_MISALIGNED: 0,
  INSN_ACCESS_FAULT: 1,
  ILLEGAL_INSN: 2,
  BREAKPOINT: 3,
  LOAD_MISALIGNED: 4,
  LOAD_ACCESS_FAULT: 5,
  STORE_MISALIGNED: 6,
  STORE_ACCESS_FAULT: 7,
  ECALL_FROM_M: 11,
} as const;

/** mcause of an interrupt: the top bit set over the interrupt number (= its mip bit index). */
export const INTERRUPT = 0x8000_0000;
export const IRQ_MSI = 3;
export const IRQ_MTI = 7;
export const IRQ_MEI = 11;

const hex = (v: number) => '0x' + (v >>> 0).toString(16).padStart(8, '0');

/** Describes a trap the way a panic message shows it, e.g. "illegal instruction 0x0000ffff". */
export function describeTrap(cause: number, tval: number): string {
  if (cause & INTERRUPT) {
    const n = cause & 0x7fff_ffff;
    const name = { [IRQ_MSI]: 'machine software', [IRQ_MTI]: 'machine timer', [IRQ_MEI]: 'machine external' }[n];
    return `${name ?? `interrupt ${n}`} interrupt`;
  }
  switch (cause) {
    case Cause.INSN_MISALIGNED:
      return `instruction address misaligned (target ${hex(tval)})`;
    case Cause.INSN_ACCESS_FAULT:
      return `instruction access fault at ${hex(tval)}`;
    case Cause.ILLEGAL_INSN:
      return `illegal instruction ${hex(tval)}`;
    case Cause.BREAKPOINT:
      return 'breakpoint';
    case Cause.LOAD_ACCESS_FAULT:
      return `load access fault at ${hex(tval)}`;
    case Cause.STORE_ACCESS_FAULT:
      return `store access fault at ${hex(tval)}`;
    case Cause.ECALL_FROM_M:
      return 'environment call from M-mode';
  }
  return `exception ${cause} (mtval ${hex(tval)})`;
}

export function panicText(cause: number, tval: number, pc: number, why: string): string {
  const mcause = cause & INTERRUPT ? `0x${(cause >>> 0).toString(16)}` : String(cause);
  return `${describeTrap(cause, tval)} at pc ${hex(pc)} (mcause ${mcause}), ${why}`;
}

export { hex as hex32 };
