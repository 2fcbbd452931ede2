// RV32IM + Zicsr + Zifencei decoder. Turns one 32-bit instruction word into a small operation id,
// register numbers and a ready-made immediate, so the interpreter's hot loop does one switch over
// dense integers instead of re-parsing opcode/funct3/funct7 each time.
//
// Packed form (two Int32 words per instruction, see packInto):
//   word 0 = op | rd << 8 | rs1 << 16 | rs2 << 24
//   word 1 = imm (already sign-extended/shifted; for CSR ops the CSR number; for ILLEGAL the raw bits)
// rd is stored as X_SINK (32) when the instruction names x0, so the interpreter can write results
// unconditionally into a 33-entry register file whose slot 0 is never written.

/**
 * Operation ids. The interpreter's switch (cpu.ts) uses these numbers as literals, so that V8 can
 * compile it to a jump table: renumbering here means renumbering there.
 */
export const Op = {
  ILLEGAL: 0,
  LUI: 1,
  AUIPC: 2,
  JAL: 3,
  JALR: 4,
  BEQ: 5,
  BNE: 6,
  BLT: 7,
  BGE: 8,
  BLTU: 9,
  BGEU: 10,
  LB: 11,
  LH: 12,
  LW: 13,
  LBU: 14,
  LHU: 15,
  SB: 16,
  SH: 17,
  SW: 18,
  ADDI: 19,
  SLTI: 20,
  SLTIU: 21,
  XORI: 22,
  ORI: 23,
  ANDI: 24,
  SLLI: 25,
  SRLI: 26,
  SRAI: 27,
  ADD: 28,
  SUB: 29,
  SLL: 30,
  SLT: 31,
  SLTU: 32,
  XOR: 33,
  SRL: 34,
  SRA: 35,
  OR: 36,
  AND: 37,
  MUL: 38,
  MULH: 39,
  MULHSU: 40,
  MULHU: 41,
  DIV: 42,
  DIVU: 43,
  REM: 44,
  REMU: 45,
  FENCE: 46,
  FENCE_I: 47,
  ECALL: 48,
  EBREAK: 49,
  MRET: 50,
  WFI: 51,
  CSRRW: 52,
  CSRRS: 53,
  CSRRC: 54,
  CSRRWI: 55,
  CSRRSI: 56,
  CSRRCI: 57,
  /** JAL whose offset is not a multiple of 4: traps (no C extension). imm = offset. */
  JAL_MISALIGNED: 58,
  /** Branch whose offset is not a multiple of 4: traps if taken. rd field = funct3. */
  BRANCH_MISALIGNED: 59,
  /** Register-only instruction writing x0 (a hint or nop): does nothing. */
  NOP: 60,
  /** addi rd, x0, imm (`li`): rd = imm. */
  LI: 61,
} as const;
export type OpValue = (typeof Op)[keyof typeof Op];

export const OP_NAMES: readonly string[] = Object.entries(Op)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.toLowerCase().replace('_', '.'));

/** The register-file slot that instructions naming rd = x0 write into (and nobody reads). */
export const X_SINK = 32;

export interface Decoded {
  op: OpValue;
  rd: number;
  rs1: number;
  rs2: number;
  imm: number;
}

const immI = (i: number) => i >> 20;
const immS = (i: number) => ((i >> 25) << 5) | ((i >>> 7) & 0x1f);
const immB = (i: number) =>
  ((i >> 31) << 12) | (((i >>> 7) & 1) << 11) | (((i >>> 25) & 0x3f) << 5) | (((i >>> 8) & 0xf) << 1);
const immU = (i: number) => i & 0xfffff000;
const immJ = (i: number) =>
  ((i >> 31) << 20) | (i & 0xff000) | (((i >>> 20) & 1) << 11) | (((i >>> 21) & 0x3ff) << 1);

const BRANCH_OPS: readonly (OpValue | -1)[] = [Op.BEQ, Op.BNE, -1, -1, Op.BLT, Op.BGE, Op.BLTU, Op.BGEU];
const LOAD_OPS: readonly (OpValue | -1)[] = [Op.LB, Op.LH, Op.LW, -1, Op.LBU, Op.LHU, -1, -1];
const STORE_OPS: readonly (OpValue | -1)[] = [Op.SB, Op.SH, Op.SW, -1, -1, -1, -1, -1];
const OPIMM_OPS: readonly OpValue[] = [Op.ADDI, Op.SLLI, Op.SLTI, Op.SLTIU, Op.XORI, Op.SRLI, Op.ORI, Op.ANDI];
const OP_OPS: readonly OpValue[] = [Op.ADD, Op.SLL, Op.SLT, Op.SLTU, Op.XOR, Op.SRL, Op.OR, Op.AND];
const MULDIV_OPS: readonly OpValue[] = [Op.MUL, Op.MULH, Op.MULHSU, Op.MULHU, Op.DIV, Op.DIVU, Op.REM, Op.REMU];
const CSR_OPS: readonly (OpValue | -1)[] = [-1, Op.CSRRW, Op.CSRRS, Op.CSRRC, -1, Op.CSRRWI, Op.CSRRSI, Op.CSRRCI];

/** Instructions without side effects other than writing rd: with rd = x0 they are no-ops. */
function pureWhenRdZero(op: OpValue): boolean {
  return (op >= Op.ADDI && op <= Op.REMU) || op === Op.LUI || op === Op.AUIPC || op === Op.LI;
}

/** Decodes one instruction word. Anything RV32IM/Zicsr/Zifencei does not define is Op.ILLEGAL. */
export function decode(insn: number): Decoded {
  const d = decodeRaw(insn | 0);
  if (d.rd === 0 && pureWhenRdZero(d.op)) return { op: Op.NOP, rd: X_SINK, rs1: 0, rs2: 0, imm: 0 };
  if (d.rd === 0) d.rd = X_SINK;
  return d;
}

function illegal(insn: number): Decoded {
  return { op: Op.ILLEGAL, rd: 0, rs1: 0, rs2: 0, imm: insn };
}

function decodeRaw(insn: number): Decoded {
  const opcode = insn & 0x7f;
  const rd = (insn >>> 7) & 0x1f;
  const f3 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 0x1f;
  const rs2 = (insn >>> 20) & 0x1f;
  const f7 = insn >>> 25;
  const mk = (op: OpValue | -1, imm: number, r1 = rs1, r2 = rs2, d = rd): Decoded =>
    op === -1 ? illegal(insn) : { op, rd: d, rs1: r1, rs2: r2, imm: imm | 0 };

  switch (opcode) {
    case 0x37:
      return mk(Op.LUI, immU(insn), 0, 0);
    case 0x17:
      return mk(Op.AUIPC, immU(insn), 0, 0);
    case 0x6f: {
      const imm = immJ(insn);
      return mk(imm & 2 ? Op.JAL_MISALIGNED : Op.JAL, imm, 0, 0);
    }
    case 0x67:
      return f3 === 0 ? mk(Op.JALR, immI(insn), rs1, 0) : illegal(insn);
    case 0x63: {
      const op = BRANCH_OPS[f3]!;
      if (op === -1) return illegal(insn);
      const imm = immB(insn);
      return imm & 2 ? mk(Op.BRANCH_MISALIGNED, imm, rs1, rs2, f3) : mk(op, imm, rs1, rs2, 0);
    }
    case 0x03:
      return mk(LOAD_OPS[f3]!, immI(insn), rs1, 0);
    case 0x23:
      return mk(STORE_OPS[f3]!, immS(insn), rs1, rs2, 0);
    case 0x13: {
      if (f3 === 1) return f7 === 0 ? mk(Op.SLLI, rs2, rs1, 0) : illegal(insn);
      if (f3 === 5) {
        if (f7 === 0) return mk(Op.SRLI, rs2, rs1, 0);
        if (f7 === 0x20) return mk(Op.SRAI, rs2, rs1, 0);
        return illegal(insn);
      }
      if (f3 === 0 && rs1 === 0) return mk(Op.LI, immI(insn), 0, 0);
      return mk(OPIMM_OPS[f3]!, immI(insn), rs1, 0);
    }
    case 0x33: {
      if (f7 === 0) return mk(OP_OPS[f3]!, 0);
      if (f7 === 1) return mk(MULDIV_OPS[f3]!, 0);
      if (f7 === 0x20) {
        if (f3 === 0) return mk(Op.SUB, 0);
        if (f3 === 5) return mk(Op.SRA, 0);
      }
      return illegal(insn);
    }
    case 0x0f:
      // FENCE's fm/pred/succ and unused fields are ignored, as the spec asks for forward compatibility.
      if (f3 === 0) return mk(Op.FENCE, 0, 0, 0, 0);
      if (f3 === 1) return mk(Op.FENCE_I, 0, 0, 0, 0);
      return illegal(insn);
    case 0x73: {
      if (f3 === 0) {
        switch (insn >>> 0) {
          case 0x00000073:
            return mk(Op.ECALL, 0, 0, 0, 0);
          case 0x00100073:
            return mk(Op.EBREAK, 0, 0, 0, 0);
          case 0x30200073:
            return mk(Op.MRET, 0, 0, 0, 0);
          case 0x10500073:
            return mk(Op.WFI, 0, 0, 0, 0);
        }
        return illegal(insn);
      }
      // CSR number in imm; for the immediate forms rs1 holds the 5-bit zero-extended uimm.
      return mk(CSR_OPS[f3]!, insn >>> 20, rs1, 0);
    }
  }
  return illegal(insn);
}

/** Decodes `insn` into the two-word packed form at dst[at], dst[at + 1]. */
export function packInto(insn: number, dst: Int32Array, at: number): void {
  const d = decode(insn);
  dst[at] = d.op | (d.rd << 8) | (d.rs1 << 16) | (d.rs2 << 24);
  dst[at + 1] = d.imm;
}

/** Re-encodes a decoded CSR instruction (for mtval on an illegal CSR access). */
export function encodeCsr(op: OpValue, rd: number, rs1: number, csr: number): number {
  const f3 = CSR_OPS.indexOf(op);
  return ((csr << 20) | (rs1 << 15) | (f3 << 12) | ((rd === X_SINK ? 0 : rd) << 7) | 0x73) | 0;
}
