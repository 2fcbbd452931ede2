// Device state on the wire (QEMU's vmstate.c) and the section framing around it (savevm.c).
//
// A device's fields go out in declaration order, each big-endian in its type's size, arrays
// element by element, 'buffer' raw, bool as one byte. Whoever owns the state keeps the same
// fields little-endian (the guest's device-state buffer does), and hands this layer a field list
// and a VmsdStore that gives a live view of each field's bytes: saving is a byte swap per element
// into a small wire image and loading the reverse; a load decodes the whole image before touching
// the store, so a bad stream never leaves a device half-loaded. Nothing here knows the guest.

import { StreamFormatError } from './errors.js';
import { SectionType } from './format.js';
import type { StreamReader } from './stream-reader.js';
import type { StreamWriter } from './stream-writer.js';

// ---- what a vmstate section is made of ------------------------------------------------------------

export type VmsdFieldType = 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int32' | 'bool' | 'buffer';

/** One named field of a vmstate (QEMU's VMStateField, as far as tabmig needs it). */
export interface VmsdField {
  readonly name: string;
  readonly type: VmsdFieldType;
  /** Number of elements for an array field (QEMU's array_len). */
  readonly count?: number;
  /** Byte size of a 'buffer' field. */
  readonly size?: number;
}

/** A vmstate section's identity and fields (QEMU's VMStateDescription plus its idstr/instance). */
export interface VmsdSpec {
  /** Section name in the stream (QEMU's vmsd name / idstr). */
  readonly name: string;
  readonly instanceId: number;
  /** Version written to the stream; the loader refuses newer ones. */
  readonly version: number;
  /** Oldest version the loader accepts. */
  readonly minimumVersion: number;
  readonly fields: readonly VmsdField[];
}

/**
 * Where a section's state lives: a live little-endian view of each field's bytes (all elements).
 * The guest's DeviceState satisfies it as it is.
 */
export interface VmsdStore {
  fieldBytes(section: string, field: string): Uint8Array;
}

// ---- field sizes --------------------------------------------------------------------------------

/** Bytes of one element of a field on the wire. */
export function elementSize(f: VmsdField): number {
  switch (f.type) {
    case 'uint8':
    case 'bool':
      return 1;
    case 'uint16':
      return 2;
    case 'uint32':
    case 'int32':
      return 4;
    case 'uint64':
      return 8;
    case 'buffer':
      return f.size ?? 0;
  }
}

/** Bytes a field takes on the wire (all elements). */
export function fieldWireSize(f: VmsdField): number {
  return elementSize(f) * (f.count ?? 1);
}

/** Bytes a device's fields take on the wire (fixed: tabmig has no variable-size fields). */
export function deviceWireSize(spec: VmsdSpec): number {
  let n = 0;
  for (const f of spec.fields) n += fieldWireSize(f);
  return n;
}

/** Copies n elements of `size` bytes, reversing each (little-endian state <-> big-endian wire). */
function swapCopy(src: Uint8Array, srcAt: number, dst: Uint8Array, dstAt: number, size: number, count: number, isBool: boolean): void {
  if (size === 1) {
    if (isBool) {
      for (let i = 0; i < count; i++) dst[dstAt + i] = src[srcAt + i] ? 1 : 0;
    } else {
      dst.set(src.subarray(srcAt, srcAt + count), dstAt);
    }
    return;
  }
  for (let e = 0; e < count; e++) {
    const s = srcAt + e * size;
    const d = dstAt + e * size;
    for (let b = 0; b < size; b++) dst[d + b] = src[s + size - 1 - b]!;
  }
}

// ---- device state <-> wire image ------------------------------------------------------------------

/** The device's fields as they go on the wire. */
export function encodeDeviceFields(spec: VmsdSpec, store: VmsdStore): Uint8Array {
  const out = new Uint8Array(deviceWireSize(spec));
  let at = 0;
  for (const f of spec.fields) {
    const src = store.fieldBytes(spec.name, f.name);
    const size = elementSize(f);
    const count = f.count ?? 1;
    if (src.length < size * count) throw new RangeError(`${spec.name}.${f.name}: the store holds ${src.length} bytes, the field ${size * count}`);
    if (f.type === 'buffer') out.set(src.subarray(0, size * count), at);
    else swapCopy(src, 0, out, at, size, count, f.type === 'bool');
    at += size * count;
  }
  return out;
}

/** Stores a wire image of the device's fields into the store. */
export function decodeDeviceFields(spec: VmsdSpec, wire: Uint8Array, store: VmsdStore): void {
  let at = 0;
  for (const f of spec.fields) {
    const dst = store.fieldBytes(spec.name, f.name);
    const size = elementSize(f);
    const count = f.count ?? 1;
    if (dst.length < size * count) throw new RangeError(`${spec.name}.${f.name}: the store holds ${dst.length} bytes, the field ${size * count}`);
    if (f.type === 'buffer') dst.set(wire.subarray(at, at + size * count), 0);
    else swapCopy(wire, at, dst, 0, size, count, f.type === 'bool');
    at += size * count;
  }
}

/** A field value for state that has no device-state buffer (globalstate, tests). */
export type FieldValue = number | bigint | boolean | Uint8Array | readonly number[] | readonly bigint[];

/** Encodes named values in a spec's order (uint64 as bigint or number; buffers as bytes). */
export function encodeFieldValues(spec: VmsdSpec, values: Readonly<Record<string, FieldValue>>): Uint8Array {
  const out = new Uint8Array(deviceWireSize(spec));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const f of spec.fields) {
    const v = values[f.name];
    if (v === undefined) throw new RangeError(`${spec.name}: no value for field '${f.name}'`);
    const size = elementSize(f);
    const count = f.count ?? 1;
    if (f.type === 'buffer') {
      if (!(v instanceof Uint8Array) || v.length > size * count) throw new RangeError(`${spec.name}.${f.name}: a buffer of at most ${size} bytes`);
      out.set(v, at);
    } else {
      const items: readonly (number | bigint | boolean)[] = f.count ? (v as readonly (number | bigint)[]) : [v as number | bigint | boolean];
      if (items.length !== count) throw new RangeError(`${spec.name}.${f.name}: ${count} elements expected`);
      for (let i = 0; i < count; i++) putScalar(view, at + i * size, f, items[i]!);
    }
    at += size * count;
  }
  return out;
}

function putScalar(view: DataView, at: number, f: VmsdField, v: number | bigint | boolean): void {
  switch (f.type) {
    case 'uint8':
      return view.setUint8(at, Number(v));
    case 'bool':
      return view.setUint8(at, v ? 1 : 0);
    case 'uint16':
      return view.setUint16(at, Number(v));
    case 'uint32':
      return view.setUint32(at, Number(v) >>> 0);
    case 'int32':
      return view.setInt32(at, Number(v));
    case 'uint64':
      return view.setBigUint64(at, BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(Number(v))));
    case 'buffer':
      throw new TypeError('buffer is not a scalar');
  }
}

/** Decodes a wire image into named values (uint64 as bigint, bool as boolean, buffers as views). */
export function decodeFieldValues(spec: VmsdSpec, wire: Uint8Array): Record<string, FieldValue> {
  const view = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  const out: Record<string, FieldValue> = {};
  let at = 0;
  for (const f of spec.fields) {
    const size = elementSize(f);
    const count = f.count ?? 1;
    if (f.type === 'buffer') {
      out[f.name] = wire.subarray(at, at + size * count);
    } else {
      const items: (number | bigint | boolean)[] = [];
      for (let i = 0; i < count; i++) items.push(getScalar(view, at + i * size, f));
      out[f.name] = (f.count ? items : items[0]) as FieldValue;
    }
    at += size * count;
  }
  return out;
}

function getScalar(view: DataView, at: number, f: VmsdField): number | bigint | boolean {
  switch (f.type) {
    case 'uint8':
      return view.getUint8(at);
    case 'bool':
      return view.getUint8(at) !== 0;
    case 'uint16':
      return view.getUint16(at);
    case 'uint32':
      return view.getUint32(at);
    case 'int32':
      return view.getInt32(at);
    case 'uint64':
      return view.getBigUint64(at);
    case 'buffer':
      throw new TypeError('buffer is not a scalar');
  }
}

// ---- vmstate save / load ---------------------------------------------------------------------------

/** QEMU's vmstate_save_state for a tabmig device: its fields, nothing else. */
export function saveDeviceState(w: StreamWriter, spec: VmsdSpec, store: VmsdStore): void {
  w.putBytes(encodeDeviceFields(spec, store));
}

/** Refuses a version this side cannot load, in vmstate.c's words. */
export function checkVmsdVersion(spec: Pick<VmsdSpec, 'name' | 'version' | 'minimumVersion'>, versionId: number): StreamFormatError | null {
  if (versionId > spec.version) {
    return new StreamFormatError(
      'version-too-new',
      `${spec.name}: incoming version_id ${versionId} is too new for local version_id ${spec.version}`,
    );
  }
  if (versionId < spec.minimumVersion) {
    return new StreamFormatError(
      'version-too-old',
      `${spec.name}: incoming version_id ${versionId} is too old for local minimum version_id  ${spec.minimumVersion}`,
    );
  }
  return null;
}

/**
 * Reads a device's fields (QEMU's vmstate_load_state) after checking `versionId`, then refuses
 * any subsection addressed to this device (tabmig devices declare none). The device is written
 * only once every byte has arrived.
 */
export async function loadDeviceState(r: StreamReader, spec: VmsdSpec, store: VmsdStore, versionId: number): Promise<void> {
  const wire = await readDeviceFields(r, spec, versionId);
  decodeDeviceFields(spec, wire, store);
}

/** The version check, the field bytes (a view) and the subsection check, without storing anything. */
export async function readDeviceFields(r: StreamReader, spec: VmsdSpec, versionId: number): Promise<Uint8Array> {
  const bad = checkVmsdVersion(spec, versionId);
  if (bad) throw r.fail(bad);
  const size = deviceWireSize(spec);
  if (!r.has(size)) await r.ensure(size);
  const wire = r.getBytes(size);
  await refuseSubsections(r, spec.name);
  return wire;
}

/**
 * After a vmsd's fields: a subsection (0x05, name, version) whose name starts with the vmsd's
 * name is addressed to it; tabmig devices have none, so such a subsection cannot be loaded.
 * Anything else is left for the caller (normally the section footer).
 */
export async function refuseSubsections(r: StreamReader, vmsdName: string): Promise<void> {
  if (await r.atEnd()) return;
  if (!r.has(1)) await r.ensure(1);
  if (r.peekU8() !== SectionType.SUBSECTION) return;
  if (!r.has(2)) await r.ensure(2);
  const len = r.peekU8(1);
  if (len < vmsdName.length + 1) return;
  if (!r.has(2 + len)) await r.ensure(2 + len);
  const idstr = new TextDecoder().decode(r.getBytes(2 + len).subarray(2));
  if (!idstr.startsWith(vmsdName)) {
    throw r.fail(new StreamFormatError('unknown-subsection', `Subsection '${idstr}' found after the fields of '${vmsdName}', which has no subsections`));
  }
  throw r.fail(new StreamFormatError('unknown-subsection', `VM subsection '${idstr}' in '${vmsdName}' does not exist`));
}

// ---- section framing (savevm.c) ---------------------------------------------------------------------

export interface SectionHeader {
  /** START or FULL. */
  readonly type: typeof SectionType.START | typeof SectionType.FULL;
  readonly sectionId: number;
  /** The section's idstr. */
  readonly name: string;
  readonly instanceId: number;
  readonly versionId: number;
}

function writeSectionHeader(
  w: StreamWriter,
  type: number,
  sectionId: number,
  name: string,
  instanceId: number,
  versionId: number,
): void {
  w.putU8(type);
  w.putBe32(sectionId);
  w.putCountedString(name);
  w.putBe32(instanceId);
  w.putBe32(versionId);
}

/** START of an iterative section (ram): its data follows in this and later PART/END sections. */
export function writeSectionStart(w: StreamWriter, sectionId: number, name: string, instanceId: number, versionId: number): void {
  writeSectionHeader(w, SectionType.START, sectionId, name, instanceId, versionId);
}

/** FULL section: a device's whole state at once. */
export function writeSectionFull(w: StreamWriter, sectionId: number, name: string, instanceId: number, versionId: number): void {
  writeSectionHeader(w, SectionType.FULL, sectionId, name, instanceId, versionId);
}

export function writeSectionPart(w: StreamWriter, sectionId: number): void {
  w.putU8(SectionType.PART);
  w.putBe32(sectionId);
}

export function writeSectionEnd(w: StreamWriter, sectionId: number): void {
  w.putU8(SectionType.END);
  w.putBe32(sectionId);
}

/** The footer after every section's data when send-section-footer is on. */
export function writeSectionFooter(w: StreamWriter, sectionId: number): void {
  w.putU8(SectionType.FOOTER);
  w.putBe32(sectionId);
}

export interface SectionOptions {
  /** Write / expect section footers (QEMU's send-section-footer, on by default). */
  footers?: boolean;
}

/** A whole device section: FULL header, the fields, the footer. */
export function writeDeviceSection(w: StreamWriter, spec: VmsdSpec, store: VmsdStore, sectionId: number, options: SectionOptions = {}): void {
  writeSectionFull(w, sectionId, spec.name, spec.instanceId, spec.version);
  saveDeviceState(w, spec, store);
  if (options.footers ?? true) writeSectionFooter(w, sectionId);
}

/** Reads what follows a START or FULL type byte. */
export async function readSectionStartFull(r: StreamReader, type: SectionHeader['type']): Promise<SectionHeader> {
  if (!r.has(5)) await r.ensure(5);
  const sectionId = r.getBe32();
  const len = r.peekU8();
  if (!r.has(1 + len + 8)) await r.ensure(1 + len + 8);
  const name = r.getCountedString();
  const instanceId = r.getBe32();
  const versionId = r.getBe32();
  return { type, sectionId, name, instanceId, versionId };
}

/** Reads the section id that follows a PART or END type byte. */
export async function readSectionPartEnd(r: StreamReader): Promise<number> {
  return r.readBe32();
}

/** savevm.c's check_section_footer. */
export async function checkSectionFooter(r: StreamReader, sectionId: number, idstr: string): Promise<void> {
  if (!r.has(1)) await r.ensure(1);
  if (r.peekU8() !== SectionType.FOOTER) {
    throw r.fail(new StreamFormatError('missing-footer', `Missing section footer for ${idstr}`));
  }
  if (!r.has(5)) await r.ensure(5);
  r.skip(1);
  const read = r.getBe32();
  if (read !== sectionId) {
    throw r.fail(
      new StreamFormatError(
        'footer-mismatch',
        `Mismatched section id in footer for ${idstr} - read 0x${read.toString(16)} expected 0x${sectionId.toString(16)}`,
      ),
    );
  }
}

export function unknownSectionError(idstr: string, instanceId: number): StreamFormatError {
  return new StreamFormatError(
    'unknown-section',
    `Unknown savevm section or instance '${idstr}' ${instanceId}. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices`,
  );
}

export function unknownSectionIdError(sectionId: number): StreamFormatError {
  return new StreamFormatError('unknown-section-id', `Unknown savevm section ${sectionId}`);
}

export function unknownSectionTypeError(type: number): StreamFormatError {
  return new StreamFormatError('unknown-section-type', `Unknown savevm section type ${type}`);
}

/**
 * Loads a device section's body after its START/FULL header has been read and matched to
 * `spec`: the fields (with vmstate's version checks), then the footer.
 */
export async function loadDeviceSection(
  r: StreamReader,
  spec: VmsdSpec,
  store: VmsdStore,
  header: SectionHeader,
  options: SectionOptions = {},
): Promise<void> {
  const wire = await readDeviceFields(r, spec, header.versionId);
  if (options.footers ?? true) await checkSectionFooter(r, header.sectionId, header.name);
  decodeDeviceFields(spec, wire, store);
}

// ---- globalstate (QEMU's migration/global_state.c) --------------------------------------------------

/** The run state the source had, so the destination can resume as it was (running or paused). */
export const GLOBALSTATE_SPEC: VmsdSpec = {
  name: 'globalstate',
  instanceId: 0,
  version: 1,
  minimumVersion: 1,
  fields: [
    { name: 'size', type: 'uint32' },
    { name: 'runstate', type: 'buffer', size: 100 },
  ],
};

export function encodeGlobalState(runstate: string): Uint8Array {
  const name = new TextEncoder().encode(runstate);
  if (name.length >= 100) throw new RangeError(`runstate name too big: ${runstate}`);
  const buf = new Uint8Array(100);
  buf.set(name);
  return encodeFieldValues(GLOBALSTATE_SPEC, { size: name.length + 1, runstate: buf });
}

export function writeGlobalStateSection(w: StreamWriter, runstate: string, sectionId: number, options: SectionOptions = {}): void {
  writeSectionFull(w, sectionId, GLOBALSTATE_SPEC.name, GLOBALSTATE_SPEC.instanceId, GLOBALSTATE_SPEC.version);
  w.putBytes(encodeGlobalState(runstate));
  if (options.footers ?? true) writeSectionFooter(w, sectionId);
}

/** Reads a globalstate body; `valid` tells which run-state names this side knows. */
export async function loadGlobalState(r: StreamReader, versionId: number, valid: readonly string[]): Promise<string> {
  const wire = await readDeviceFields(r, GLOBALSTATE_SPEC, versionId);
  const values = decodeFieldValues(GLOBALSTATE_SPEC, wire);
  const size = values.size as number;
  const raw = values.runstate as Uint8Array;
  const nul = raw.indexOf(0);
  if (size > raw.length || nul < 0) throw r.fail(new StreamFormatError('bad-value', `globalstate: runstate of size ${size} does not fit in ${raw.length} bytes`));
  const runstate = new TextDecoder().decode(raw.subarray(0, nul));
  if (!valid.includes(runstate)) throw r.fail(new StreamFormatError('bad-value', `globalstate: unknown runstate '${runstate}'`));
  return runstate;
}
