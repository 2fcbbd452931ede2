// QEMU 3.0's multifd wire format (migration/ram.c, x-multifd): each extra channel opens with an
// initial packet naming itself, then carries packets of up to x-multifd-page-count pages: a
// header with the block name and one be64 offset per slot, then the used pages' bytes. A packet
// flagged SYNC ends a round on its channel; the main stream's MULTIFD_FLUSH record says every
// channel has been synced up to there. All integers big-endian; the structs are packed.
//
//   MultiFDInit_t    be32 magic 0x11223344, be32 version 1, 16 bytes uuid, u8 channel id,
//                    7 bytes unused, 4 × be64 unused                          (64 bytes)
//   MultiFDPacket_t  be32 magic, be32 version, be32 flags, be32 size (slots), be32 used,
//                    be64 packet number, 256 bytes block name (NUL padded), size × be64 offset
//   then             used × page bytes

export const MULTIFD_MAGIC = 0x11223344;
export const MULTIFD_VERSION = 1;
export const MULTIFD_FLAG_SYNC = 1;
export const MULTIFD_INIT_BYTES = 4 + 4 + 16 + 1 + 7 + 32;
export const MULTIFD_RAMBLOCK_BYTES = 256;
export const MULTIFD_PACKET_FIXED = 4 + 4 + 4 + 4 + 4 + 8 + MULTIFD_RAMBLOCK_BYTES;

export class MultifdError extends Error {
  override name = 'MultifdError';
}

export interface MultifdInit {
  uuid: Uint8Array;
  id: number;
}

export function encodeInit(init: MultifdInit): Uint8Array {
  const b = new Uint8Array(MULTIFD_INIT_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, MULTIFD_MAGIC);
  v.setUint32(4, MULTIFD_VERSION);
  if (init.uuid.length !== 16) throw new RangeError('multifd: a uuid is 16 bytes');
  b.set(init.uuid, 8);
  if (!Number.isInteger(init.id) || init.id < 0 || init.id > 255) throw new RangeError(`multifd: channel id ${init.id}`);
  b[24] = init.id;
  return b;
}

/** QEMU's multifd_recv_initial_packet checks, with its texts. */
export function decodeInit(b: Uint8Array, channels: number): MultifdInit {
  if (b.length < MULTIFD_INIT_BYTES) throw new MultifdError('multifd: short initial packet');
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const magic = v.getUint32(0);
  if (magic !== MULTIFD_MAGIC) throw new MultifdError(`multifd: received packet magic ${magic.toString(16)} expected ${MULTIFD_MAGIC.toString(16)}`);
  const version = v.getUint32(4);
  if (version !== MULTIFD_VERSION) throw new MultifdError(`multifd: received packet version ${version} expected ${MULTIFD_VERSION}`);
  const id = b[24]!;
  if (id >= channels) throw new MultifdError(`multifd: received channel version ${id} expected ${channels}`);
  return { uuid: b.slice(8, 24), id };
}

export interface MultifdPacketHeader {
  flags: number;
  /** Offset slots in the packet (x-multifd-page-count). */
  size: number;
  /** Pages that follow. */
  used: number;
  packetNum: number;
  block: string;
  offsets: number[];
}

export function packetHeaderBytes(size: number): number {
  return MULTIFD_PACKET_FIXED + 8 * size;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodePacketHeader(h: MultifdPacketHeader): Uint8Array {
  if (h.used > h.size || h.offsets.length !== h.used) throw new RangeError('multifd: used pages must fit the packet and have offsets');
  const b = new Uint8Array(packetHeaderBytes(h.size));
  const v = new DataView(b.buffer);
  v.setUint32(0, MULTIFD_MAGIC);
  v.setUint32(4, MULTIFD_VERSION);
  v.setUint32(8, h.flags);
  v.setUint32(12, h.size);
  v.setUint32(16, h.used);
  v.setUint32(20, Math.floor(h.packetNum / 2 ** 32));
  v.setUint32(24, h.packetNum >>> 0);
  const name = enc.encode(h.block);
  if (name.length >= MULTIFD_RAMBLOCK_BYTES) throw new RangeError('multifd: block name too long');
  b.set(name, 28);
  h.offsets.forEach((o, i) => {
    v.setUint32(MULTIFD_PACKET_FIXED + 8 * i, Math.floor(o / 2 ** 32));
    v.setUint32(MULTIFD_PACKET_FIXED + 8 * i + 4, o >>> 0);
  });
  return b;
}

/** The fixed part (before the offsets): what the reader needs to know how much follows. */
export function decodePacketFixed(b: Uint8Array, maxSize: number): Omit<MultifdPacketHeader, 'offsets'> {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const magic = v.getUint32(0);
  if (magic !== MULTIFD_MAGIC) throw new MultifdError(`multifd: received packet magic ${magic.toString(16)} expected ${MULTIFD_MAGIC.toString(16)}`);
  const version = v.getUint32(4);
  if (version !== MULTIFD_VERSION) throw new MultifdError(`multifd: received packet version ${version} expected ${MULTIFD_VERSION}`);
  const flags = v.getUint32(8);
  const size = v.getUint32(12);
  if (size > maxSize) throw new MultifdError(`multifd: received packet with size ${size} and expected maximum size ${maxSize}`);
  const used = v.getUint32(16);
  if (used > size) throw new MultifdError(`multifd: received packet with ${used} pages and expected maximum pages are ${size}`);
  const packetNum = v.getUint32(20) * 2 ** 32 + v.getUint32(24);
  const raw = b.subarray(28, 28 + MULTIFD_RAMBLOCK_BYTES);
  const nul = raw.indexOf(0);
  const block = dec.decode(nul < 0 ? raw : raw.subarray(0, nul));
  return { flags, size, used, packetNum, block };
}

/** The offsets of the used pages, checked against the block (QEMU: "offset ... outside"). */
export function decodeOffsets(b: Uint8Array, used: number, blockLength: number, pageSize: number): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const out: number[] = [];
  for (let i = 0; i < used; i++) {
    const o = v.getUint32(8 * i) * 2 ** 32 + v.getUint32(8 * i + 4);
    if (o % pageSize !== 0 || o > blockLength - pageSize) throw new MultifdError(`multifd: offset[${i}] (${o}) is outside the RAM block`);
    out.push(o);
  }
  return out;
}
