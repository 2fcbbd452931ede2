// Machine-mode CSR numbers and bit fields the interpreter implements (RISC-V privileged spec).
// Only machine mode exists, so there is no S/U state: any CSR not listed here (satp, pmp*,
// medeleg, mideleg, mcounteren, sstatus, …) raises an illegal-instruction exception, which is what
// the riscv-tests `-p-` reset code expects when it probes them.

export const Csr = {
  MSTATUS: 0x300,
  MISA: 0x301,
  MIE: 0x304,
  MTVEC: 0x305,
  MSTATUSH: 0x310,
  MSCRATCH: 0x340,
  MEPC: 0x341,
  MCAUSE: 0x342,
  MTVAL: 0x343,
  MIP: 0x344,
  MCYCLE: 0xb00,
  MINSTRET: 0xb02,
  MCYCLEH: 0xb80,
  MINSTRETH: 0xb82,
  CYCLE: 0xc00,
  TIME: 0xc01,
  INSTRET: 0xc02,
  CYCLEH: 0xc80,
  TIMEH: 0xc81,
  INSTRETH: 0xc82,
  MVENDORID: 0xf11,
  MARCHID: 0xf12,
  MIMPID: 0xf13,
  MHARTID: 0xf14,
  MCONFIGPTR: 0xf15,
} as const;

/** RV32 (MXL = 1) with I and M. */
export const MISA_RV32IM = 0x4000_1100;

export const MSTATUS_MIE = 1 << 3;
export const MSTATUS_MPIE = 1 << 7;
/** MPP is read-only 3 (machine): machine mode is the only privilege level. */
export const MSTATUS_MPP = 3 << 11;
export const MSTATUS_WRITABLE = MSTATUS_MIE | MSTATUS_MPIE;

/** Interrupt-pending / -enable bits (mip, mie). */
export const MIP_MSIP = 1 << 3;
export const MIP_MTIP = 1 << 7;
export const MIP_MEIP = 1 << 11;
export const MIE_WRITABLE = MIP_MSIP | MIP_MTIP | MIP_MEIP;

/** CSR numbers with bits 11:10 = 11 are read-only: writing one is an illegal instruction. */
export function csrIsReadOnly(csr: number): boolean {
  return csr >>> 10 === 3;
}
