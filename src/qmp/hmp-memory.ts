// HMP `xp` and `x`: guest memory dumps printed exactly as QEMU's memory_dump prints them — the
// address column (16 hex digits for physical, 8 for a 32-bit target's virtual addresses), 8 bytes
// a line for byte units and 16 otherwise, QEMU's field widths per format, and " Cannot access
// memory" where nothing readable is mapped. The machine has no MMU, so `x` reads physical memory.

import type { Hmp, HmpArgs, HmpOutput } from './hmp.js';

/** Guest-physical read (Machine.readPhysical): null when any byte of the range is not readable. */
export type PhysicalReader = (addr: number, length: number) => Uint8Array | null;

export interface MemoryDumpRequest {
  count: number;
  /** One of x d u o c i. */
  format: string;
  /** 1, 2, 4 or 8 bytes (ignored for 'c', which always prints bytes). */
  size: number;
  addr: bigint;
  /** xp (true) or x (false). */
  physical: boolean;
}

const MASK64 = (1n << 64n) - 1n;

export function memoryDump(out: HmpOutput, read: PhysicalReader, req: MemoryDumpRequest): void {
  const { count, format } = req;
  let wsize = req.size;
  // x: the address is a target_ulong, 32 bits on this RV32 machine.
  let addr = req.physical ? req.addr & MASK64 : req.addr & 0xffff_ffffn;
  if (format === 'i') {
    out.print('tabmig has no disassembler: the i format is not supported\n');
    return;
  }
  // As in QEMU, the length and line size come from the requested unit even for 'c'.
  let len = wsize * count;
  const lineSize = wsize === 1 ? 8 : 16;
  let digits = 0;
  switch (format) {
    case 'o':
      digits = Math.ceil((wsize * 8) / 3);
      break;
    case 'u':
    case 'd':
      digits = Math.ceil((wsize * 8 * 10) / 33);
      break;
    case 'c':
      wsize = 1;
      break;
    default:
      digits = (wsize * 8) / 4;
      break;
  }
  while (len > 0) {
    out.print(req.physical ? `${hex(addr, 16)}:` : `${hex(addr, 8)}:`);
    const l = Math.min(len, lineSize);
    const buf = addr <= BigInt(Number.MAX_SAFE_INTEGER) ? read(Number(addr), l) : null;
    if (!buf || buf.length < l) {
      out.print(' Cannot access memory\n');
      break;
    }
    let line = '';
    for (let i = 0; i < l; i += wsize) {
      const v = loadLE(buf, i, wsize);
      line += ' ';
      switch (format) {
        case 'o':
          line += (v === 0n ? '0' : '0' + v.toString(8)).padStart(digits, ' ');
          break;
        case 'u':
          line += v.toString(10).padStart(digits, ' ');
          break;
        case 'd':
          // QEMU loads every unit zero-extended into a 64-bit value, so only 8-byte units print negative.
          line += BigInt.asIntN(64, v).toString(10).padStart(digits, ' ');
          break;
        case 'c':
          line += printc(Number(v));
          break;
        default:
          line += '0x' + v.toString(16).padStart(digits, '0');
          break;
      }
    }
    out.print(line + '\n');
    addr = req.physical ? (addr + BigInt(l)) & MASK64 : (addr + BigInt(l)) & 0xffff_ffffn;
    len -= l;
  }
}

/** `xp` and `x`, with QEMU's names, syntax and help. */
export function registerMemoryDump(hmp: Hmp, read: PhysicalReader, resident?: (addr: number, length: number) => Promise<void>): void {
  const dump = (physical: boolean) => async (out: HmpOutput, args: HmpArgs) => {
    // Postcopy destination: pages that have not arrived are asked for and waited on first, so
    // the dump never shows a missing page as zeros.
    if (resident) {
      const size = (args.format as string) === 'c' ? 1 : (args.size as number);
      const addr = Number(physical ? (args.addr as bigint) : (args.addr as bigint) & 0xffff_ffffn);
      if (Number.isSafeInteger(addr)) await resident(addr, size * (args.count as number));
    }
    memoryDump(out, read, {
      count: args.count as number,
      format: args.format as string,
      size: args.size as number,
      addr: args.addr as bigint,
      physical,
    });
  };
  hmp.register({
    name: 'x',
    argsType: 'fmt:/,addr:l',
    params: '/fmt addr',
    help: "virtual memory dump starting at 'addr'",
    handler: dump(false),
  });
  hmp.register({
    name: 'xp',
    argsType: 'fmt:/,addr:l',
    params: '/fmt addr',
    help: "physical memory dump starting at 'addr'",
    handler: dump(true),
  });
}

function hex(v: bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

function loadLE(buf: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
  return v;
}

/** QEMU's monitor_printc: a quoted character, escaped where not printable. */
function printc(c: number): string {
  let body: string;
  if (c === 0x27) body = "\\'";
  else if (c === 0x5c) body = '\\\\';
  else if (c === 0x0a) body = '\\n';
  else if (c === 0x0d) body = '\\r';
  else if (c >= 32 && c <= 126) body = String.fromCharCode(c);
  else body = '\\x' + c.toString(16).padStart(2, '0');
  return `'${body}'`;
}
