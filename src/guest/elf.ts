// ELF32 little-endian RISC-V executables: the loadable segments and the few symbols the machine
// cares about (`tohost` for the RISC-V ISA tests' exit protocol). Bad files get a clear error
// before anything touches guest RAM.

import { RAM_BASE } from './memory-map.js';

export class ElfError extends Error {
  override name = 'ElfError';
}

export interface ElfSegment {
  /** Guest physical address. */
  paddr: number;
  /** Bytes taken from the file. */
  data: Uint8Array;
  /** Size in memory; the rest after data is zero (bss). */
  memSize: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  symbols: Map<string, number>;
}

const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;

export function parseElf(file: Uint8Array): ElfImage {
  if (file.length < 52) throw new ElfError(`not an ELF file: only ${file.length} bytes`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (v.getUint32(0, false) !== 0x7f454c46) throw new ElfError('not an ELF file: bad magic');
  if (file[4] !== 1) throw new ElfError('not a 32-bit ELF file (tabmig runs RV32 programs)');
  if (file[5] !== 1) throw new ElfError('not a little-endian ELF file');
  const type = v.getUint16(16, true);
  if (type !== 2) throw new ElfError(`ELF type ${type} is not an executable`);
  const machine = v.getUint16(18, true);
  if (machine !== EM_RISCV) throw new ElfError(`ELF machine ${machine} is not RISC-V (243)`);

  const entry = v.getUint32(24, true);
  const phoff = v.getUint32(28, true);
  const shoff = v.getUint32(32, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  const shentsize = v.getUint16(46, true);
  const shnum = v.getUint16(48, true);
  const inFile = (off: number, len: number, what: string) => {
    if (off + len > file.length || off < 0) throw new ElfError(`truncated ELF file: ${what} lies outside the file`);
  };

  const segments: ElfSegment[] = [];
  // A header entry smaller than Elf32_Phdr (32) / Elf32_Shdr (40) would make the field reads
  // below run off the file with a RangeError instead of an ElfError.
  if (phnum !== 0 && phentsize < 32) throw new ElfError(`ELF program header size ${phentsize} is smaller than 32`);
  if (shoff !== 0 && shnum !== 0 && shentsize < 40) throw new ElfError(`ELF section header size ${shentsize} is smaller than 40`);
  inFile(phoff, phnum * phentsize, 'program headers');
  for (let i = 0; i < phnum; i++) {
    const h = phoff + i * phentsize;
    if (v.getUint32(h, true) !== PT_LOAD) continue;
    const offset = v.getUint32(h + 4, true);
    const paddr = v.getUint32(h + 12, true);
    const fileSize = v.getUint32(h + 16, true);
    const memSize = v.getUint32(h + 20, true);
    if (memSize === 0) continue;
    if (fileSize > memSize) throw new ElfError(`segment ${i} has more file bytes than memory bytes`);
    inFile(offset, fileSize, `segment ${i}`);
    segments.push({ paddr, data: file.subarray(offset, offset + fileSize), memSize });
  }
  if (segments.length === 0) throw new ElfError('ELF file has no loadable segment');

  const symbols = new Map<string, number>();
  if (shoff !== 0 && shnum !== 0) {
    inFile(shoff, shnum * shentsize, 'section headers');
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      if (v.getUint32(s + 4, true) !== SHT_SYMTAB) continue;
      const symOff = v.getUint32(s + 16, true);
      const symSize = v.getUint32(s + 20, true);
      const strIndex = v.getUint32(s + 24, true);
      const entSize = v.getUint32(s + 36, true) || 16;
      const strHdr = shoff + strIndex * shentsize;
      inFile(strHdr, shentsize, 'string table header');
      const strOff = v.getUint32(strHdr + 16, true);
      const strSize = v.getUint32(strHdr + 20, true);
      inFile(symOff, symSize, 'symbol table');
      inFile(strOff, strSize, 'string table');
      for (let at = symOff; at + entSize <= symOff + symSize; at += entSize) {
        const nameOff = v.getUint32(at, true);
        if (nameOff === 0 || nameOff >= strSize) continue;
        let end = strOff + nameOff;
        while (end < strOff + strSize && file[end] !== 0) end++;
        const name = new TextDecoder().decode(file.subarray(strOff + nameOff, end));
        if (!symbols.has(name)) symbols.set(name, v.getUint32(at + 4, true));
      }
    }
  }
  return { entry, segments, symbols };
}

/** Checks that every segment and the entry point fall inside RAM. */
export function checkFitsInRam(image: ElfImage, ramSize: number, reserveTop: number): void {
  const end = RAM_BASE + ramSize - reserveTop;
  for (const s of image.segments) {
    if (s.paddr < RAM_BASE || s.paddr + s.memSize > end) {
      const hex = (n: number) => '0x' + n.toString(16).padStart(8, '0');
      throw new ElfError(
        `ELF segment ${hex(s.paddr)}..${hex(s.paddr + s.memSize)} does not fit in RAM ${hex(RAM_BASE)}..${hex(end)}`,
      );
    }
  }
  if (image.entry < RAM_BASE || image.entry >= end) throw new ElfError(`ELF entry point 0x${image.entry.toString(16)} is not in RAM`);
}

/** Copies the segments into guest RAM (bss zeroed). */
export function loadSegments(image: ElfImage, ram: Uint8Array): void {
  for (const s of image.segments) {
    const at = s.paddr - RAM_BASE;
    ram.set(s.data, at);
    ram.fill(0, at + s.data.length, at + s.memSize);
  }
}

export function base64ToBytes(b64: string): Uint8Array {
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) throw new ElfError('the ELF is not valid base64');
  let bin: string;
  try {
    bin = atob(clean);
  } catch {
    // The regex lets misplaced padding through ('AB=', 'A='), which atob refuses with a DOMException.
    throw new ElfError('the ELF is not valid base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
