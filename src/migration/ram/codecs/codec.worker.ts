// One codec worker of the pool (QEMU's compress / decompress threads): zlib a page for the
// source, or inflate one straight into the destination's shared guest RAM.

import type { FromCodec, ToCodec } from './codec-protocol.js';
import { compressPage, decompressPage } from './zlib-page.js';

let ram: Uint8Array | null = null;
let pageSize = 4096;
let level = 1;

const post = (m: FromCodec, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

self.onmessage = (e: MessageEvent<ToCodec>) => {
  const m = e.data;
  try {
    switch (m.type) {
      case 'init':
        ram = m.ram ? new Uint8Array(m.ram) : null;
        pageSize = m.pageSize;
        level = m.level;
        return;
      case 'compress': {
        const z = compressPage(new Uint8Array(m.page), level);
        const bytes = z ? (z.byteOffset === 0 && z.byteLength === z.buffer.byteLength ? (z.buffer as ArrayBuffer) : z.slice().buffer) : null;
        post({ type: 'compressed', id: m.id, bytes }, bytes ? [bytes] : []);
        return;
      }
      case 'decompress': {
        if (!ram) throw new Error('decompress worker has no guest RAM');
        if (m.offset < 0 || m.offset + pageSize > ram.length) throw new Error(`page offset ${m.offset} outside RAM`);
        decompressPage(new Uint8Array(m.data), ram.subarray(m.offset, m.offset + pageSize));
        post({ type: 'decompressed', id: m.id });
        return;
      }
    }
  } catch (err) {
    const e2 = err instanceof Error ? err : new Error(String(err));
    post({ type: 'error', id: 'id' in m ? m.id : -1, error: { name: e2.name, message: e2.message } });
  }
};
