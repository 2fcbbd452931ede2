// The built-in guest programs, by name (their ELF files are generated modules under guests/).

import { BUILTIN_PROGRAMS } from '../../guests/index.js';
import { base64ToBytes, parseElf, type ElfImage } from './elf.js';

export interface BuiltinProgram {
  name: string;
  description: string;
  defaultArgs: string;
  elfBase64: string;
}

export const PROGRAMS: readonly BuiltinProgram[] = BUILTIN_PROGRAMS;

/** The program a page boots when nothing else is asked for: something a class enjoys watching. */
export const DEMO_PROGRAM = 'life';

export function findProgram(name: string): BuiltinProgram | undefined {
  return PROGRAMS.find((p) => p.name === name);
}

const parsed = new Map<string, ElfImage>();

export function programImage(p: BuiltinProgram): ElfImage {
  let image = parsed.get(p.name);
  if (!image) {
    image = parseElf(base64ToBytes(p.elfBase64));
    parsed.set(p.name, image);
  }
  return image;
}
