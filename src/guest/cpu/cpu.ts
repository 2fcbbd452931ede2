// The guest's hart: an RV32IM + Zicsr + Zifencei interpreter, machine mode only, no MMU.
// It imports nothing from the DOM and runs in the vCPU worker.
//
// Public API (everything else is private):
//
//   new Cpu({ ram, ramSize?, dirtyLog, state, mmio, readTime? })
//       ram: guest RAM (SharedArrayBuffer) mapped at RAM_BASE; dirtyLog: one byte per 4 KiB page;
//       state: the device-state buffer (the 'cpu' section is loaded/saved by loadState/saveState);
//       mmio: the devices below RAM_BASE; readTime: mtime for the `time`/`timeh` CSRs (without it,
//       reading them is an illegal instruction).
//   run(budget)             executes up to `budget` instructions; returns a StopReason (bus.ts).
//   lastRunInstructions     instructions run() went through in its last call (retired ones plus
//                           ones that trapped); alias `instructionsExecuted`.
//   reset(entryPc)          power-on state: registers, CSRs and counters zero, pc = entryPc.
//   loadState()/saveState() copy the architectural state from/to the 'cpu' device section. While
//                           run() is not executing, the Cpu object is authoritative; call saveState()
//                           before anyone else reads the buffer. loadState() also drops the decode
//                           cache and any panic.
//   flushDecodeCache()      after RAM was rewritten behind the CPU's back (program load, incoming
//                           migration). Guest stores do not need it: the guest uses fence.i.
//   setTohost(addr)         a store to exactly this address ends the run with StopReason.EXIT and
//                           exitCode = the stored value (riscv-tests: 1 = pass, else failing test
//                           number << 1 | 1). 0 = none.
//   setInterruptPending(mask, pending)   drives mip lines: MIP_MTIP (timer), MIP_MSIP, MIP_MEIP.
//   setPageGate(gate | null) postcopy: touch RAM pages only once they have arrived (PageGate).
//   requestStop(reason, exitCode?)       from inside a bus callback: end run() after the current
//                           instruction with that StopReason (e.g. the test finisher's EXIT/RESET).
//   exitCode, panicMessage, waitingForInterrupt, pc, getReg/setReg, readCsr — for the worker,
//                           QMP-style inspection and tests.
//
// Speed: instructions are decoded once into a direct-mapped cache of (op id, registers, immediate)
// and executed by one switch over dense op ids with pc and the step counter in locals. Aligned RAM
// accesses go straight to typed arrays (little-endian host, as every browser is); misaligned and
// MMIO accesses take a slow path. Every RAM store writes its data, then Atomics.store()s its page's
// dirty byte, so a migration thread that Atomics.exchange()s the byte before copying the page
// never misses a write.

import { StopReason, type MmioBus, type StopReasonValue } from '../bus.js';
import { DeviceName, fieldLayout, type DeviceState } from '../device-state.js';
import { PAGE_SHIFT, RAM_BASE } from '../memory-map.js';
import {
  Csr,
  csrIsReadOnly,
  MIE_WRITABLE,
  MIP_MEIP,
  MIP_MSIP,
  MISA_RV32IM,
  MSTATUS_MIE,
  MSTATUS_MPIE,
  MSTATUS_MPP,
  MSTATUS_WRITABLE,
} from './csr.js';
import { encodeCsr, Op, packInto, type OpValue } from './decode.js';
import { mulh, mulhsu, mulhu } from './muldiv.js';
import { Cause, hex32, INTERRUPT, IRQ_MEI, IRQ_MSI, IRQ_MTI, panicText } from './traps.js';

export { MIP_MEIP, MIP_MSIP, MIP_MTIP } from './csr.js';

export interface CpuOptions {
  /** Guest RAM, mapped at RAM_BASE. */
  ram: SharedArrayBuffer | ArrayBuffer;
  /** Bytes of RAM in use (a multiple of 4 KiB); defaults to ram.byteLength. */
  ramSize?: number;
  /** One byte per 4 KiB page of RAM, set to 1 (atomically, after the data) by every store. */
  dirtyLog: Uint8Array;
  /** Where loadState()/saveState() find the 'cpu' section. */
  state: DeviceState;
  /** Devices below RAM_BASE. */
  mmio: MmioBus;
  /** mtime (ticks) for the `time` CSR; omit to make `time`/`timeh` illegal. */
  readTime?: () => number;
  /** Decoded-instruction cache entries (a power of two); default 65536 (256 KiB of code). */
  decodeCacheEntries?: number;
}

/**
 * Postcopy's page gate: while set, the CPU touches a RAM page (fetch, load or store) only once its
 * `present` byte is nonzero (read with Atomics.load, so the page data written before the byte was
 * set is visible), and otherwise calls waitFor(page), which must return only when it is present
 * (queue the page request, then Atomics.wait). Costs nothing when no gate is set.
 */
export interface PageGate {
  /** One byte per RAM page; nonzero once the page's contents are in RAM. */
  readonly present: Uint8Array;
  waitFor(page: number): void;
}

/** Internal exec() result: not a StopReason; run() must look at interrupts and stop requests. */
const RECHECK = 5;
/** Decode-cache tag of an empty slot: odd, so it never equals a (4-aligned) pc in exec(). */
const EMPTY_TAG = 1;

const CPU = DeviceName.CPU;
const REGS_OFFSET = fieldLayout(CPU, 'regs').offset;
const PLAIN_FIELDS = ['mstatus', 'mie', 'mip', 'mtvec', 'mscratch', 'mepc', 'mcause', 'mtval'] as const;

export class Cpu {
  /** Exit code stored to tohost (or given to requestStop) when run() returned EXIT. */
  exitCode = 0;
  /** Why run() returned PANIC; empty otherwise. */
  panicMessage = '';
  /** Instructions run() went through in its last call (retired plus trapped). */
  lastRunInstructions = 0;

  // Register file: x0..x31 plus a sink slot (X_SINK) that instructions with rd = x0 write into.
  private readonly x = new Int32Array(33);
  private pcReg = RAM_BASE | 0;
  // CSRs, held as int32 bits.
  private mstatus = MSTATUS_MPP;
  private mie = 0;
  private mip = 0;
  private mtvec = 0;
  private mscratch = 0;
  private mepc = 0;
  private mcause = 0;
  private mtval = 0;
  /** Counter values at the start of the current exec() (doubles: exact to 2^53). */
  private cycles = 0;
  private instret = 0;
  private wfi = false;
  private panicked = false;

  private readonly ramSize: number;
  private readonly m8: Uint8Array;
  private readonly s8: Int8Array;
  private readonly m16: Uint16Array;
  private readonly s16: Int16Array;
  private readonly m32: Int32Array;
  private readonly dirty: Uint8Array;
  private readonly mmio: MmioBus;
  private readonly state: DeviceState;
  private readonly readTime: (() => number) | undefined;
  private tohost = 0;
  private gate: PageGate | null = null;

  /** Decode cache: 4 words per slot — tag (the pc), packed op/registers, immediate, unused. */
  private readonly dc: Int32Array;
  /** Byte-address mask selecting a slot: pc & slotMask = slot * 4 (pc is 4-aligned). */
  private readonly slotMask: number;

  // Scratch between exec() and its helpers.
  private execSteps = 0;
  private execTraps = 0;
  /** Status a slow-path helper leaves for exec(): 0 = carry on, else an exec() result. */
  private slow = 0;
  private stopRequest = -1;

  constructor(opts: CpuOptions) {
    const size = opts.ramSize ?? opts.ram.byteLength;
    if (size % 4096 !== 0 || size > opts.ram.byteLength || size > 0x8000_0000) {
      throw new RangeError(`RAM size ${size} must be a multiple of 4 KiB, at most 2 GiB and fit the buffer`);
    }
    if (opts.dirtyLog.length < size >>> PAGE_SHIFT) throw new RangeError('dirty log has fewer bytes than RAM has pages');
    this.ramSize = size;
    this.m8 = new Uint8Array(opts.ram, 0, size);
    this.s8 = new Int8Array(opts.ram, 0, size);
    this.m16 = new Uint16Array(opts.ram, 0, size >>> 1);
    this.s16 = new Int16Array(opts.ram, 0, size >>> 1);
    this.m32 = new Int32Array(opts.ram, 0, size >>> 2);
    this.dirty = opts.dirtyLog;
    this.mmio = opts.mmio;
    this.state = opts.state;
    this.readTime = opts.readTime;
    const entries = opts.decodeCacheEntries ?? 1 << 16;
    if (entries < 1 || (entries & (entries - 1)) !== 0) throw new RangeError('decodeCacheEntries must be a power of two');
    this.slotMask = (entries - 1) << 2;
    this.dc = new Int32Array(entries * 4).fill(EMPTY_TAG);
  }

  // ---- control ---------------------------------------------------------------------------------

  /** Power-on reset: pc = entryPc, everything else zero (mstatus.MPP reads as machine mode). */
  reset(entryPc: number): void {
    this.x.fill(0);
    this.pcReg = entryPc | 0;
    this.mstatus = MSTATUS_MPP;
    this.mie = this.mip = this.mtvec = this.mscratch = this.mepc = this.mcause = this.mtval = 0;
    this.cycles = this.instret = 0;
    this.wfi = this.panicked = false;
    this.exitCode = 0;
    this.panicMessage = '';
    this.flushDecodeCache();
  }

  flushDecodeCache(): void {
    this.dc.fill(EMPTY_TAG);
  }

  setTohost(addr: number): void {
    this.tohost = addr | 0;
  }

  /** Postcopy: gate RAM accesses on pages having arrived (see PageGate); null to remove. */
  setPageGate(gate: PageGate | null): void {
    this.gate = gate;
  }

  /** Raises (pending = true) or lowers the given mip bits (MIP_MTIP, MIP_MSIP, MIP_MEIP). */
  setInterruptPending(mask: number, pending: boolean): void {
    const m = mask & MIE_WRITABLE;
    this.mip = pending ? this.mip | m : this.mip & ~m;
  }

  /** For device callbacks during run(): stop after the current instruction with this reason. */
  requestStop(reason: StopReasonValue, exitCode?: number): void {
    this.stopRequest = reason;
    if (exitCode !== undefined) this.exitCode = exitCode >>> 0;
  }

  /** True after WFI until an enabled interrupt (mip & mie) is pending. */
  get waitingForInterrupt(): boolean {
    return this.wfi;
  }

  get instructionsExecuted(): number {
    return this.lastRunInstructions;
  }

  get pc(): number {
    return this.pcReg >>> 0;
  }

  set pc(value: number) {
    this.pcReg = value | 0;
  }

  getReg(i: number): number {
    return this.x[i & 31]! >>> 0;
  }

  setReg(i: number, value: number): void {
    if ((i & 31) !== 0) this.x[i & 31] = value;
  }

  /** A CSR's current value (unsigned), or undefined if it does not exist. No side effects. */
  readCsr(csr: number): number | undefined {
    const v = this.csrRead(csr, 1);
    return v === undefined ? undefined : v >>> 0;
  }

  /** The guest's own minstret: instructions retired since its reset, carried in its CPU state. */
  get instructionsRetired(): number {
    return this.instret;
  }

  // ---- device state ----------------------------------------------------------------------------

  saveState(): void {
    const s = this.state;
    s.set(CPU, 'pc', this.pcReg >>> 0);
    for (let i = 0; i < 32; i++) s.view.setUint32(REGS_OFFSET + 4 * i, this.x[i]! >>> 0, true);
    for (const f of PLAIN_FIELDS) s.set(CPU, f, this[f] >>> 0);
    s.set(CPU, 'mcycle', this.cycles);
    s.set(CPU, 'minstret', this.instret);
    s.set(CPU, 'wfi', this.wfi ? 1 : 0);
  }

  loadState(): void {
    const s = this.state;
    this.pcReg = s.get(CPU, 'pc') | 0;
    for (let i = 0; i < 32; i++) this.x[i] = s.view.getInt32(REGS_OFFSET + 4 * i, true);
    this.x[0] = 0;
    for (const f of PLAIN_FIELDS) this[f] = s.get(CPU, f) | 0;
    // Keep the invariants the CSR write paths keep, whatever the buffer holds.
    this.mstatus = (this.mstatus & MSTATUS_WRITABLE) | MSTATUS_MPP;
    this.mie &= MIE_WRITABLE;
    this.mip &= MIE_WRITABLE;
    this.mtvec &= ~2;
    this.mepc &= ~3;
    this.cycles = s.get(CPU, 'mcycle');
    this.instret = s.get(CPU, 'minstret');
    this.wfi = s.get(CPU, 'wfi') !== 0;
    this.panicked = false;
    this.panicMessage = '';
    this.flushDecodeCache();
  }

  // ---- execution -------------------------------------------------------------------------------

  run(budget: number): StopReasonValue {
    this.lastRunInstructions = 0;
    this.stopRequest = -1;
    if (this.panicked) return StopReason.PANIC;
    if (this.wfi) {
      if ((this.mip & this.mie) === 0) return StopReason.WFI;
      this.wfi = false;
    }
    const limit = Math.max(0, Math.min(budget, 0x3fff_ffff)) | 0;
    let steps = 0;
    let result: StopReasonValue;
    for (;;) {
      if ((this.mstatus & MSTATUS_MIE) !== 0 && (this.mip & this.mie) !== 0) {
        this.pcReg = this.takeInterrupt(this.pcReg);
        if (this.panicked) {
          result = StopReason.PANIC;
          break;
        }
      }
      if (steps >= limit) {
        result = StopReason.BUDGET;
        break;
      }
      if ((this.pcReg & 3) !== 0) {
        // Only reset/loadState/the pc setter can get here: jumps check their targets.
        // A trapped fetch takes a step and a cycle but retires nothing.
        steps++;
        this.cycles++;
        this.pcReg = this.enterTrap(Cause.INSN_MISALIGNED, this.pcReg, this.pcReg);
        if (this.panicked) {
          result = StopReason.PANIC;
          break;
        }
        continue;
      }
      const st = this.exec(limit - steps);
      steps += this.execSteps;
      if (st !== RECHECK) {
        result = st as StopReasonValue;
        break;
      }
      if (this.stopRequest >= 0) {
        result = this.stopRequest as StopReasonValue;
        break;
      }
    }
    this.lastRunInstructions = steps;
    return result;
  }

  /**
   * The hot loop. Runs until `limit` steps, a stop, or something run() must look at (RECHECK:
   * a CSR write that may enable an interrupt, mret, an MMIO access). Case labels are Op ids
   * (decode.ts) written as literals so V8 builds a jump table.
   */
  private exec(limit: number): number {
    const x = this.x;
    const m8 = this.m8;
    const s8 = this.s8;
    const m16 = this.m16;
    const s16 = this.s16;
    const m32 = this.m32;
    const dirty = this.dirty;
    const dc = this.dc;
    const slotMask = this.slotMask;
    const ramSize = this.ramSize;
    // With a page gate (postcopy) every RAM access takes the slow path, which checks presence.
    const fastLimit = this.gate === null ? ramSize : 0;
    const tohost = this.tohost;
    let pc = this.pcReg;
    let n = 0;
    let st: number = StopReason.BUDGET;

    loop: while (n < limit) {
      const slot = pc & slotMask;
      if (dc[slot] !== pc) {
        // RAM offset: flipping bit 31 maps RAM_BASE.. to 0.. and everything below RAM negative.
        const off = pc ^ 0x80000000;
        if (off < 0 || off >= ramSize) {
          n++;
          pc = this.exception(Cause.INSN_ACCESS_FAULT, pc, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break;
          }
          continue;
        }
        if (this.gate !== null) this.awaitPages(off, 4);
        packInto(m32[off >> 2]!, dc, slot + 1);
        dc[slot] = pc;
      }
      const w = dc[slot + 1]!;
      const imm = dc[slot + 2]!;
      n++;

      switch (w & 0xff) {
        case 0: // ILLEGAL: imm holds the instruction bits
          pc = this.exception(Cause.ILLEGAL_INSN, imm, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break loop;
          }
          break;
        case 1: // LUI
          x[(w >>> 8) & 0xff] = imm;
          pc = (pc + 4) | 0;
          break;
        case 2: // AUIPC
          x[(w >>> 8) & 0xff] = (pc + imm) | 0;
          pc = (pc + 4) | 0;
          break;
        case 3: // JAL
          x[(w >>> 8) & 0xff] = (pc + 4) | 0;
          pc = (pc + imm) | 0;
          break;
        case 4: {
          // JALR: target computed before rd is written (rd may be rs1)
          const t = (x[(w >>> 16) & 0xff]! + imm) & -2;
          if ((t & 2) !== 0) {
            pc = this.exception(Cause.INSN_MISALIGNED, t, pc);
            if (this.panicked) {
              st = StopReason.PANIC;
              break loop;
            }
            break;
          }
          x[(w >>> 8) & 0xff] = (pc + 4) | 0;
          pc = t;
          break;
        }
        case 5: // BEQ
          pc = x[(w >>> 16) & 0xff] === x[w >>> 24] ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 6: // BNE
          pc = x[(w >>> 16) & 0xff] !== x[w >>> 24] ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 7: // BLT
          pc = x[(w >>> 16) & 0xff]! < x[w >>> 24]! ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 8: // BGE
          pc = x[(w >>> 16) & 0xff]! >= x[w >>> 24]! ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 9: // BLTU
          pc = x[(w >>> 16) & 0xff]! >>> 0 < x[w >>> 24]! >>> 0 ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 10: // BGEU
          pc = x[(w >>> 16) & 0xff]! >>> 0 >= x[w >>> 24]! >>> 0 ? (pc + imm) | 0 : (pc + 4) | 0;
          break;
        case 11: {
          // LB
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if (off >= 0 && off < fastLimit) {
            x[(w >>> 8) & 0xff] = s8[off]!;
            pc = (pc + 4) | 0;
            break;
          }
          pc = this.slowLoad(a, 1, true, (w >>> 8) & 0xff, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 12: {
          // LH
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if ((off & 1) === 0 && off >= 0 && off < fastLimit) {
            x[(w >>> 8) & 0xff] = s16[off >> 1]!;
            pc = (pc + 4) | 0;
            break;
          }
          pc = this.slowLoad(a, 2, true, (w >>> 8) & 0xff, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 13: {
          // LW
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if ((off & 3) === 0 && off >= 0 && off < fastLimit) {
            x[(w >>> 8) & 0xff] = m32[off >> 2]!;
            pc = (pc + 4) | 0;
            break;
          }
          pc = this.slowLoad(a, 4, true, (w >>> 8) & 0xff, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 14: {
          // LBU
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if (off >= 0 && off < fastLimit) {
            x[(w >>> 8) & 0xff] = m8[off]!;
            pc = (pc + 4) | 0;
            break;
          }
          pc = this.slowLoad(a, 1, false, (w >>> 8) & 0xff, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 15: {
          // LHU
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if ((off & 1) === 0 && off >= 0 && off < fastLimit) {
            x[(w >>> 8) & 0xff] = m16[off >> 1]!;
            pc = (pc + 4) | 0;
            break;
          }
          pc = this.slowLoad(a, 2, false, (w >>> 8) & 0xff, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 16: {
          // SB
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if (off >= 0 && off < fastLimit) {
            m8[off] = x[w >>> 24]!;
            Atomics.store(dirty, off >>> 12, 1);
            pc = (pc + 4) | 0;
            if (a === tohost) {
              this.exitCode = x[w >>> 24]! & 0xff;
              st = StopReason.EXIT;
              break loop;
            }
            break;
          }
          pc = this.slowStore(a, 1, x[w >>> 24]!, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 17: {
          // SH
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if ((off & 1) === 0 && off >= 0 && off < fastLimit) {
            m16[off >> 1] = x[w >>> 24]!;
            Atomics.store(dirty, off >>> 12, 1);
            pc = (pc + 4) | 0;
            if (a === tohost) {
              this.exitCode = x[w >>> 24]! & 0xffff;
              st = StopReason.EXIT;
              break loop;
            }
            break;
          }
          pc = this.slowStore(a, 2, x[w >>> 24]!, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 18: {
          // SW
          const a = (x[(w >>> 16) & 0xff]! + imm) | 0;
          const off = a ^ 0x80000000;
          if ((off & 3) === 0 && off >= 0 && off < fastLimit) {
            m32[off >> 2] = x[w >>> 24]!;
            Atomics.store(dirty, off >>> 12, 1);
            pc = (pc + 4) | 0;
            if (a === tohost) {
              this.exitCode = x[w >>> 24]! >>> 0;
              st = StopReason.EXIT;
              break loop;
            }
            break;
          }
          pc = this.slowStore(a, 4, x[w >>> 24]!, pc);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        }
        case 19: // ADDI
          x[(w >>> 8) & 0xff] = (x[(w >>> 16) & 0xff]! + imm) | 0;
          pc = (pc + 4) | 0;
          break;
        case 20: // SLTI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! < imm ? 1 : 0;
          pc = (pc + 4) | 0;
          break;
        case 21: // SLTIU: the sign-extended immediate compared as unsigned
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! >>> 0 < imm >>> 0 ? 1 : 0;
          pc = (pc + 4) | 0;
          break;
        case 22: // XORI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! ^ imm;
          pc = (pc + 4) | 0;
          break;
        case 23: // ORI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! | imm;
          pc = (pc + 4) | 0;
          break;
        case 24: // ANDI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! & imm;
          pc = (pc + 4) | 0;
          break;
        case 25: // SLLI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! << imm;
          pc = (pc + 4) | 0;
          break;
        case 26: // SRLI
          x[(w >>> 8) & 0xff] = (x[(w >>> 16) & 0xff]! >>> imm) | 0;
          pc = (pc + 4) | 0;
          break;
        case 27: // SRAI
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! >> imm;
          pc = (pc + 4) | 0;
          break;
        // Register-register ops. JS shifts use the low 5 bits of the count, as RV32 does.
        case 28: // ADD
          x[(w >>> 8) & 0xff] = (x[(w >>> 16) & 0xff]! + x[w >>> 24]!) | 0;
          pc = (pc + 4) | 0;
          break;
        case 29: // SUB
          x[(w >>> 8) & 0xff] = (x[(w >>> 16) & 0xff]! - x[w >>> 24]!) | 0;
          pc = (pc + 4) | 0;
          break;
        case 30: // SLL
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! << x[w >>> 24]!;
          pc = (pc + 4) | 0;
          break;
        case 31: // SLT
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! < x[w >>> 24]! ? 1 : 0;
          pc = (pc + 4) | 0;
          break;
        case 32: // SLTU
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! >>> 0 < x[w >>> 24]! >>> 0 ? 1 : 0;
          pc = (pc + 4) | 0;
          break;
        case 33: // XOR
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! ^ x[w >>> 24]!;
          pc = (pc + 4) | 0;
          break;
        case 34: // SRL
          x[(w >>> 8) & 0xff] = (x[(w >>> 16) & 0xff]! >>> x[w >>> 24]!) | 0;
          pc = (pc + 4) | 0;
          break;
        case 35: // SRA
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! >> x[w >>> 24]!;
          pc = (pc + 4) | 0;
          break;
        case 36: // OR
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! | x[w >>> 24]!;
          pc = (pc + 4) | 0;
          break;
        case 37: // AND
          x[(w >>> 8) & 0xff] = x[(w >>> 16) & 0xff]! & x[w >>> 24]!;
          pc = (pc + 4) | 0;
          break;
        case 38: // MUL
          x[(w >>> 8) & 0xff] = Math.imul(x[(w >>> 16) & 0xff]!, x[w >>> 24]!);
          pc = (pc + 4) | 0;
          break;
        case 39: // MULH
          x[(w >>> 8) & 0xff] = mulh(x[(w >>> 16) & 0xff]!, x[w >>> 24]!);
          pc = (pc + 4) | 0;
          break;
        case 40: // MULHSU
          x[(w >>> 8) & 0xff] = mulhsu(x[(w >>> 16) & 0xff]!, x[w >>> 24]!);
          pc = (pc + 4) | 0;
          break;
        case 41: // MULHU
          x[(w >>> 8) & 0xff] = mulhu(x[(w >>> 16) & 0xff]!, x[w >>> 24]!);
          pc = (pc + 4) | 0;
          break;
        case 42: {
          // DIV: x/0 = -1; INT_MIN / -1 = INT_MIN falls out of the | 0 wrap-around
          const b = x[w >>> 24]!;
          x[(w >>> 8) & 0xff] = b === 0 ? -1 : (x[(w >>> 16) & 0xff]! / b) | 0;
          pc = (pc + 4) | 0;
          break;
        }
        case 43: {
          // DIVU: x/0 = 2^32 - 1
          const b = x[w >>> 24]! >>> 0;
          x[(w >>> 8) & 0xff] = b === 0 ? -1 : ((x[(w >>> 16) & 0xff]! >>> 0) / b) | 0;
          pc = (pc + 4) | 0;
          break;
        }
        case 44: {
          // REM: x % 0 = x; INT_MIN % -1 = -0 -> 0
          const a = x[(w >>> 16) & 0xff]!;
          const b = x[w >>> 24]!;
          x[(w >>> 8) & 0xff] = b === 0 ? a : a % b | 0;
          pc = (pc + 4) | 0;
          break;
        }
        case 45: {
          // REMU
          const a = x[(w >>> 16) & 0xff]! >>> 0;
          const b = x[w >>> 24]! >>> 0;
          x[(w >>> 8) & 0xff] = (b === 0 ? a : a % b) | 0;
          pc = (pc + 4) | 0;
          break;
        }
        case 46: // FENCE: one hart, accesses already in order
          pc = (pc + 4) | 0;
          break;
        case 47: // FENCE.I: make earlier stores visible to instruction fetch
          this.flushDecodeCache();
          pc = (pc + 4) | 0;
          break;
        case 48: // ECALL
          pc = this.exception(Cause.ECALL_FROM_M, 0, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break loop;
          }
          break;
        case 49: // EBREAK
          pc = this.exception(Cause.BREAKPOINT, pc, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break loop;
          }
          break;
        case 50: // MRET: may re-enable interrupts
          pc = this.mret();
          st = RECHECK;
          break loop;
        case 51: // WFI
          pc = (pc + 4) | 0;
          if ((this.mip & this.mie) === 0) {
            this.wfi = true;
            st = StopReason.WFI;
            break loop;
          }
          break;
        case 52: // CSRRW
        case 53: // CSRRS
        case 54: // CSRRC
        case 55: // CSRRWI
        case 56: // CSRRSI
        case 57: // CSRRCI
          pc = this.csrInstruction(w, imm, pc, n);
          if (this.slow !== 0) {
            st = this.slow;
            this.slow = 0;
            break loop;
          }
          break;
        case 58: // JAL_MISALIGNED
          pc = this.exception(Cause.INSN_MISALIGNED, (pc + imm) | 0, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break loop;
          }
          break;
        case 59: // BRANCH_MISALIGNED
          pc = this.misalignedBranch(w, imm, pc);
          if (this.panicked) {
            st = StopReason.PANIC;
            break loop;
          }
          break;
        case 60: // NOP
          pc = (pc + 4) | 0;
          break;
        case 61: // LI
          x[(w >>> 8) & 0xff] = imm;
          pc = (pc + 4) | 0;
          break;
        default:
          throw new Error(`decode cache holds unknown op ${w & 0xff}`);
      }
    }

    this.pcReg = pc;
    this.execSteps = n;
    this.cycles += n;
    this.instret += n - this.execTraps;
    this.execTraps = 0;
    return st;
  }

  // ---- slow paths ------------------------------------------------------------------------------

  /** Misaligned RAM loads, RAM-end, MMIO and gated loads. Returns the next pc; sets `slow`. */
  private slowLoad(a: number, size: 1 | 2 | 4, signed: boolean, rd: number, pc: number): number {
    const off = a ^ 0x80000000;
    let v: number;
    if (off >= 0) {
      if (off > this.ramSize - size) return this.accessFault(Cause.LOAD_ACCESS_FAULT, a, pc);
      if (this.gate !== null) this.awaitPages(off, size);
      const m = this.m8;
      v = m[off]!;
      if (size > 1) v |= m[off + 1]! << 8;
      if (size > 2) v |= (m[off + 2]! << 16) | (m[off + 3]! << 24);
      this.slow = 0;
    } else {
      this.pcReg = pc; // keep pc consistent should a device throw (our bug, not the guest's)
      const r = this.mmio.load(a >>> 0, size);
      if (r === undefined) return this.accessFault(Cause.LOAD_ACCESS_FAULT, a, pc);
      v = r;
      this.slow = RECHECK;
    }
    if (size === 1) v = signed ? (v << 24) >> 24 : v & 0xff;
    else if (size === 2) v = signed ? (v << 16) >> 16 : v & 0xffff;
    this.x[rd] = v | 0;
    return (pc + 4) | 0;
  }

  /** Misaligned RAM stores (possibly spanning two pages), RAM-end, MMIO and gated stores. */
  private slowStore(a: number, size: 1 | 2 | 4, value: number, pc: number): number {
    const off = a ^ 0x80000000;
    const bits = size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
    if (off >= 0) {
      if (off > this.ramSize - size) return this.accessFault(Cause.STORE_ACCESS_FAULT, a, pc);
      if (this.gate !== null) this.awaitPages(off, size);
      const m = this.m8;
      for (let i = 0; i < size; i++) m[off + i] = value >>> (8 * i);
      Atomics.store(this.dirty, off >>> 12, 1);
      const last = (off + size - 1) >>> 12;
      if (last !== off >>> 12) Atomics.store(this.dirty, last, 1);
      if (a === this.tohost) {
        this.exitCode = bits;
        this.slow = StopReason.EXIT;
      } else {
        this.slow = 0;
      }
      return (pc + 4) | 0;
    }
    this.pcReg = pc;
    if (!this.mmio.store(a >>> 0, size, bits)) return this.accessFault(Cause.STORE_ACCESS_FAULT, a, pc);
    this.slow = RECHECK;
    return (pc + 4) | 0;
  }

  /** Postcopy: blocks until the page(s) holding RAM bytes off..off+size-1 have arrived. */
  private awaitPages(off: number, size: number): void {
    const gate = this.gate!;
    const first = off >>> PAGE_SHIFT;
    const last = (off + size - 1) >>> PAGE_SHIFT;
    for (let p = first; p <= last; p++) if (Atomics.load(gate.present, p) === 0) gate.waitFor(p);
  }

  private accessFault(cause: number, a: number, pc: number): number {
    const next = this.exception(cause, a, pc);
    this.slow = this.panicked ? StopReason.PANIC : 0;
    return next;
  }

  private misalignedBranch(w: number, imm: number, pc: number): number {
    const a = this.x[(w >>> 16) & 0xff]!;
    const b = this.x[w >>> 24]!;
    let taken: boolean;
    switch ((w >>> 8) & 7) {
      case 0:
        taken = a === b;
        break;
      case 1:
        taken = a !== b;
        break;
      case 4:
        taken = a < b;
        break;
      case 5:
        taken = a >= b;
        break;
      case 6:
        taken = a >>> 0 < b >>> 0;
        break;
      default:
        taken = a >>> 0 >= b >>> 0;
    }
    return taken ? this.exception(Cause.INSN_MISALIGNED, (pc + imm) | 0, pc) : (pc + 4) | 0;
  }

  // ---- CSRs ------------------------------------------------------------------------------------

  /**
   * Zicsr. `n` is exec()'s step count including this instruction, for the counters.
   * Sets `slow` to RECHECK after writes that may enable an interrupt (mstatus, mie), to PANIC if
   * the illegal-instruction trap has no handler, else 0.
   */
  private csrInstruction(w: number, csr: number, pc: number, n: number): number {
    const op = (w & 0xff) as OpValue;
    const rd = (w >>> 8) & 0xff;
    const rs1 = (w >>> 16) & 0xff;
    const immForm = op >= Op.CSRRWI;
    const src = immForm ? rs1 : this.x[rs1]!;
    const kind = immForm ? op - 3 : op; // CSRRW / CSRRS / CSRRC
    // csrrw always writes; csrrs/csrrc write only when the source register/uimm is not x0/0.
    const writes = kind === Op.CSRRW || rs1 !== 0;
    const old = this.csrRead(csr, n);
    if (old === undefined || (writes && csrIsReadOnly(csr))) {
      return this.accessFault(Cause.ILLEGAL_INSN, encodeCsr(op, rd, rs1, csr), pc);
    }
    this.slow = 0;
    if (writes) {
      const value = kind === Op.CSRRW ? src : kind === Op.CSRRS ? old | src : old & ~src;
      if (!this.csrWrite(csr, value | 0, n)) {
        return this.accessFault(Cause.ILLEGAL_INSN, encodeCsr(op, rd, rs1, csr), pc);
      }
      if (csr === Csr.MSTATUS || csr === Csr.MIE) this.slow = RECHECK;
    }
    this.x[rd] = old;
    return (pc + 4) | 0;
  }

  /** Reads a CSR as int32 bits, or undefined if it does not exist. `n` as in csrInstruction. */
  private csrRead(csr: number, n: number): number | undefined {
    switch (csr) {
      case Csr.MSTATUS:
        return this.mstatus;
      case Csr.MISA:
        return MISA_RV32IM | 0;
      case Csr.MIE:
        return this.mie;
      case Csr.MTVEC:
        return this.mtvec;
      case Csr.MSTATUSH:
        return 0;
      case Csr.MSCRATCH:
        return this.mscratch;
      case Csr.MEPC:
        return this.mepc;
      case Csr.MCAUSE:
        return this.mcause;
      case Csr.MTVAL:
        return this.mtval;
      case Csr.MIP:
        return this.mip;
      case Csr.MCYCLE:
      case Csr.CYCLE:
        return lo32(this.cycles + n - 1);
      case Csr.MCYCLEH:
      case Csr.CYCLEH:
        return hi32(this.cycles + n - 1);
      case Csr.MINSTRET:
      case Csr.INSTRET:
        return lo32(this.instret + n - 1 - this.execTraps);
      case Csr.MINSTRETH:
      case Csr.INSTRETH:
        return hi32(this.instret + n - 1 - this.execTraps);
      case Csr.TIME:
        return this.readTime ? lo32(this.readTime()) : undefined;
      case Csr.TIMEH:
        return this.readTime ? hi32(this.readTime()) : undefined;
      case Csr.MVENDORID:
      case Csr.MARCHID:
      case Csr.MIMPID:
      case Csr.MHARTID:
      case Csr.MCONFIGPTR:
        return 0;
    }
    return undefined;
  }

  /** Writes a (writable, existing) CSR with WARL masking. False if it cannot be written. */
  private csrWrite(csr: number, v: number, n: number): boolean {
    switch (csr) {
      case Csr.MSTATUS:
        this.mstatus = (v & MSTATUS_WRITABLE) | MSTATUS_MPP;
        return true;
      case Csr.MISA: // WARL: the extensions cannot be switched off
      case Csr.MSTATUSH: // no big-endian or hypervisor bits
      case Csr.MIP: // MSIP/MTIP/MEIP are driven by the CLINT and the interrupt lines
        return true;
      case Csr.MIE:
        this.mie = v & MIE_WRITABLE;
        return true;
      case Csr.MTVEC:
        this.mtvec = v & ~2; // modes 0 (direct) and 1 (vectored); 2 and 3 are reserved
        return true;
      case Csr.MSCRATCH:
        this.mscratch = v;
        return true;
      case Csr.MEPC:
        this.mepc = v & ~3; // IALIGN = 32
        return true;
      case Csr.MCAUSE:
        this.mcause = v;
        return true;
      case Csr.MTVAL:
        this.mtval = v;
        return true;
      // Counter writes take effect after the writing instruction has counted itself: the next
      // instruction reads the value written (a half written keeps the other half's count).
      // cycles/instret are the values at the start of this exec(), which has taken n steps.
      case Csr.MCYCLE:
        this.cycles = join64(hi32(this.cycles + n), v) - n;
        return true;
      case Csr.MCYCLEH:
        this.cycles = join64(v, lo32(this.cycles + n)) - n;
        return true;
      case Csr.MINSTRET:
        this.instret = join64(hi32(this.instret + n - this.execTraps), v) - n + this.execTraps;
        return true;
      case Csr.MINSTRETH:
        this.instret = join64(v, lo32(this.instret + n - this.execTraps)) - n + this.execTraps;
        return true;
    }
    return false;
  }

  // ---- traps -----------------------------------------------------------------------------------

  /** A synchronous exception at `pc` (the instruction does not retire). Returns the next pc. */
  private exception(cause: number, tval: number, pc: number): number {
    this.execTraps++;
    return this.enterTrap(cause, tval, pc);
  }

  private takeInterrupt(pc: number): number {
    const pending = this.mip & this.mie;
    // Priority among machine interrupts: external, software, timer.
    const irq = pending & MIP_MEIP ? IRQ_MEI : pending & MIP_MSIP ? IRQ_MSI : IRQ_MTI;
    this.wfi = false;
    return this.enterTrap((INTERRUPT | irq) | 0, 0, pc);
  }

  private enterTrap(cause: number, tval: number, pc: number): number {
    const base = this.mtvec & ~3;
    if (base === 0) return this.panic(panicText(cause, tval, pc, 'no trap handler'), pc);
    const target = cause < 0 && (this.mtvec & 1) !== 0 ? (base + 4 * (cause & 0x7fff_ffff)) | 0 : base;
    const off = target ^ 0x80000000;
    if (off < 0 || off >= this.ramSize) {
      return this.panic(panicText(cause, tval, pc, `trap handler at ${hex32(target)} is outside RAM`), pc);
    }
    if (cause >= 0 && pc === target) {
      // The handler's own first instruction faults: it would trap into itself forever.
      return this.panic(panicText(cause, tval, pc, 'raised by the trap handler itself'), pc);
    }
    this.mepc = pc;
    this.mcause = cause;
    this.mtval = tval;
    this.mstatus = MSTATUS_MPP | (this.mstatus & MSTATUS_MIE ? MSTATUS_MPIE : 0);
    return target;
  }

  private mret(): number {
    // MIE <- MPIE, MPIE <- 1, MPP <- machine (the only mode).
    this.mstatus = MSTATUS_MPP | MSTATUS_MPIE | (this.mstatus & MSTATUS_MPIE ? MSTATUS_MIE : 0);
    return this.mepc;
  }

  private panic(message: string, pc: number): number {
    this.panicked = true;
    this.panicMessage = message;
    return pc;
  }
}

function lo32(v: number): number {
  return v % 0x1_0000_0000 | 0;
}

function hi32(v: number): number {
  return Math.floor(v / 0x1_0000_0000) | 0;
}

function join64(hi: number, lo: number): number {
  return (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
}
