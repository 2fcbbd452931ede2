// The ELF loader as a user meets it: the built-in programs parse to images that fit the machine,
// every kind of broken file is refused with a clear ElfError (and, through QMP, a GenericError
// that leaves the running guest alone), and loading lays out code and zeroed bss in RAM.

import { BUILTIN_PROGRAMS } from '../guests/index.js';
import { ElfError, base64ToBytes, checkFitsInRam, loadSegments, parseElf } from '../src/guest/elf.js';
import { PAGE_SIZE, RAM_BASE } from '../src/guest/memory-map.js';
import { I, R, li } from './fixtures/cpu-asm.js';
import { Ehdr, Phdr0, bytesToBase64, patched, writeElf } from './fixtures/machine-elf.js';
import { machineRig } from './fixtures/machine-rig.js';
import { deepEqual, equal, eventually, notEqual, ok, throws } from './helpers/assert.js';

const RAM = 16 << 20;
const MIB = 1 << 20;
const J_SELF = I.jal(0, 0);

/** A valid one-segment executable: `j .` at RAM_BASE. */
const spin = () => writeElf({ segments: [{ paddr: RAM_BASE, data: Uint32Array.of(J_SELF) }] });

function elfError(fn: () => unknown): ElfError {
  const e = throws(fn, 'expected an ElfError');
  ok(e instanceof ElfError, `expected an ElfError, got ${String(e)}`);
  equal(e.name, 'ElfError');
  return e;
}

describe('machine ELF: the built-in programs', () => {
  for (const p of BUILTIN_PROGRAMS) {
    it(`${p.name}: starts at RAM base, loads inside the first MiB of RAM, has _end`, () => {
      const image = parseElf(base64ToBytes(p.elfBase64));
      equal(image.entry, RAM_BASE, 'entry');
      ok(image.segments.length > 0, 'at least one PT_LOAD segment');
      let top = 0;
      for (const s of image.segments) {
        ok(s.paddr >= RAM_BASE, `segment at 0x${s.paddr.toString(16)} is in RAM`);
        ok(s.data.length <= s.memSize, 'file bytes fit in memory bytes');
        top = Math.max(top, s.paddr + s.memSize);
      }
      ok(top <= RAM_BASE + MIB, `image ends at 0x${top.toString(16)}, below RAM base + 1 MiB (the a-b range)`);
      const end = image.symbols.get('_end');
      ok(end !== undefined, '_end is in the symbol table');
      equal(end % PAGE_SIZE, 0, '_end is page-aligned');
      ok(end >= top, '_end is past every segment');
      equal(image.symbols.get('_start'), RAM_BASE, '_start is the entry');
      equal(image.symbols.has('tohost'), false, 'built-ins exit through the test finisher, not tohost');
      checkFitsInRam(image, RAM, PAGE_SIZE); // the smallest machine takes them
    });
  }

  it('base64ToBytes ignores line breaks and round-trips', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    const b64 = bytesToBase64(bytes);
    const wrapped = b64.replace(/(.{76})/g, '$1\n');
    deepEqual(Array.from(base64ToBytes(wrapped)), Array.from(bytes));
  });
});

describe('machine ELF: malformed files', () => {
  const good = spin();
  const cases: [string, () => Uint8Array, string][] = [
    ['too short', () => good.slice(0, 51), 'not an ELF file: only 51 bytes'],
    ['empty', () => new Uint8Array(0), 'not an ELF file: only 0 bytes'],
    ['bad magic', () => patched(good, (_v, b) => (b[1] = 0x46)), 'not an ELF file: bad magic'],
    ['64-bit class', () => patched(good, (_v, b) => (b[Ehdr.CLASS] = 2)), 'not a 32-bit ELF file (tabmig runs RV32 programs)'],
    ['big-endian', () => patched(good, (_v, b) => (b[Ehdr.DATA] = 2)), 'not a little-endian ELF file'],
    ['a shared object, not EXEC', () => patched(good, (v) => v.setUint16(Ehdr.TYPE, 3, true)), 'ELF type 3 is not an executable'],
    ['a relocatable object', () => patched(good, (v) => v.setUint16(Ehdr.TYPE, 1, true)), 'ELF type 1 is not an executable'],
    ['x86-64 machine', () => patched(good, (v) => v.setUint16(Ehdr.MACHINE, 62, true)), 'ELF machine 62 is not RISC-V (243)'],
    [
      'program headers past the end',
      () => patched(good, (v) => v.setUint16(Ehdr.PHNUM, 40, true)),
      'truncated ELF file: program headers lies outside the file',
    ],
    ['program headers cut off', () => good.slice(0, 60), 'truncated ELF file: program headers lies outside the file'],
    [
      'segment data outside the file',
      () => patched(good, (v) => v.setUint32(Phdr0.OFFSET, 0x10000, true)),
      'truncated ELF file: segment 0 lies outside the file',
    ],
    [
      'segment file size past the end',
      () => patched(good, (v) => (v.setUint32(Phdr0.FILESZ, 0x100, true), v.setUint32(Phdr0.MEMSZ, 0x100, true))),
      'truncated ELF file: segment 0 lies outside the file',
    ],
    [
      'filesz > memsz',
      () => patched(good, (v) => v.setUint32(Phdr0.MEMSZ, 2, true)),
      'segment 0 has more file bytes than memory bytes',
    ],
    ['no PT_LOAD (PT_NULL)', () => patched(good, (v) => v.setUint32(Phdr0.TYPE, 0, true)), 'ELF file has no loadable segment'],
    ['no program headers', () => patched(good, (v) => v.setUint16(Ehdr.PHNUM, 0, true)), 'ELF file has no loadable segment'],
    [
      'only an empty PT_LOAD',
      () => patched(good, (v) => (v.setUint32(Phdr0.FILESZ, 0, true), v.setUint32(Phdr0.MEMSZ, 0, true))),
      'ELF file has no loadable segment',
    ],
    [
      // e_phentsize smaller than an Elf32_Phdr: reading the header's fields would run off the file.
      'program header entry size too small',
      () => patched(good, (v) => v.setUint16(Ehdr.PHENTSIZE, 8, true)).slice(0, 60),
      'ELF program header size 8 is smaller than 32',
    ],
  ];
  for (const [what, file, message] of cases) {
    it(`${what}: ${message}`, () => {
      equal(elfError(() => parseElf(file())).message, message);
    });
  }

  it('section headers outside the file are refused; a file without sections is fine', () => {
    const withSyms = writeElf({ segments: [{ paddr: RAM_BASE, data: Uint32Array.of(J_SELF) }], symbols: { tohost: RAM_BASE + 0x100 } });
    equal(parseElf(withSyms).symbols.get('tohost'), RAM_BASE + 0x100);
    equal(
      elfError(() => parseElf(withSyms.slice(0, withSyms.length - 1))).message,
      'truncated ELF file: section headers lies outside the file',
    );
    equal(
      elfError(() => parseElf(patched(withSyms, (v) => v.setUint16(Ehdr.SHENTSIZE, 8, true)))).message,
      'ELF section header size 8 is smaller than 40',
    );
    equal(parseElf(spin()).symbols.size, 0);
  });

  it('bad base64 is an ElfError, whatever atob would say', () => {
    for (const text of ['***', 'AAAAA', 'AB=', 'A=', 'AAAAA=', 'AA=A', 'AAAA AA=']) {
      equal(elfError(() => base64ToBytes(text)).message, 'the ELF is not valid base64', JSON.stringify(text));
    }
  });
});

describe('machine ELF: fitting and loading into RAM', () => {
  it('checkFitsInRam refuses segments and entry points outside RAM', () => {
    const at = (paddr: number, memSize: number, entry = RAM_BASE) =>
      parseElf(writeElf({ entry, segments: [{ paddr, data: Uint32Array.of(J_SELF), memSize }] }));
    checkFitsInRam(at(RAM_BASE, 4), RAM, PAGE_SIZE);
    checkFitsInRam(at(RAM_BASE + RAM - 2 * PAGE_SIZE, PAGE_SIZE, RAM_BASE + RAM - 2 * PAGE_SIZE), RAM, PAGE_SIZE);
    equal(
      elfError(() => checkFitsInRam(at(0x1000, 4), RAM, PAGE_SIZE)).message,
      'ELF segment 0x00001000..0x00001004 does not fit in RAM 0x80000000..0x80fff000',
    );
    // The last page belongs to the boot information: an image may not reach into it.
    equal(
      elfError(() => checkFitsInRam(at(RAM_BASE + RAM - 2 * PAGE_SIZE, 2 * PAGE_SIZE), RAM, PAGE_SIZE)).message,
      'ELF segment 0x80ffe000..0x81000000 does not fit in RAM 0x80000000..0x80fff000',
    );
    // bss counts: a tiny file segment with a huge memsz does not fit either.
    ok(elfError(() => checkFitsInRam(at(RAM_BASE, RAM), RAM, PAGE_SIZE)).message.includes('does not fit in RAM'));
    equal(
      elfError(() => checkFitsInRam(at(RAM_BASE, 4, 0x1000), RAM, PAGE_SIZE)).message,
      'ELF entry point 0x1000 is not in RAM',
    );
  });

  it('loadSegments copies file bytes and zeroes the bss after them, touching nothing else', () => {
    const ram = new Uint8Array(0x10000).fill(0xaa);
    const image = parseElf(
      writeElf({
        segments: [
          { paddr: RAM_BASE + 0x100, data: Uint8Array.of(1, 2, 3, 4), memSize: 0x40 },
          { paddr: RAM_BASE + 0x2000, data: new Uint8Array(0), memSize: 0x10 },
        ],
      }),
    );
    loadSegments(image, ram);
    deepEqual(Array.from(ram.subarray(0x100, 0x104)), [1, 2, 3, 4]);
    ok(ram.subarray(0x104, 0x140).every((b) => b === 0), 'bss zeroed');
    ok(ram.subarray(0x2000, 0x2010).every((b) => b === 0), 'an all-bss segment zeroed');
    equal(ram[0xff], 0xaa, 'byte before the segment untouched');
    equal(ram[0x140], 0xaa, 'byte after the bss untouched');
    equal(ram[0x2010], 0xaa);
  });

  it('system_reset reloads the image and zeroes its bss but keeps the rest of RAM (as QEMU)', async () => {
    const BSS = RAM_BASE + 0x1000;
    const OTHER = RAM_BASE + 0x20000;
    const MAGIC = 0x1234_5678;
    const code = Uint32Array.from([
      ...li(R.t1, MAGIC),
      ...li(R.t0, BSS),
      I.sw(R.t1, R.t0, 0),
      ...li(R.t0, OTHER),
      I.sw(R.t1, R.t0, 0),
      J_SELF,
    ]);
    const file = writeElf({ segments: [{ paddr: RAM_BASE, data: code, memSize: 0x2000 }] });
    const rig = await machineRig();
    const word = (addr: number) => new DataView(rig.machine.readPhysical(addr, 4)!.buffer).getUint32(0, true);
    try {
      await rig.ok('x-tabmig-load', { elf: bytesToBase64(file), name: 'bss' });
      await rig.ok('cont');
      await eventually(() => word(OTHER) === MAGIC, 20000, 'the guest to store');
      await rig.ok('stop');
      equal(word(BSS), MAGIC, 'the guest wrote into its bss');
      await rig.ok('system_reset');
      equal(rig.machine.runstate, 'prelaunch');
      equal(word(BSS), 0, 'bss zeroed again by the reset');
      equal(word(OTHER), MAGIC, 'RAM outside the image kept');
      equal(word(RAM_BASE), code[0], 'code reloaded');
    } finally {
      rig.close();
    }
  });
});

describe('machine ELF: x-tabmig-load through QMP', () => {
  it('a bad ELF gets a GenericError and the running stress guest carries on untouched', async () => {
    const rig = await machineRig('running');
    try {
      await rig.ok('x-tabmig-load', { program: 'stress', args: 'wss=2M rate=8M' });
      await rig.serial('stress: ready');
      const generation = rig.machine.control.generation;
      const bad: [string, string][] = [
        [bytesToBase64(spin().slice(0, 20)), 'not an ELF file: only 20 bytes'],
        [bytesToBase64(patched(spin(), (_v, b) => (b[Ehdr.CLASS] = 2))), 'not a 32-bit ELF file (tabmig runs RV32 programs)'],
        [bytesToBase64(patched(spin(), (v) => v.setUint16(Ehdr.MACHINE, 62, true))), 'ELF machine 62 is not RISC-V (243)'],
        [bytesToBase64(patched(spin(), (v) => v.setUint32(Phdr0.MEMSZ, 2, true))), 'segment 0 has more file bytes than memory bytes'],
        [
          bytesToBase64(writeElf({ segments: [{ paddr: RAM_BASE + (32 << 20), data: Uint32Array.of(J_SELF) }] })),
          'ELF segment 0x82000000..0x82000004 does not fit in RAM 0x80000000..0x80fff000',
        ],
        ['AB=', 'the ELF is not valid base64'],
      ];
      for (const [elf, desc] of bad) {
        deepEqual(await rig.qmp('x-tabmig-load', { elf, name: 'bad' }), { error: { class: 'GenericError', desc } });
      }
      equal(rig.machine.runstate, 'running');
      equal(rig.machine.control.generation, generation, 'RAM was not reloaded');
      const info = await rig.info();
      equal(info.program, 'stress');
      equal(info.args, 'wss=2M rate=8M');
      ok(info.serial.includes('stress: ready'), 'serial history kept');
      deepEqual(rig.events, [], 'no RESET, STOP or anything else');
      // Still running: its RAM keeps changing.
      const h1 = await rig.machine.ramHash();
      await eventually(async () => (await rig.machine.ramHash()) !== h1, 20000, 'the RAM hash to change');
    } finally {
      rig.close();
    }
  });

  it('a custom ELF (the ab program, by bytes) with a name loads and runs', async () => {
    const rig = await machineRig('running');
    try {
      const ab = BUILTIN_PROGRAMS.find((p) => p.name === 'ab')!;
      const bytes = base64ToBytes(ab.elfBase64);
      await rig.ok('x-tabmig-load', { program: 'life' });
      await rig.serial('life:');
      await rig.ok('x-tabmig-load', { elf: bytesToBase64(bytes), name: 'my-ab', args: 'size=1M' });
      await rig.serial(/ABB/);
      const info = await rig.info();
      equal(info.program, 'my-ab');
      equal(info.args, 'size=1M');
      equal(info.runstate, 'running');
      equal(rig.machine.display.enabled, false, "life's display went with it");
      deepEqual(rig.events, [], 'a load is a fresh boot: no RESET');
      notEqual(info.instructions, 0);
    } finally {
      rig.close();
    }
  });

  it('without a name a custom ELF is called "elf"', async () => {
    const rig = await machineRig();
    try {
      await rig.ok('x-tabmig-load', { elf: bytesToBase64(spin()) });
      equal((await rig.info()).program, 'elf');
      equal(rig.machine.runstate, 'prelaunch');
    } finally {
      rig.close();
    }
  });
});
