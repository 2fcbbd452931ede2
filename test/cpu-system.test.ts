// The CPU's machine-mode side: traps, CSRs, interrupts and WFI, panics, tohost, the dirty log,
// and saving/restoring through the device-state buffer (what migration carries).

import { StopReason } from '../src/guest/bus.js';
import { Cpu, MIP_MSIP, MIP_MTIP, type PageGate } from '../src/guest/cpu/cpu.js';
import { Csr } from '../src/guest/cpu/csr.js';
import { DeviceName } from '../src/guest/device-state.js';
import { RAM_BASE } from '../src/guest/memory-map.js';
import { Asm, I, R } from './fixtures/cpu-asm.js';
import { DEV_BASE, Rig, halt } from './fixtures/cpu-rig.js';
import { deepEqual, equal, match, ok } from './helpers/assert.js';

const { a0, a1, a2, a3, t0, t1, t2, s0, s1, gp, a7, t5, t6, ra } = R;
const hex = (v: number) => '0x' + (v >>> 0).toString(16);

const MSTATUS_MIE = 1 << 3;
const MSTATUS_MPIE = 1 << 7;
const MSTATUS_MPP = 3 << 11;

/** A program with `trap:` (a jump-to-self) installed as the trap handler, then the body. */
function withTrapStop(body: (p: Asm) => void): Asm {
  const p = new Asm().la(t6, 'trap').emit(I.csrrw(0, Csr.MTVEC, t6));
  body(p);
  p.emit(I.nop());
  p.label('trap').emit(I.jal(0, 0));
  return halt(p);
}

describe('cpu: exceptions', () => {
  it('ecall: mcause 11, mepc = the ecall, mtval 0, MIE saved into MPIE', () => {
    const rig = new Rig();
    const p = withTrapStop((p) => p.emit(I.csrrsi(0, Csr.MSTATUS, MSTATUS_MIE)).label('bad').emit(I.ecall()));
    rig.load(p).runTo(p.addressOf('trap'));
    equal(rig.csr(Csr.MCAUSE), 11);
    equal(hex(rig.csr(Csr.MEPC)), hex(p.addressOf('bad')));
    equal(rig.csr(Csr.MTVAL), 0);
    equal(hex(rig.csr(Csr.MSTATUS)), hex(MSTATUS_MPIE | MSTATUS_MPP), 'MIE cleared, MPIE = old MIE, MPP = M');
  });

  it('ebreak: mcause 3, mtval = pc', () => {
    const rig = new Rig();
    const p = withTrapStop((p) => p.label('bad').emit(I.ebreak()));
    rig.load(p).runTo(p.addressOf('trap'));
    equal(rig.csr(Csr.MCAUSE), 3);
    equal(hex(rig.csr(Csr.MTVAL)), hex(p.addressOf('bad')));
    equal(hex(rig.csr(Csr.MEPC)), hex(p.addressOf('bad')));
    equal(hex(rig.csr(Csr.MSTATUS)), hex(MSTATUS_MPP), 'MPIE = old MIE = 0');
  });

  it('illegal instructions: mcause 2, mtval = the instruction bits', () => {
    const rig = new Rig();
    const words = [
      0x0000_ffff,
      0x0000_0000,
      0xffff_ffff,
      I.add(a0, a1, a2) | (2 << 25),
      I.slli(a0, a0, 1) | (1 << 25),
      0x1020_0073, // sret
      0x0000_4501, // c.li (no C extension)
      I.csrrw(a0, 0x180, a1), // satp
    ];
    for (const word of words) {
      const p = withTrapStop((p) => p.label('bad').emit(word >>> 0));
      rig.load(p).runTo(p.addressOf('trap'));
      equal(rig.csr(Csr.MCAUSE), 2, `${hex(word)}: mcause`);
      equal(hex(rig.csr(Csr.MTVAL)), hex(word), `${hex(word)}: mtval`);
      equal(hex(rig.csr(Csr.MEPC)), hex(p.addressOf('bad')), `${hex(word)}: mepc`);
    }
  });

  it('a handler can skip the faulting instruction and mret back', () => {
    const rig = new Rig();
    const p = new Asm().la(t0, 'handler').emit(I.csrrw(0, Csr.MTVEC, t0), I.addi(a0, 0, 0));
    p.emit(I.ecall(), I.ecall(), 0xffff_ffff, I.ecall(), I.addi(a1, 0, 42)).jal(0, 'halt');
    p.label('handler').emit(I.addi(a0, a0, 1), I.csrrs(t1, Csr.MEPC, 0), I.addi(t1, t1, 4), I.csrrw(0, Csr.MEPC, t1));
    p.emit(I.mret());
    halt(p);
    rig.load(p).runToHalt(p);
    equal(rig.reg(a0), 4, 'four traps handled');
    equal(rig.reg(a1), 42, 'execution continued after the last one');
    equal(rig.csr(Csr.MCAUSE), 11);
  });

  it('mret restores MIE from MPIE, sets MPIE, keeps MPP = M', () => {
    const rig = new Rig();
    const p = new Asm().la(t0, 'first').emit(I.csrrw(0, Csr.MEPC, t0), I.csrrwi(0, Csr.MSTATUS, 0));
    p.li(t1, MSTATUS_MPIE).emit(I.csrrs(0, Csr.MSTATUS, t1), I.mret(), I.addi(a0, 0, 99));
    p.label('first').emit(I.csrrs(a1, Csr.MSTATUS, 0)); // MPIE was 1
    p.la(t0, 'second').emit(I.csrrw(0, Csr.MEPC, t0), I.csrrwi(0, Csr.MSTATUS, MSTATUS_MIE), I.mret());
    p.emit(I.addi(a0, 0, 98));
    p.label('second').emit(I.csrrs(a2, Csr.MSTATUS, 0)); // MPIE was 0
    halt(p);
    rig.load(p).runToHalt(p);
    equal(rig.reg(a0), 0, 'mret jumped to mepc');
    equal(hex(rig.reg(a1)), hex(MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP), 'MPIE = 1: MIE on');
    equal(hex(rig.reg(a2)), hex(MSTATUS_MPIE | MSTATUS_MPP), 'MPIE = 0: MIE off, MPIE set');
  });

  it('mepc and mtvec drop the bits IALIGN = 32 cannot use', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, RAM_BASE + 0x103).emit(I.csrrw(0, Csr.MEPC, t0), I.csrrw(0, Csr.MTVEC, t0));
    halt(p);
    rig.load(p).runToHalt(p);
    equal(hex(rig.csr(Csr.MEPC)), hex(RAM_BASE + 0x100));
    equal(hex(rig.csr(Csr.MTVEC)), hex(RAM_BASE + 0x101), 'base 4-aligned, mode 1 (vectored) kept');
  });
});

describe('cpu: CSR instructions', () => {
  it('csrrw, csrrs, csrrc and their immediate forms read the old value and write the new', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, 0xf0f0_f0f0).li(t1, 0x0000_ffff);
    p.emit(
      I.csrrw(a0, Csr.MSCRATCH, t0), // a0 = 0, mscratch = f0f0f0f0
      I.csrrs(a1, Csr.MSCRATCH, t1), // a1 = f0f0f0f0, mscratch = f0f0ffff
      I.csrrc(a2, Csr.MSCRATCH, t0), // a2 = f0f0ffff, mscratch = 00000f0f
      I.csrrwi(a3, Csr.MSCRATCH, 0x1f), // a3 = 00000f0f, mscratch = 1f
      I.csrrsi(s0, Csr.MSCRATCH, 0x10), // uimm 0x10: no change (already set)
      I.csrrci(s1, Csr.MSCRATCH, 0x3), // s1 = 1f, mscratch = 1c
      I.csrrs(t2, Csr.MSCRATCH, 0), // read only
    );
    halt(p);
    rig.load(p).runToHalt(p);
    equal(rig.reg(a0), 0);
    equal(hex(rig.reg(a1)), '0xf0f0f0f0');
    equal(hex(rig.reg(a2)), '0xf0f0ffff');
    equal(hex(rig.reg(a3)), '0xf0f');
    equal(hex(rig.reg(s0)), '0x1f');
    equal(hex(rig.reg(s1)), '0x1f');
    equal(hex(rig.reg(t2)), '0x1c');
    equal(hex(rig.csr(Csr.MSCRATCH)), '0x1c');
  });

  it('read-only CSRs can be read with rs1 = x0 / uimm = 0, and any write is illegal', () => {
    const rig = new Rig();
    const legal = new Asm().emit(
      I.csrrs(a0, Csr.MHARTID, 0),
      I.csrrc(a1, Csr.MVENDORID, 0),
      I.csrrsi(a2, Csr.MARCHID, 0),
      I.csrrci(a3, Csr.MIMPID, 0),
      I.csrrs(t0, Csr.MISA, 0),
    );
    halt(legal);
    rig.load(legal).runToHalt(legal);
    equal(rig.reg(a0), 0, 'mhartid');
    equal(hex(rig.reg(t0)), '0x40001100', 'misa: RV32IM');
    for (const insn of [
      I.csrrw(0, Csr.MHARTID, a0), // csrrw writes even with rd = x0 and rs1 = x0
      I.csrrw(0, Csr.MHARTID, 0),
      I.csrrs(a0, Csr.MVENDORID, t0),
      I.csrrsi(a0, Csr.MARCHID, 1),
      I.csrrwi(a0, Csr.MIMPID, 0),
      I.csrrc(a0, Csr.CYCLE, t0),
      I.csrrw(a0, Csr.INSTRET, t0),
    ]) {
      const p = withTrapStop((p) => p.li(t0, 1).label('bad').emit(insn));
      rig.load(p).runTo(p.addressOf('trap'));
      equal(rig.csr(Csr.MCAUSE), 2, `${hex(insn)} traps`);
      equal(hex(rig.csr(Csr.MTVAL)), hex(insn), `${hex(insn)}: mtval`);
    }
  });

  it('CSRs outside machine-mode RV32IM are illegal, even to read', () => {
    const rig = new Rig();
    // satp, pmpcfg0, pmpaddr0, medeleg, mideleg, sstatus, mcounteren, fcsr, mnstatus, a custom CSR, mcountinhibit
    for (const csr of [0x180, 0x3a0, 0x3b0, 0x302, 0x303, 0x100, 0x306, 0x003, 0x744, 0x7c0, 0x320]) {
      const insn = I.csrrs(a0, csr, 0);
      const p = withTrapStop((p) => p.emit(I.addi(a0, 0, 5)).label('bad').emit(insn));
      rig.load(p).runTo(p.addressOf('trap'));
      equal(rig.csr(Csr.MCAUSE), 2, `csr ${hex(csr)}`);
      equal(hex(rig.csr(Csr.MTVAL)), hex(insn));
      equal(rig.reg(a0), 5, 'rd not written');
      equal(rig.cpu.readCsr(csr), undefined);
    }
  });

  it('WARL fields: mstatus, mie, mip, misa keep only what exists', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, -1).emit(
      I.csrrw(0, Csr.MSTATUS, t0),
      I.csrrw(0, Csr.MIE, t0),
      I.csrrw(0, Csr.MIP, t0),
      I.csrrw(0, Csr.MISA, 0),
      I.csrrw(0, Csr.MSTATUSH, t0),
    );
    halt(p);
    rig.load(p).runToHalt(p);
    equal(hex(rig.csr(Csr.MSTATUS)), hex(MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP));
    equal(hex(rig.csr(Csr.MIE)), '0x888', 'MSIE, MTIE, MEIE');
    equal(rig.csr(Csr.MIP), 0, 'mip bits are driven by devices, not csr writes');
    equal(hex(rig.csr(Csr.MISA)), '0x40001100');
    equal(rig.csr(Csr.MSTATUSH), 0);
  });

  it('mcycle/minstret count instructions; cycle/instret mirror them; writes take effect', () => {
    const rig = new Rig();
    const p = new Asm().emit(
      I.csrrs(a0, Csr.MINSTRET, 0), // 0 instructions before it
      I.nop(),
      I.nop(),
      I.csrrs(a1, Csr.INSTRET, 0), // 3 before it
      I.csrrs(a2, Csr.CYCLE, 0), // 4
      I.csrrs(a3, Csr.MCYCLEH, 0),
      I.addi(t0, 0, 100),
      I.csrrw(0, Csr.MCYCLE, t0),
      I.csrrs(t1, Csr.MCYCLE, 0), // reads what was written
      I.csrrw(0, Csr.MINSTRETH, t0),
      I.csrrs(t2, Csr.INSTRETH, 0),
      I.csrrs(s0, Csr.INSTRET, 0),
    );
    halt(p);
    rig.load(p).runToHalt(p);
    equal(rig.reg(a0), 0);
    equal(rig.reg(a1), 3);
    equal(rig.reg(a2), 4);
    equal(rig.reg(a3), 0);
    equal(rig.reg(t1), 100, 'mcycle after csrw mcycle, 100');
    equal(rig.reg(t2), 100, 'instreth after csrw minstreth, 100');
    equal(rig.reg(s0), 11, 'the low half kept counting');
  });

  it('time/timeh read the readTime() callback; without one they are illegal', () => {
    const rig = new Rig();
    rig.time = 0x1_2345_6789;
    const p = new Asm().emit(I.csrrs(a0, Csr.TIME, 0), I.csrrs(a1, Csr.TIMEH, 0));
    halt(p);
    rig.load(p).runToHalt(p);
    equal(hex(rig.reg(a0)), '0x23456789');
    equal(rig.reg(a1), 1);

    const none = new Rig(64 * 1024, { readTime: false });
    const q = withTrapStop((q) => q.emit(I.csrrs(a0, Csr.TIME, 0)));
    none.load(q).runTo(q.addressOf('trap'));
    equal(none.csr(Csr.MCAUSE), 2);
  });
});

describe('cpu: interrupts and wfi', () => {
  /** Handler at `isr` counts interrupts in s0, records mcause in s1 and mepc in gp, clears MTIE. */
  function irqProgram(vectored = false): Asm {
    const p = new Asm().la(t0, 'isr');
    if (vectored) p.emit(I.ori(t0, t0, 1));
    p.emit(I.csrrw(0, Csr.MTVEC, t0)).li(t0, MIP_MTIP | MIP_MSIP).emit(I.csrrw(0, Csr.MIE, t0));
    p.emit(I.csrrsi(0, Csr.MSTATUS, MSTATUS_MIE)).label('spin').emit(I.addi(a0, a0, 1)).jal(0, 'spin');
    p.org(RAM_BASE + 0x400).label('isr');
    if (vectored) p.jal(0, 'bad').org(RAM_BASE + 0x400 + 4 * 3).jal(0, 'bad').org(RAM_BASE + 0x400 + 4 * 7).jal(0, 'real');
    p.label('real').emit(I.addi(s0, s0, 1), I.csrrs(s1, Csr.MCAUSE, 0), I.csrrs(gp, Csr.MEPC, 0));
    p.li(t1, MIP_MTIP).emit(I.csrrc(0, Csr.MIE, t1), I.mret());
    p.label('bad').emit(I.addi(s0, s0, 100), I.mret());
    return halt(p);
  }

  it('a pending, enabled timer interrupt is taken at the start of run()', () => {
    const rig = new Rig();
    const p = irqProgram();
    rig.load(p);
    equal(rig.run(100), StopReason.BUDGET);
    equal(rig.reg(s0), 0, 'nothing pending yet');
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    equal(rig.run(100), StopReason.BUDGET);
    equal(rig.reg(s0), 1, 'taken once (the handler masks MTIE)');
    equal(hex(rig.reg(s1)), '0x80000007', 'mcause: machine timer interrupt');
    ok(rig.reg(gp) === p.addressOf('spin') || rig.reg(gp) === p.addressOf('spin') + 4, 'mepc is in the loop');
    equal(hex(rig.csr(Csr.MSTATUS) & (MSTATUS_MIE | MSTATUS_MPIE)), hex(MSTATUS_MIE | MSTATUS_MPIE), 'mret re-enabled');
    rig.cpu.setInterruptPending(MIP_MTIP, false);
    equal(rig.csr(Csr.MIP), 0);
  });

  it('vectored mode sends interrupts to base + 4 * cause', () => {
    const rig = new Rig();
    const p = irqProgram(true);
    rig.load(p);
    rig.run(100);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    rig.run(100);
    equal(rig.reg(s0), 1);
    equal(hex(rig.reg(s1)), '0x80000007');
  });

  it('a software interrupt goes before a timer interrupt', () => {
    const rig = new Rig();
    const p = irqProgram();
    rig.load(p);
    rig.run(100);
    rig.cpu.setInterruptPending(MIP_MTIP | MIP_MSIP, true);
    rig.run(3);
    equal(hex(rig.reg(s1)), '0x80000003');
  });

  it('nothing is taken while mstatus.MIE is clear; enabling it takes the interrupt right away', () => {
    const rig = new Rig();
    const p = new Asm().la(t0, 'isr').emit(I.csrrw(0, Csr.MTVEC, t0)).li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0));
    p.emit(I.addi(a0, 0, 1), I.addi(a0, 0, 2)).label('enable').emit(I.csrrsi(0, Csr.MSTATUS, MSTATUS_MIE));
    p.label('next').emit(I.addi(a0, 0, 3)).jal(0, 'halt');
    p.label('isr').emit(I.csrrs(gp, Csr.MEPC, 0), I.csrrs(a1, Csr.MCAUSE, 0)).jal(0, 'halt');
    halt(p);
    rig.load(p);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    rig.runToHalt(p);
    equal(rig.reg(a0), 2, 'interrupt taken right after the csr write, before the next instruction');
    equal(hex(rig.reg(gp)), hex(p.addressOf('next')), 'mepc = the instruction after the csr write');
    equal(hex(rig.reg(a1)), '0x80000007');
  });

  it('mret that sets MIE from MPIE takes a pending interrupt at the return address', () => {
    const rig = new Rig();
    const p = new Asm().la(t0, 'isr').emit(I.csrrw(0, Csr.MTVEC, t0)).li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0));
    p.la(t0, 'back').emit(I.csrrw(0, Csr.MEPC, t0)).li(t0, MSTATUS_MPIE).emit(I.csrrs(0, Csr.MSTATUS, t0), I.mret());
    p.label('back').emit(I.addi(a0, 0, 1)).jal(0, 'halt');
    p.label('isr').emit(I.csrrs(gp, Csr.MEPC, 0)).jal(0, 'halt');
    halt(p);
    rig.load(p);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    rig.runToHalt(p);
    equal(rig.reg(a0), 0, 'the interrupt came before the instruction at mepc');
    equal(hex(rig.reg(gp)), hex(p.addressOf('back')));
  });

  it('wfi with nothing pending stops with WFI past the wfi; an enabled interrupt wakes it', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0), I.addi(a0, 0, 1)).label('wfi').emit(I.wfi());
    p.label('after').emit(I.addi(a0, 0, 2));
    halt(p);
    rig.load(p);
    equal(rig.run(100), StopReason.WFI);
    equal(hex(rig.cpu.pc), hex(p.addressOf('after')), 'pc advanced past wfi');
    ok(rig.cpu.waitingForInterrupt);
    equal(rig.reg(a0), 1);
    equal(rig.run(100), StopReason.WFI, 'still waiting: nothing executes');
    equal(rig.cpu.lastRunInstructions, 0);
    rig.cpu.setInterruptPending(MIP_MSIP, true);
    equal(rig.run(100), StopReason.WFI, 'MSIP pending but not enabled in mie: still asleep');
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    equal(rig.run(100), StopReason.BUDGET, 'woken (mstatus.MIE = 0: no trap, execution resumes)');
    ok(!rig.cpu.waitingForInterrupt);
    equal(rig.reg(a0), 2);
    equal(rig.csr(Csr.MCAUSE), 0, 'no trap taken');
  });

  it('wfi with an enabled interrupt already pending is a nop', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0), I.wfi(), I.addi(a0, 0, 1));
    halt(p);
    rig.load(p);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    rig.runToHalt(p);
    equal(rig.reg(a0), 1);
  });
});

describe('cpu: panics', () => {
  it('a trap with no handler (mtvec = 0) stops with PANIC and says what happened', () => {
    const rig = new Rig();
    const p = new Asm().org(RAM_BASE + 0x124).emit(0x0000_ffff);
    rig.load(p);
    equal(rig.run(1000), StopReason.PANIC);
    equal(rig.cpu.panicMessage, 'illegal instruction 0x0000ffff at pc 0x80000124 (mcause 2), no trap handler');
    equal(hex(rig.cpu.pc), '0x80000124', 'pc stays at the faulting instruction');
    equal(rig.run(1000), StopReason.PANIC, 'stays panicked');
    equal(rig.cpu.lastRunInstructions, 0);
    rig.cpu.reset(RAM_BASE);
    equal(rig.cpu.panicMessage, '');
    equal(rig.run(10), StopReason.BUDGET, 'reset clears the panic');
  });

  it('panic messages for faults, ecall and interrupts', () => {
    const rig = new Rig();
    const cases: [Asm, string][] = [
      [new Asm().emit(I.lw(a0, 0, 0x10)), 'load access fault at 0x00000010 at pc 0x80000000 (mcause 5), no trap handler'],
      [new Asm().emit(I.nop(), I.sw(a0, 0, 0x20)), 'store access fault at 0x00000020 at pc 0x80000004 (mcause 7), no trap handler'],
      [new Asm().emit(I.jalr(0, 0, 0x100)), 'instruction access fault at 0x00000100 at pc 0x00000100 (mcause 1), no trap handler'],
      [new Asm().emit(I.ecall()), 'environment call from M-mode at pc 0x80000000 (mcause 11), no trap handler'],
      [new Asm().emit(I.jal(0, 2)), 'instruction address misaligned (target 0x80000002) at pc 0x80000000 (mcause 0), no trap handler'],
    ];
    for (const [p, message] of cases) {
      rig.load(p);
      equal(rig.run(100), StopReason.PANIC);
      equal(rig.cpu.panicMessage, message);
    }
    const q = new Asm().li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0), I.csrrsi(0, Csr.MSTATUS, MSTATUS_MIE));
    rig.load(q);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    equal(rig.run(100), StopReason.PANIC);
    equal(rig.cpu.panicMessage, 'machine timer interrupt at pc 0x80000010 (mcause 0x80000007), no trap handler');
  });

  it('a handler outside RAM, or one that faults on its own first instruction, panics', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, 0x1000).emit(I.csrrw(0, Csr.MTVEC, t0), I.ecall());
    rig.load(p);
    equal(rig.run(100), StopReason.PANIC);
    match(rig.cpu.panicMessage, /^environment call from M-mode at pc 0x8000000c .*trap handler at 0x00001000 is outside RAM$/);

    const q = new Asm().la(t0, 'handler').emit(I.csrrw(0, Csr.MTVEC, t0), I.ecall()).label('handler').emit(0);
    rig.load(q);
    equal(rig.run(100), StopReason.PANIC);
    match(rig.cpu.panicMessage, /^illegal instruction 0x00000000 at pc 0x80000010 \(mcause 2\), raised by the trap handler itself$/);
  });
});

describe('cpu: tohost', () => {
  it('a store to tohost ends the run with its value as exit code; the store happens', () => {
    const rig = new Rig();
    const tohost = RAM_BASE + 0x3000;
    rig.cpu.setTohost(tohost);
    const p = new Asm().li(t0, tohost).li(a0, 1).emit(I.sw(a0, t0, 4), I.sw(a0, t0, 0)).label('after');
    halt(p);
    rig.load(p);
    equal(rig.run(100), StopReason.EXIT);
    equal(rig.cpu.exitCode, 1);
    equal(rig.word(tohost), 1);
    deepEqual(rig.dirtyPages(), [3]);
    equal(hex(rig.cpu.pc), hex(p.addressOf('after')));

    const fail = new Asm().li(t0, tohost).li(gp, (11 << 1) | 1).emit(I.sw(gp, t0, 0));
    halt(fail);
    rig.load(fail);
    equal(rig.run(100), StopReason.EXIT);
    equal(rig.cpu.exitCode >> 1, 11, 'failing test number');

    rig.cpu.setTohost(0);
    rig.load(fail);
    equal(rig.run(100), StopReason.BUDGET, 'with tohost off it is an ordinary store');
    equal(rig.word(tohost), 23);
  });

  it('runs a riscv-tests style program: p-env reset vector, trap vector, tohost', () => {
    for (const [check, expected] of [
      [7, 1],
      [8, (2 << 1) | 1],
    ] as const) {
      const rig = new Rig();
      const p = new Asm().jal(0, 'reset_vector');
      p.label('trap_vector').emit(I.csrrs(t5, Csr.MCAUSE, 0), I.addi(t6, 0, 11)).branch('beq', t5, t6, 'write_tohost');
      p.emit(I.ori(gp, gp, 1337));
      p.label('write_tohost').la(t5, 'tohost').emit(I.sw(gp, t5, 0)).jal(0, 'write_tohost');
      p.label('reset_vector').emit(I.csrrs(a0, Csr.MHARTID, 0)).label('hart').branch('bne', a0, 0, 'hart');
      // INIT_SATP / INIT_PMP / DELEGATE_NO_TRAPS: each write traps to the label just past it.
      p.la(t0, 'l1').emit(I.csrrw(0, Csr.MTVEC, t0), I.csrrwi(0, 0x180, 0)).label('l1');
      p.la(t0, 'l2').emit(I.csrrw(0, Csr.MTVEC, t0), I.addi(t0, 0, -1), I.csrrw(0, 0x3b0, t0), I.addi(t0, 0, 0x1f));
      p.emit(I.csrrw(0, 0x3a0, t0)).label('l2');
      p.emit(I.csrrwi(0, Csr.MIE, 0)).la(t0, 'l3').emit(I.csrrw(0, Csr.MTVEC, t0), I.csrrwi(0, 0x302, 0));
      p.emit(I.csrrwi(0, 0x303, 0)).label('l3');
      p.emit(I.addi(gp, 0, 0)).la(t0, 'trap_vector').emit(I.csrrw(0, Csr.MTVEC, t0));
      p.emit(I.addi(a0, 0, 1), I.slli(a0, a0, 31)).branch('blt', a0, 0, 'xlen_ok').jal(0, 'pass');
      p.label('xlen_ok').emit(I.csrrwi(0, Csr.MSTATUS, 0)).la(t0, 'test').emit(I.csrrw(0, Csr.MEPC, t0));
      p.emit(I.csrrs(a0, Csr.MHARTID, 0), I.mret());
      p.label('test').emit(I.addi(gp, 0, 2), I.addi(a1, 0, 3), I.addi(a2, 0, 4), I.add(a3, a1, a2), I.addi(t2, 0, check));
      p.branch('bne', a3, t2, 'fail');
      p.label('pass').emit(I.fence(), I.addi(gp, 0, 1), I.addi(a7, 0, 93), I.addi(a0, 0, 0), I.ecall());
      p.label('fail').emit(I.fence(), I.slli(gp, gp, 1), I.ori(gp, gp, 1), I.addi(a7, 0, 93), I.ecall());
      p.org(RAM_BASE + 0x1000).label('tohost').emit(0, 0);
      rig.load(p);
      rig.cpu.setTohost(p.addressOf('tohost'));
      equal(rig.run(10_000), StopReason.EXIT, rig.cpu.panicMessage);
      equal(rig.cpu.exitCode, expected);
    }
  });
});

describe('cpu: devices asking to stop', () => {
  it('requestStop() from a bus callback ends run() after that instruction', () => {
    const rig = new Rig();
    rig.onStore = (a) => rig.cpu.requestStop(a.value === 0x7777 ? StopReason.RESET : StopReason.EXIT, 42);
    const p = new Asm().li(t0, DEV_BASE).li(a0, 0x7777).emit(I.sw(a0, t0, 0)).label('after').emit(I.addi(a1, 0, 1));
    halt(p);
    rig.load(p);
    equal(rig.run(100), StopReason.RESET);
    equal(hex(rig.cpu.pc), hex(p.addressOf('after')));
    equal(rig.reg(a1), 0);
    equal(rig.run(100), StopReason.BUDGET, 'the request is not sticky');
    equal(rig.reg(a1), 1);
  });

  it('an interrupt raised by a device during run() is taken right after the access', () => {
    const rig = new Rig();
    rig.onStore = () => rig.cpu.setInterruptPending(MIP_MSIP, true);
    const p = new Asm().la(t0, 'isr').emit(I.csrrw(0, Csr.MTVEC, t0)).li(t0, MIP_MSIP).emit(I.csrrw(0, Csr.MIE, t0));
    p.emit(I.csrrsi(0, Csr.MSTATUS, MSTATUS_MIE)).li(t0, DEV_BASE).emit(I.sw(a0, t0, 0)).label('next');
    p.emit(I.addi(a1, 0, 1)).label('isr').emit(I.csrrs(gp, Csr.MEPC, 0));
    halt(p);
    rig.load(p).runToHalt(p);
    equal(rig.reg(a1), 0);
    equal(hex(rig.reg(gp)), hex(p.addressOf('next')));
  });
});

describe('cpu: device state', () => {
  it('saveState() writes every register and CSR; a new Cpu resumes from loadState()', () => {
    const build = () => {
      const p = new Asm().la(t0, 'isr').emit(I.csrrw(0, Csr.MTVEC, t0)).li(t1, 0x1234_5678).emit(I.csrrw(0, Csr.MSCRATCH, t1));
      p.emit(I.addi(a0, 0, 0), I.addi(a1, 0, 0)).li(a2, 300_000).label('loop');
      p.emit(I.addi(a0, a0, 1), I.add(a1, a1, a0), I.slli(a3, a1, 3), I.xor(a1, a1, a3)).branch('bne', a0, a2, 'loop');
      p.emit(I.ecall()).label('isr');
      return halt(p);
    };
    const p = build();
    const whole = new Rig();
    whole.load(p).runToHalt(p, 2_000_000);

    const first = new Rig();
    first.load(p);
    first.run(123_457);
    first.cpu.saveState();
    const st = first.state;
    equal(hex(st.get(DeviceName.CPU, 'pc')), hex(first.cpu.pc));
    equal(hex(st.get(DeviceName.CPU, 'regs', a2)), hex(300_000));
    equal(hex(st.get(DeviceName.CPU, 'mscratch')), '0x12345678');
    equal(st.get(DeviceName.CPU, 'minstret'), 123_457);
    equal(st.get(DeviceName.CPU, 'mcycle'), 123_457);

    // The destination: a fresh Cpu over a copy of RAM and the same state buffer.
    const ram = new SharedArrayBuffer(first.ramSize);
    new Uint8Array(ram).set(first.u8);
    const dirty = new Uint8Array(new SharedArrayBuffer(first.ramSize >>> 12));
    const cpu = new Cpu({ ram, dirtyLog: dirty, state: st, mmio: { load: () => undefined, store: () => false } });
    cpu.loadState();
    equal(cpu.readCsr(Csr.MINSTRET), 123_457, 'minstret carried over');
    equal(hex(cpu.pc), hex(first.cpu.pc));
    let guard = 0;
    while (cpu.pc !== p.addressOf('halt') && guard++ < 1000) equal(cpu.run(10_000), StopReason.BUDGET);
    for (let r = 1; r < 32; r++) equal(hex(cpu.getReg(r)), hex(whole.reg(r)), `x${r}`);
    for (const c of [Csr.MEPC, Csr.MCAUSE, Csr.MSTATUS, Csr.MSCRATCH, Csr.MTVEC]) {
      equal(hex(cpu.readCsr(c)!), hex(whole.csr(c)), `csr ${hex(c)}`);
    }
  });

  it('saves and restores a hart sleeping in wfi', () => {
    const rig = new Rig();
    const p = new Asm().li(t0, MIP_MTIP).emit(I.csrrw(0, Csr.MIE, t0), I.wfi(), I.addi(a0, 0, 1));
    halt(p);
    rig.load(p);
    equal(rig.run(100), StopReason.WFI);
    rig.cpu.saveState();
    equal(rig.state.get(DeviceName.CPU, 'wfi'), 1);
    rig.cpu.reset(RAM_BASE);
    rig.cpu.loadState();
    ok(rig.cpu.waitingForInterrupt);
    equal(rig.run(100), StopReason.WFI);
    rig.cpu.setInterruptPending(MIP_MTIP, true);
    rig.runToHalt(p);
    equal(rig.reg(a0), 1);
  });
});

describe('cpu: postcopy page gate', () => {
  it('waits for missing pages before fetching, loading or storing, then runs at full speed without a gate', () => {
    const rig = new Rig();
    const page = (n: number) => RAM_BASE + n * 4096;
    const p = new Asm().li(t0, page(5) + 8).emit(I.lw(a0, t0, 0)); // load from page 5
    p.li(t1, page(7) - 2).li(a1, 0x4433_2211).emit(I.sw(a1, t1, 0)); // store across pages 6 and 7
    p.emit(I.lw(a3, t0, 0)).li(t2, page(8)).emit(I.jalr(ra, t2, 0)); // code on page 8
    halt(p);
    rig.load(p);
    const waits: number[] = [];
    const gate: PageGate = {
      present: new Uint8Array(new SharedArrayBuffer(rig.ramSize >>> 12)),
      waitFor(n) {
        waits.push(n);
        // What the incoming side does: write the page, then publish it.
        if (n === 5) rig.u32[(5 * 4096 + 8) / 4] = 0xabcd_ef01;
        if (n === 6 || n === 7) rig.u8.fill(n === 6 ? 0xee : 0xdd, n * 4096, (n + 1) * 4096);
        if (n === 8) rig.u32.set(halt(new Asm(page(8)).emit(I.addi(a2, 0, 9), I.jalr(0, ra, 0))).assemble(), (8 * 4096) / 4);
        Atomics.store(this.present, n, 1);
      },
    };
    gate.present[0] = 1; // the program itself has arrived
    rig.cpu.setPageGate(gate);
    rig.runToHalt(p);
    deepEqual(waits, [5, 6, 7, 8], 'each missing page waited for once, in access order');
    equal(hex(rig.reg(a0)), '0xabcdef01', 'the load saw the arrived page');
    equal(hex(rig.reg(a3)), '0xabcdef01', 'no second wait for a present page');
    deepEqual(Array.from(rig.u8.subarray(page(7) - RAM_BASE - 3, page(7) - RAM_BASE + 3)), [0xee, 0x11, 0x22, 0x33, 0x44, 0xdd]);
    equal(rig.reg(a2), 9, 'code fetched from the arrived page');
    deepEqual(rig.dirtyPages(), [6, 7]);

    rig.cpu.setPageGate(null);
    rig.load(p);
    rig.runToHalt(p);
    equal(waits.length, 4, 'no gate, no waits');
  });
});
