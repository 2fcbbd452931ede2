// RV32IM instruction semantics: every instruction, with the edge cases the spec calls out.
// Programs are assembled in the test (fixtures/cpu-asm.ts) and run on a bare CPU with 64 KiB RAM.

import { StopReason } from '../src/guest/bus.js';
import { Op, OP_NAMES, decode, X_SINK } from '../src/guest/cpu/decode.js';
import { RAM_BASE } from '../src/guest/memory-map.js';
import { Asm, I, R } from './fixtures/cpu-asm.js';
import { DEV_BASE, Rig, halt } from './fixtures/cpu-rig.js';
import { deepEqual, equal, ok } from './helpers/assert.js';

const { a0, a1, a2, a3, t0, t1, t2, ra, sp } = R;
const INT_MIN = 0x8000_0000;
const hex = (v: number) => '0x' + (v >>> 0).toString(16);

const shared = new Rig();

/** Runs `body` (after a1 = a, a2 = b) and returns a0. */
function compute(a: number, b: number, body: (p: Asm) => void): number {
  const p = new Asm().li(a1, a).li(a2, b);
  body(p);
  halt(p);
  shared.load(p).runToHalt(p);
  return shared.reg(a0);
}

type RegOp = (rd: number, rs1: number, rs2: number) => number;

function checkRR(name: string, op: RegOp, cases: [number, number, number][]): void {
  for (const [a, b, want] of cases) {
    const got = compute(a, b, (p) => p.emit(op(a0, a1, a2)));
    equal(hex(got), hex(want), `${name} ${hex(a)}, ${hex(b)}`);
  }
}

function checkRI(name: string, op: RegOp, cases: [number, number, number][]): void {
  for (const [a, imm, want] of cases) {
    const got = compute(a, 0, (p) => p.emit(op(a0, a1, imm)));
    equal(hex(got), hex(want), `${name} ${hex(a)}, ${imm}`);
  }
}

/** BigInt reference for the M extension. */
function refM(name: string, a: number, b: number): number {
  const sa = BigInt(a | 0);
  const sb = BigInt(b | 0);
  const ua = BigInt(a >>> 0);
  const ub = BigInt(b >>> 0);
  const hi = (v: bigint) => Number(BigInt.asUintN(32, v >> 32n));
  const lo = (v: bigint) => Number(BigInt.asUintN(32, v));
  switch (name) {
    case 'mul':
      return lo(sa * sb);
    case 'mulh':
      return hi(sa * sb);
    case 'mulhsu':
      return hi(sa * ub);
    case 'mulhu':
      return hi(ua * ub);
    case 'div':
      if (sb === 0n) return 0xffff_ffff;
      if ((a | 0) === (INT_MIN | 0) && (b | 0) === -1) return INT_MIN;
      return lo(sa / sb); // BigInt division truncates toward zero
    case 'divu':
      return ub === 0n ? 0xffff_ffff : lo(ua / ub);
    case 'rem':
      if (sb === 0n) return a >>> 0;
      if ((a | 0) === (INT_MIN | 0) && (b | 0) === -1) return 0;
      return lo(sa % sb); // sign of the dividend, as RISC-V
    case 'remu':
      return ub === 0n ? a >>> 0 : lo(ua % ub);
  }
  throw new Error(name);
}

describe('cpu: decoder', () => {
  it('maps every RV32IM encoding to its op and rejects the rest', () => {
    equal(decode(I.add(a0, a1, a2)).op, Op.ADD);
    equal(decode(I.mulhsu(a0, a1, a2)).op, Op.MULHSU);
    equal(decode(I.addi(a0, 0, 5)).op, Op.LI, 'addi rd, x0, imm is li');
    equal(decode(I.addi(0, a0, 5)).op, Op.NOP, 'a register op writing x0 is a nop');
    equal(decode(I.lw(0, a0, 0)).op, Op.LW, 'a load into x0 still loads (it may fault)');
    equal(decode(I.lw(0, a0, 0)).rd, X_SINK);
    equal(decode(0).op, Op.ILLEGAL, 'all-zero word');
    equal(decode(0xffff_ffff).op, Op.ILLEGAL, 'all-ones word');
    equal(decode(0x0000_4501).op, Op.ILLEGAL, 'a compressed instruction (no C extension)');
    equal(decode(0x10200073).op, Op.ILLEGAL, 'sret');
    equal(decode(0x12000073).op, Op.ILLEGAL, 'sfence.vma');
    equal(decode(I.slli(a0, a0, 1) | (1 << 25)).op, Op.ILLEGAL, 'slli with shamt[5] set (RV64 only)');
    equal(decode(I.add(a0, a0, a0) | (2 << 25)).op, Op.ILLEGAL, 'unknown funct7');
    equal(decode(I.lw(a0, a0, 0) | (3 << 12)).op, Op.ILLEGAL, 'ld');
    equal(decode(I.sw(a0, a0, 0) | (3 << 12)).op, Op.ILLEGAL, 'sd');
    equal(decode(I.beq(a0, a0, 8) | (2 << 12)).op, Op.ILLEGAL, 'branch funct3 2');
    equal(decode(I.jalr(a0, a0, 0) | (1 << 12)).op, Op.ILLEGAL, 'jalr funct3 1');
    equal(decode(0x0000_2073 | (0x300 << 20)).op, Op.CSRRS, 'csrr mstatus');
    equal(decode(0x0000_4073).op, Op.ILLEGAL, 'SYSTEM funct3 4');
    equal(decode(0x0000_200f).op, Op.ILLEGAL, 'MISC-MEM funct3 2');
    equal(OP_NAMES[Op.FENCE_I], 'fence.i');
  });
});

describe('cpu: RV32I register-immediate', () => {
  it('lui and auipc', () => {
    const p = new Asm().emit(I.lui(a0, 0x12345), I.lui(a1, 0xfffff), I.auipc(a2, 0), I.auipc(a3, 1), I.auipc(t0, 0x80000));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(hex(shared.reg(a0)), '0x12345000');
    equal(hex(shared.reg(a1)), '0xfffff000');
    equal(hex(shared.reg(a2)), hex(RAM_BASE + 8));
    equal(hex(shared.reg(a3)), hex(RAM_BASE + 12 + 0x1000));
    equal(hex(shared.reg(t0)), hex(RAM_BASE + 16 + 0x8000_0000), 'auipc wraps around');
  });

  it('addi', () =>
    checkRI('addi', I.addi, [
      [1, 2, 3],
      [0x7fff_ffff, 1, INT_MIN],
      [5, -6, 0xffff_ffff],
      [0, 2047, 2047],
      [0, -2048, 0xffff_f800],
      [0xffff_ffff, 1, 0],
    ]));

  it('slti and sltiu compare signed and unsigned', () => {
    checkRI('slti', I.slti, [
      [-1, 0, 1],
      [0, -1, 0],
      [-2048, -2047, 1],
      [2047, 2047, 0],
      [INT_MIN, 0, 1],
      [0x7fff_ffff, -1, 0],
    ]);
    checkRI('sltiu', I.sltiu, [
      [0, 1, 1], // seqz
      [5, 1, 0],
      [0xffff_fffe, -1, 1], // the immediate is sign-extended, then compared unsigned
      [0xffff_ffff, -1, 0],
      [1, 0, 0],
      [INT_MIN, 2047, 0],
    ]);
  });

  it('xori, ori, andi sign-extend their immediates', () => {
    checkRI('xori', I.xori, [
      [0x00ff_00ff, -1, 0xff00_ff00],
      [0x00ff_00ff, 0x0f0, 0x00ff_000f],
    ]);
    checkRI('ori', I.ori, [
      [0x00ff_0000, -2048, 0xffff_f800],
      [1, 0x7f0, 0x7f1],
    ]);
    checkRI('andi', I.andi, [
      [0x1234_5678, -1, 0x1234_5678],
      [0x1234_5678, 0xff, 0x78],
      [0x1234_5678, -2048, 0x1234_5000],
    ]);
  });

  it('slli, srli, srai', () => {
    checkRI('slli', I.slli, [
      [1, 31, INT_MIN],
      [0x1234_5678, 0, 0x1234_5678],
      [0xffff_ffff, 4, 0xffff_fff0],
    ]);
    checkRI('srli', I.srli, [
      [INT_MIN, 31, 1],
      [0xffff_ffff, 1, 0x7fff_ffff],
      [0x1234_5678, 0, 0x1234_5678],
    ]);
    checkRI('srai', I.srai, [
      [INT_MIN, 31, 0xffff_ffff],
      [INT_MIN, 1, 0xc000_0000],
      [0x7fff_ffff, 30, 1],
      [0x8765_4321, 0, 0x8765_4321],
    ]);
  });
});

describe('cpu: RV32I register-register', () => {
  it('add and sub wrap around', () => {
    checkRR('add', I.add, [
      [1, 2, 3],
      [0x7fff_ffff, 1, INT_MIN],
      [-1, 1, 0],
      [INT_MIN, INT_MIN, 0],
    ]);
    checkRR('sub', I.sub, [
      [1, 2, 0xffff_ffff],
      [INT_MIN, 1, 0x7fff_ffff],
      [0, INT_MIN, INT_MIN],
      [7, 7, 0],
    ]);
  });

  it('sll, srl, sra use only the low 5 bits of the shift amount', () => {
    checkRR('sll', I.sll, [
      [1, 31, INT_MIN],
      [1, 32, 1],
      [1, 33, 2],
      [0xffff_ffff, -31, 0xffff_fffe],
    ]);
    checkRR('srl', I.srl, [
      [INT_MIN, 31, 1],
      [INT_MIN, 0, INT_MIN],
      [0xffff_ffff, 36, 0x0fff_ffff],
      [0xffff_ffff, -1, 1],
    ]);
    checkRR('sra', I.sra, [
      [INT_MIN, 31, 0xffff_ffff],
      [INT_MIN, 4, 0xf800_0000],
      [0x7fff_ffff, 33, 0x3fff_ffff],
      [0xffff_0000, 64, 0xffff_0000],
    ]);
  });

  it('slt is signed, sltu unsigned', () => {
    checkRR('slt', I.slt, [
      [-1, 1, 1],
      [1, -1, 0],
      [5, 5, 0],
      [INT_MIN, 0x7fff_ffff, 1],
    ]);
    checkRR('sltu', I.sltu, [
      [-1, 1, 0],
      [1, -1, 1],
      [0, 1, 1], // snez when rs1 = x0 is covered below
      [5, 5, 0],
    ]);
    equal(compute(0, 9, (p) => p.emit(I.sltu(a0, 0, a2))), 1, 'sltu rd, x0, rs (snez)');
  });

  it('xor, or, and', () => {
    checkRR('xor', I.xor, [[0xff00_ff00, 0x0ff0_0ff0, 0xf0f0_f0f0]]);
    checkRR('or', I.or, [[0xff00_ff00, 0x0ff0_0ff0, 0xfff0_fff0]]);
    checkRR('and', I.and, [[0xff00_ff00, 0x0ff0_0ff0, 0x0f00_0f00]]);
  });

  it('x0 reads as zero whatever is written to it', () => {
    const p = new Asm().li(t0, RAM_BASE + 0x800).emit(
      I.addi(0, 0, 5),
      I.lui(0, 0x12345),
      I.auipc(0, 1),
      I.add(0, t0, t0),
      I.mul(0, t0, t0),
      I.lw(0, t0, 0),
      I.jal(0, 4),
      I.csrrs(0, 0x340, t0), // mscratch |= t0, rd = x0
      I.add(a0, 0, 0),
      I.addi(a1, 0, 0),
    );
    halt(p);
    shared.load(p);
    shared.u32[0x800 / 4] = 0xdead_beef;
    shared.runToHalt(p);
    equal(shared.reg(0), 0, 'x0');
    equal(shared.reg(a0), 0, 'add a0, x0, x0');
    equal(shared.reg(a1), 0, 'addi a1, x0, 0');
    equal(hex(shared.csr(0x340)), hex(RAM_BASE + 0x800), 'the csr write still happened');
  });
});

describe('cpu: M extension', () => {
  it('mul, mulh, mulhsu, mulhu get the signs right', () => {
    checkRR('mul', I.mul, [
      [3, -4, 0xffff_fff4],
      [0x1_0000, 0x1_0000, 0],
      [0x7fff_ffff, 0x7fff_ffff, 1],
      [INT_MIN, -1, INT_MIN],
    ]);
    checkRR('mulh', I.mulh, [
      [-1, -1, 0],
      [INT_MIN, INT_MIN, 0x4000_0000],
      [INT_MIN, 1, 0xffff_ffff],
      [0x7fff_ffff, 0x7fff_ffff, 0x3fff_ffff],
      [-1, 1, 0xffff_ffff],
      [INT_MIN, 0x7fff_ffff, 0xc000_0000],
    ]);
    checkRR('mulhsu', I.mulhsu, [
      [-1, 0xffff_ffff, 0xffff_ffff],
      [INT_MIN, 0xffff_ffff, INT_MIN],
      [2, INT_MIN, 1],
      [-2, INT_MIN, 0xffff_ffff],
      [0x7fff_ffff, 0xffff_ffff, 0x7fff_fffe],
    ]);
    checkRR('mulhu', I.mulhu, [
      [0xffff_ffff, 0xffff_ffff, 0xffff_fffe],
      [INT_MIN, 2, 1],
      [INT_MIN, INT_MIN, 0x4000_0000],
      [0x1_0000, 0x1_0000, 1],
    ]);
  });

  it('div, divu, rem, remu: division by zero and INT_MIN / -1 as the spec defines', () => {
    checkRR('div', I.div, [
      [7, 2, 3],
      [-7, 2, 0xffff_fffd],
      [7, -2, 0xffff_fffd],
      [-7, -2, 3],
      [1234, 0, 0xffff_ffff],
      [INT_MIN, -1, INT_MIN],
      [INT_MIN, 1, INT_MIN],
    ]);
    checkRR('divu', I.divu, [
      [7, 2, 3],
      [0xffff_ffff, 2, 0x7fff_ffff],
      [1234, 0, 0xffff_ffff],
      [INT_MIN, 0xffff_ffff, 0],
      [0xffff_fffe, 0xffff_ffff, 0],
    ]);
    checkRR('rem', I.rem, [
      [7, 2, 1],
      [-7, 2, 0xffff_ffff],
      [7, -2, 1],
      [1234, 0, 1234],
      [-5, 0, 0xffff_fffb],
      [INT_MIN, -1, 0],
    ]);
    checkRR('remu', I.remu, [
      [7, 2, 1],
      [0xffff_ffff, 10, 5],
      [1234, 0, 1234],
      [INT_MIN, 0xffff_ffff, INT_MIN],
    ]);
  });

  it('agrees with a BigInt reference on edge values and random operands', () => {
    const ops: [string, RegOp][] = [
      ['mul', I.mul],
      ['mulh', I.mulh],
      ['mulhsu', I.mulhsu],
      ['mulhu', I.mulhu],
      ['div', I.div],
      ['divu', I.divu],
      ['rem', I.rem],
      ['remu', I.remu],
    ];
    const edges = [0, 1, 2, 3, -1, -2, 0x7fff_ffff, INT_MIN, 0xffff, 0x1_0000, 0x8000_0001, 0x5555_5555, 0xaaaa_aaaa];
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      return seed;
    };
    const pairs: [number, number][] = [];
    for (const a of edges) for (const b of edges) pairs.push([a, b]);
    for (let i = 0; i < 200; i++) pairs.push([rand(), rand() >> (i % 31)]);
    // One program per op: for each pair, compute and store the result to a table.
    for (const [name, op] of ops) {
      const p = new Asm().li(t0, RAM_BASE + 0x4000).li(t1, RAM_BASE + 0x8000).li(t2, pairs.length).label('loop');
      p.emit(I.lw(a1, t0, 0), I.lw(a2, t0, 4), op(a0, a1, a2), I.sw(a0, t1, 0));
      p.emit(I.addi(t0, t0, 8), I.addi(t1, t1, 4), I.addi(t2, t2, -1));
      p.branch('bne', t2, 0, 'loop');
      halt(p);
      shared.load(p);
      pairs.forEach(([a, b], i) => {
        shared.u32[0x4000 / 4 + 2 * i] = a >>> 0;
        shared.u32[0x4000 / 4 + 2 * i + 1] = b >>> 0;
      });
      shared.runToHalt(p, 1_000_000);
      pairs.forEach(([a, b], i) => {
        equal(hex(shared.u32[0x8000 / 4 + i]!), hex(refM(name, a, b)), `${name} ${hex(a)}, ${hex(b)}`);
      });
    }
  });
});

describe('cpu: loads and stores', () => {
  const DATA = RAM_BASE + 0x1000;

  it('lb and lh sign-extend, lbu and lhu zero-extend, lw reads a word', () => {
    const p = new Asm().li(t0, DATA).emit(
      I.lb(a0, t0, 0),
      I.lbu(a1, t0, 0),
      I.lh(a2, t0, 0),
      I.lhu(a3, t0, 0),
      I.lw(t1, t0, 0),
      I.lb(t2, t0, 2),
      I.lh(sp, t0, 6),
      I.lw(ra, t0, -4),
    );
    halt(p);
    shared.load(p);
    shared.u8.set([0x81, 0x82, 0x7f, 0xff, 0x00, 0x00, 0xff, 0x7f], 0x1000);
    shared.u32[0x1000 / 4 - 1] = 0xcafe_f00d;
    shared.runToHalt(p);
    equal(hex(shared.reg(a0)), '0xffffff81', 'lb');
    equal(hex(shared.reg(a1)), '0x81', 'lbu');
    equal(hex(shared.reg(a2)), '0xffff8281', 'lh');
    equal(hex(shared.reg(a3)), '0x8281', 'lhu');
    equal(hex(shared.reg(t1)), '0xff7f8281', 'lw');
    equal(hex(shared.reg(t2)), '0x7f', 'lb of a positive byte');
    equal(hex(shared.reg(sp)), '0x7fff', 'lh of a positive half');
    equal(hex(shared.reg(ra)), '0xcafef00d', 'negative offset');
    deepEqual(shared.dirtyPages(), [], 'loads dirty nothing');
  });

  it('sb, sh, sw write only their bytes and mark the page dirty', () => {
    const p = new Asm().li(t0, DATA + 0x100).li(a0, 0x1122_3344).li(a1, 0x1234_56aa).li(a2, 0x7777_bbcc);
    p.emit(I.sw(a0, t0, 0), I.sb(a1, t0, 1), I.sh(a2, t0, 2), I.sw(a0, t0, 4), I.sb(a1, t0, 4), I.sh(a2, t0, 6));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(hex(shared.word(DATA + 0x100)), '0xbbccaa44');
    equal(hex(shared.word(DATA + 0x104)), '0xbbcc33aa');
    deepEqual(shared.dirtyPages(), [1]);
  });

  it('misaligned loads and stores work, within a page and across a page boundary', () => {
    const p = new Asm().li(t0, RAM_BASE + 0x2ffd).li(a0, 0x8899_aabb).li(a1, 0xffff_8001);
    p.emit(I.sw(a0, t0, 0)); // bytes 0x2ffd..0x3000: pages 2 and 3
    p.emit(I.lw(a2, t0, 0), I.lh(a3, t0, 2), I.lhu(t1, t0, 2), I.sh(a1, t0, 0x10), I.lh(t2, t0, 0x10));
    p.emit(I.lhu(sp, t0, 0x10), I.lw(ra, t0, 1));
    halt(p);
    shared.load(p).runToHalt(p);
    const b = shared.u8;
    deepEqual(Array.from(b.subarray(0x2ffd, 0x3001)), [0xbb, 0xaa, 0x99, 0x88], 'stored bytes');
    equal(hex(shared.reg(a2)), '0x8899aabb', 'lw across the page boundary');
    equal(hex(shared.reg(a3)), '0xffff8899', 'lh across the boundary sign-extends');
    equal(hex(shared.reg(t1)), '0x8899', 'lhu across the boundary');
    equal(hex(shared.reg(t2)), '0xffff8001', 'misaligned lh');
    equal(hex(shared.reg(sp)), '0x8001', 'misaligned lhu');
    equal(hex(shared.reg(ra)), hex(0x8899aabb >>> 8), 'lw at +1 (next byte zero)');
    deepEqual(shared.dirtyPages(), [2, 3], 'a straddling store marks both pages');
  });

  it('accesses up to the last byte of RAM work; past the end they fault', () => {
    const rig = new Rig();
    const end = RAM_BASE + rig.ramSize;
    const p = new Asm().la(t0, 'trap').emit(I.csrrw(0, 0x305, t0)).li(t0, end);
    p.emit(I.lw(a0, t0, -4), I.lb(a1, t0, -1), I.lhu(a2, t0, -2), I.sw(a0, t0, -4));
    p.label('bad').emit(I.lw(a3, t0, -2));
    p.emit(I.nop());
    p.label('trap').emit(I.jal(0, 0));
    rig.load(p);
    rig.u32[rig.ramSize / 4 - 1] = 0x8123_4567;
    rig.runTo(p.addressOf('trap'));
    equal(hex(rig.reg(a0)), '0x81234567');
    equal(hex(rig.reg(a1)), '0xffffff81');
    equal(hex(rig.reg(a2)), '0x8123');
    equal(rig.reg(a3), 0, 'the faulting load did not write rd');
    equal(rig.csr(0x342), 5, 'load access fault');
    equal(hex(rig.csr(0x343)), hex(end - 2), 'mtval = address');
    equal(hex(rig.csr(0x341)), hex(p.addressOf('bad')), 'mepc = the load');

    // A store running past the end faults without writing anything.
    const q = new Asm().la(t0, 'trap').emit(I.csrrw(0, 0x305, t0)).li(t0, end).li(a0, -1);
    q.label('bad').emit(I.sw(a0, t0, -1), I.nop()).label('trap').emit(I.jal(0, 0));
    rig.load(q);
    rig.u32[rig.ramSize / 4 - 1] = 0;
    rig.runTo(q.addressOf('trap'));
    equal(rig.csr(0x342), 7, 'store access fault');
    equal(hex(rig.csr(0x343)), hex(end - 1));
    equal(rig.u32[rig.ramSize / 4 - 1], 0, 'no partial write');
    deepEqual(rig.dirtyPages(), []);
  });

  it('device loads and stores go to the bus with address, size and value', () => {
    const rig = new Rig();
    rig.devRegs[1] = 0x8001_8081;
    const p = new Asm().li(t0, DEV_BASE).li(a0, 0x8000_00aa);
    p.emit(I.lw(a1, t0, 4), I.lh(a2, t0, 4), I.lhu(a3, t0, 4), I.lb(t1, t0, 4), I.lbu(t2, t0, 4));
    p.emit(I.sb(a0, t0, 8), I.sw(a0, t0, 12), I.sh(a0, t0, 0x11));
    halt(p);
    rig.load(p).runToHalt(p);
    equal(hex(rig.reg(a1)), '0x80018081');
    equal(hex(rig.reg(a2)), '0xffff8081');
    equal(hex(rig.reg(a3)), '0x8081');
    equal(hex(rig.reg(t1)), '0xffffff81');
    equal(hex(rig.reg(t2)), '0x81');
    const stores = rig.accesses.filter((a) => a.kind === 'store');
    deepEqual(stores, [
      { kind: 'store', addr: DEV_BASE + 8, size: 1, value: 0xaa },
      { kind: 'store', addr: DEV_BASE + 12, size: 4, value: 0x8000_00aa },
      { kind: 'store', addr: DEV_BASE + 0x11, size: 2, value: 0xaa },
    ]);
    deepEqual(rig.dirtyPages(), [], 'device stores are not RAM writes');
  });

  it('loads and stores nobody answers are access faults with mtval = address', () => {
    const cases: [string, number, number, number][] = [
      ['lw at 0', I.lw(a0, t0, 0), 0, 5],
      ['lbu below RAM', I.lbu(a0, t0, 0), 0x7fff_fff0, 5],
      ['lw above RAM', I.lw(a0, t0, 0), RAM_BASE + 0x10_0000, 5],
      ['sw at 0x20', I.sw(a0, t0, 0), 0x20, 7],
      ['sb above RAM', I.sb(a0, t0, 0), 0xffff_fffc, 7],
      ['sw straddling into RAM', I.sw(a0, t0, 0), RAM_BASE - 2, 7],
    ];
    for (const [what, insn, addr, cause] of cases) {
      const p = new Asm().la(t1, 'trap').emit(I.csrrw(0, 0x305, t1)).li(t0, addr).label('bad').emit(insn, I.nop());
      p.label('trap').emit(I.jal(0, 0));
      shared.load(p).runTo(p.addressOf('trap'));
      equal(shared.csr(0x342), cause, `${what}: mcause`);
      equal(hex(shared.csr(0x343)), hex(addr), `${what}: mtval`);
      equal(hex(shared.csr(0x341)), hex(p.addressOf('bad')), `${what}: mepc`);
    }
  });
});

describe('cpu: jumps and branches', () => {
  it('jal links pc + 4 and jumps; jalr clears bit 0 of the target', () => {
    const p = new Asm();
    p.jal(ra, 'f').label('after').emit(I.addi(a0, 0, 1)); // skipped by f returning past it
    p.label('f').la(t0, 'g').emit(I.addi(t0, t0, 1), I.jalr(t1, t0, 0)).label('ret1');
    p.emit(I.addi(a1, 0, 99)); // skipped
    p.label('g').la(t2, 'h').emit(I.jalr(t2, t2, 0)).label('ret2'); // rd = rs1: target from the old value
    p.label('h').la(a3, 'halt').emit(I.jalr(0, a3, 0), I.addi(a2, 0, 99));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(hex(shared.reg(ra)), hex(p.addressOf('after')), 'jal rd');
    equal(shared.reg(a0), 0, 'jal skipped the next instruction');
    equal(hex(shared.reg(t1)), hex(p.addressOf('ret1')), 'jalr rd');
    equal(shared.reg(a1), 0);
    equal(hex(shared.reg(t2)), hex(p.addressOf('ret2')), 'jalr rd = rs1');
    equal(shared.reg(a2), 0);
  });

  it('jal reaches backwards; jalr adds its (negative) immediate', () => {
    const p = new Asm().jal(0, 'start');
    p.label('back').emit(I.addi(a0, 0, 5)).jal(0, 'next');
    p.label('start').jal(0, 'back');
    p.label('next').la(t0, 'target').emit(I.addi(t0, t0, 8), I.jalr(ra, t0, -8)).label('ret').emit(I.nop());
    p.label('target').emit(I.addi(a1, 0, 6));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 5);
    equal(shared.reg(a1), 6);
    equal(hex(shared.reg(ra)), hex(p.addressOf('ret')));
  });

  it('each branch, taken and not taken, with signed and unsigned comparisons', () => {
    const cases: ['beq' | 'bne' | 'blt' | 'bge' | 'bltu' | 'bgeu', number, number, boolean][] = [
      ['beq', 5, 5, true],
      ['beq', 5, 6, false],
      ['bne', 5, 6, true],
      ['bne', 5, 5, false],
      ['blt', -1, 1, true],
      ['blt', 1, -1, false],
      ['blt', 5, 5, false],
      ['bge', 1, -1, true],
      ['bge', -1, 1, false],
      ['bge', 5, 5, true],
      ['bltu', 1, -1, true],
      ['bltu', -1, 1, false],
      ['bltu', 5, 5, false],
      ['bgeu', -1, 1, true],
      ['bgeu', 1, -1, false],
      ['bgeu', 5, 5, true],
    ];
    for (const [kind, a, b, taken] of cases) {
      const p = new Asm().li(a1, a).li(a2, b).emit(I.addi(a0, 0, 0)).branch(kind, a1, a2, 'yes');
      p.emit(I.addi(a0, 0, 1)).jal(0, 'halt').label('yes').emit(I.addi(a0, 0, 2));
      halt(p);
      shared.load(p).runToHalt(p);
      equal(shared.reg(a0), taken ? 2 : 1, `${kind} ${a}, ${b}`);
    }
  });

  it('a backward-branch loop sums 1..100', () => {
    const p = new Asm().emit(I.addi(a0, 0, 0), I.addi(t0, 0, 1), I.addi(t1, 0, 101)).label('loop');
    p.emit(I.add(a0, a0, t0), I.addi(t0, t0, 1)).branch('blt', t0, t1, 'loop');
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 5050);
  });

  it('a jump or taken branch to a target not 4-byte aligned traps at the jump', () => {
    const cases: [string, (p: Asm) => void, number][] = [
      ['jal +6', (p) => p.emit(I.jal(ra, 6)), 6],
      ['jal -2', (p) => p.emit(I.jal(ra, -2)), -2],
      ['beq taken +6', (p) => p.emit(I.beq(0, 0, 6)), 6],
      ['bgeu taken -10', (p) => p.emit(I.bgeu(0, 0, -10)), -10],
      ['jalr +2', (p) => p.emit(I.jalr(ra, t2, 2)), 2],
      ['jalr +3 (bit 0 cleared, bit 1 set)', (p) => p.emit(I.jalr(ra, t2, 3)), 2],
    ];
    for (const [what, emit, delta] of cases) {
      const p = new Asm().la(t0, 'trap').emit(I.csrrw(0, 0x305, t0), I.addi(ra, 0, 7)).la(t2, 'bad').label('bad');
      emit(p);
      p.emit(I.nop()).label('trap').emit(I.jal(0, 0));
      shared.load(p).runTo(p.addressOf('trap'));
      const bad = p.addressOf('bad');
      equal(shared.csr(0x342), 0, `${what}: instruction address misaligned`);
      equal(hex(shared.csr(0x343)), hex(bad + delta), `${what}: mtval = target`);
      equal(hex(shared.csr(0x341)), hex(bad), `${what}: mepc = the jump`);
      equal(shared.reg(ra), 7, `${what}: rd not written`);
    }
  });

  it('a not-taken branch with a misaligned offset does not trap', () => {
    const p = new Asm().emit(I.bne(0, 0, 6), I.addi(a0, 0, 1));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 1);
  });
});

describe('cpu: fence.i and the decode cache', () => {
  it('fence.i makes code written by the guest visible', () => {
    const p = new Asm().emit(I.addi(a0, 0, 0)).la(t0, 'patch').li(t1, I.addi(a0, a0, 100));
    p.jal(ra, 'patch'); // runs the original: a0 += 1
    p.emit(I.sw(t1, t0, 0), I.fence_i());
    p.jal(ra, 'patch'); // runs the patched instruction: a0 += 100
    p.jal(0, 'halt');
    p.label('patch').emit(I.addi(a0, a0, 1), I.jalr(0, ra, 0));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 101);
  });

  it('flushDecodeCache() picks up code rewritten from outside', () => {
    const p = new Asm().emit(I.addi(a0, 0, 1));
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 1);
    shared.u32[0] = I.addi(a0, 0, 2);
    shared.cpu.flushDecodeCache();
    shared.cpu.pc = RAM_BASE;
    shared.runToHalt(p);
    equal(shared.reg(a0), 2);
  });

  it('fence is a no-op', () => {
    const p = new Asm().emit(I.fence(), I.addi(a0, 0, 3), I.fence());
    halt(p);
    shared.load(p).runToHalt(p);
    equal(shared.reg(a0), 3);
  });
});

describe('cpu: run budget', () => {
  it('runs exactly the budget and counts it', () => {
    const p = halt(new Asm());
    shared.load(p);
    equal(shared.run(1000), StopReason.BUDGET);
    equal(shared.cpu.lastRunInstructions, 1000);
    equal(shared.cpu.instructionsExecuted, 1000);
    equal(shared.run(0), StopReason.BUDGET);
    equal(shared.cpu.lastRunInstructions, 0);
    equal(shared.run(1), StopReason.BUDGET);
    equal(shared.csr(0xb02), 1001, 'minstret');
    equal(shared.csr(0xb00), 1001, 'mcycle');
    ok(shared.cpu.pc === p.addressOf('halt'));
  });
});
