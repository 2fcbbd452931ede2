// What QEMU's own tools (scripts/analyze-migration.py) read to make sense of a saved stream:
// the configuration section near the start and, after EOF, the VM description JSON naming every
// device section and the exact bytes its fields take. The JSON mirrors what QEMU's vmstate.c
// writes: per field name, type, the size of one element and array_len for arrays.

import { StreamFormatError } from './errors.js';
import { CONFIGURATION_VMSD, SectionType, TARGET_PAGE_SIZE } from './format.js';
import type { StreamReader } from './stream-reader.js';
import type { StreamWriter } from './stream-writer.js';
import { elementSize, refuseSubsections, type VmsdSpec } from './vmstate.js';

export interface VmsdFieldDescription {
  readonly name: string;
  readonly type: string;
  /** Bytes of one element. */
  readonly size: number;
  /** Element count, present for arrays only (QEMU's compressed array form). */
  readonly array_len?: number;
}

export interface VmsdDescription {
  readonly vmsd_name: string;
  readonly version: number;
  readonly fields: readonly VmsdFieldDescription[];
  readonly subsections: readonly VmsdDescription[];
}

export interface DeviceDescription extends VmsdDescription {
  /** The section's idstr. */
  readonly name: string;
  readonly instance_id: number;
}

export interface VmDescription {
  readonly page_size: number;
  readonly configuration?: VmsdDescription;
  readonly devices: readonly DeviceDescription[];
}

export function describeFields(spec: Pick<VmsdSpec, 'fields'>): VmsdFieldDescription[] {
  return spec.fields.map((f) => {
    const d: { name: string; type: string; size: number; array_len?: number } = { name: f.name, type: f.type, size: elementSize(f) };
    if ((f.count ?? 1) > 1) d.array_len = f.count;
    return d;
  });
}

/** The entry for one device section, exactly the bytes writeDeviceSection puts between header and footer. */
export function describeDevice(spec: VmsdSpec): DeviceDescription {
  return {
    name: spec.name,
    instance_id: spec.instanceId,
    vmsd_name: spec.name,
    version: spec.version,
    fields: describeFields(spec),
    subsections: [],
  };
}

/** The configuration vmstate: be32 len, then the machine type name (QEMU's vmstate_configuration). */
export function describeConfiguration(machineType: string): VmsdDescription {
  return {
    vmsd_name: CONFIGURATION_VMSD,
    version: 1,
    fields: [
      { name: 'len', type: 'uint32', size: 4 },
      { name: 'name', type: 'buffer', size: new TextEncoder().encode(machineType).length },
    ],
    subsections: [],
  };
}

export interface VmDescriptionInput {
  /** Every device section the stream holds, in stream order (not 'ram'). */
  readonly devices: readonly VmsdSpec[];
  /** The machine type written in the configuration section, to describe it too. */
  readonly machineType?: string;
  /** The guest's target page size (default: TARGET_PAGE_SIZE). */
  readonly pageSize?: number;
}

export function buildVmDescription(input: VmDescriptionInput): VmDescription {
  const configuration = input.machineType !== undefined ? describeConfiguration(input.machineType) : undefined;
  return assembleVmDescription(input.pageSize ?? TARGET_PAGE_SIZE, input.devices.map(describeDevice), configuration);
}

/** The description from entries already described (the savevm loop builds them from its handlers). */
export function assembleVmDescription(pageSize: number, devices: readonly DeviceDescription[], configuration?: VmsdDescription): VmDescription {
  // Key order as QEMU writes it: page_size, configuration, devices.
  return configuration ? { page_size: pageSize, configuration, devices } : { page_size: pageSize, devices };
}

/**
 * The JSON bytes for the VM description. analyze-migration.py finds the JSON by the last NUL
 * byte of the file and the first '{' after it, so a '{' (0x7b) among the length bytes after their
 * last zero would mislead it: pad with a space until the length has none.
 */
export function encodeVmDescription(desc: VmDescription): Uint8Array {
  let text = JSON.stringify(desc);
  for (;;) {
    const bytes = new TextEncoder().encode(text);
    if (!lengthConfusesFinder(bytes.length)) return bytes;
    text += ' ';
  }
}

function lengthConfusesFinder(len: number): boolean {
  const b = [(len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff];
  const lastZero = b.lastIndexOf(0);
  return b.slice(lastZero + 1).includes(0x7b);
}

/** After EOF: 0x06, be32 length, the JSON. */
export function writeVmDescription(w: StreamWriter, desc: VmDescription): void {
  const json = encodeVmDescription(desc);
  w.putU8(SectionType.VMDESCRIPTION);
  w.putBe32(json.length);
  w.putBytes(json);
}

/** Bigger than any description tabmig writes; beyond it the length field is garbage. */
export const VMDESCRIPTION_MAX_BYTES = 16 * 1024 * 1024;

export interface ReadVmDescription {
  readonly json: string;
  readonly description: VmDescription;
}

/**
 * Reads what follows EOF. Returns null when the stream ends right there (QEMU sends no
 * description when it is switched off); refuses anything else that is not a description.
 */
export async function readVmDescription(r: StreamReader): Promise<ReadVmDescription | null> {
  if (await r.atEnd()) return null;
  const type = await r.readU8();
  if (type !== SectionType.VMDESCRIPTION) {
    throw r.fail(new StreamFormatError('bad-vmdescription', `Expected vmdescription section, but got ${type}`));
  }
  const len = await r.readBe32();
  if (len > VMDESCRIPTION_MAX_BYTES) {
    throw r.fail(new StreamFormatError('bad-vmdescription', `VM description of ${len} bytes is larger than ${VMDESCRIPTION_MAX_BYTES}`));
  }
  const bytes = await r.readBytes(len);
  let json: string;
  let description: VmDescription;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    description = JSON.parse(json) as VmDescription;
  } catch (e) {
    throw r.fail(new StreamFormatError('bad-vmdescription', `VM description is not valid JSON: ${(e as Error).message}`));
  }
  if (typeof description !== 'object' || description === null || !Array.isArray(description.devices)) {
    throw r.fail(new StreamFormatError('bad-vmdescription', 'VM description has no devices list'));
  }
  return { json, description };
}

// ---- configuration section -------------------------------------------------------------------------

/** Longest machine type name accepted from a stream. */
export const MACHINE_TYPE_MAX_BYTES = 256;

/** 0x07, then the configuration vmstate: be32 length, the machine type name. */
export function writeConfiguration(w: StreamWriter, machineType: string): void {
  const name = new TextEncoder().encode(machineType);
  if (name.length > MACHINE_TYPE_MAX_BYTES) throw new RangeError(`machine type '${machineType}' is too long`);
  w.putU8(SectionType.CONFIGURATION);
  w.putBe32(name.length);
  w.putBytes(name);
}

/**
 * Reads the configuration vmstate (its 0x07 already consumed) and, given the local machine
 * type, refuses a different one in QEMU's words.
 */
export async function readConfiguration(r: StreamReader, localMachineType?: string): Promise<string> {
  const len = await r.readBe32();
  if (len > MACHINE_TYPE_MAX_BYTES) {
    throw r.fail(new StreamFormatError('too-large', `configuration: machine type name of ${len} bytes is too long`));
  }
  const bytes = await r.readBytes(len);
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw r.fail(new StreamFormatError('bad-value', 'configuration: machine type name is not valid UTF-8'));
  }
  await refuseSubsections(r, CONFIGURATION_VMSD);
  if (localMachineType !== undefined && name !== localMachineType) {
    throw r.fail(new StreamFormatError('machine-mismatch', `Machine type received is '${name}' and local is '${localMachineType}'`));
  }
  return name;
}
