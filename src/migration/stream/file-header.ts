// The stream's outer frame (savevm.c): the file header and EOF. Everything between them is the
// savevm loop's (src/migration/savevm.ts) and the loadvm loop's (src/migration/loadvm.ts), over
// the framing helpers of vmstate.ts; this file knows no guest.

import { StreamFormatError } from './errors.js';
import { QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION, QEMU_VM_FILE_VERSION_COMPAT, SectionType } from './format.js';
import type { StreamReader } from './stream-reader.js';
import type { StreamWriter } from './stream-writer.js';

// ---- header and EOF ---------------------------------------------------------------------------------

export function writeStreamHeader(w: StreamWriter): void {
  w.putBe32(QEMU_VM_FILE_MAGIC);
  w.putBe32(QEMU_VM_FILE_VERSION);
}

/** Checks magic and version in QEMU's words. */
export async function readStreamHeader(r: StreamReader): Promise<void> {
  if (!r.has(8)) await r.ensure(8);
  if (r.getBe32() !== QEMU_VM_FILE_MAGIC) throw r.fail(new StreamFormatError('bad-magic', 'Not a migration stream'));
  const v = r.getBe32();
  if (v === QEMU_VM_FILE_VERSION_COMPAT) {
    throw r.fail(new StreamFormatError('obsolete-version', "SaveVM v2 format is obsolete and don't work anymore"));
  }
  if (v !== QEMU_VM_FILE_VERSION) throw r.fail(new StreamFormatError('bad-version', 'Unsupported migration stream version'));
}

export function writeEof(w: StreamWriter): void {
  w.putU8(SectionType.EOF);
}
