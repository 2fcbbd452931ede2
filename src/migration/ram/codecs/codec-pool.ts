// A pool of codec workers (QEMU's compress_threads / decompress_threads): jobs go to the worker
// with the fewest outstanding, answers come back as promises. The callers keep record order
// themselves (the page sender chains them; the RAM loader waits for every page of a part).

import type { FromCodec, ToCodec } from './codec-protocol.js';

interface Job {
  resolve(v: FromCodec): void;
  reject(e: Error): void;
  worker: number;
}

export class CodecPool {
  private readonly workers: Worker[] = [];
  private readonly outstanding: number[];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  /** Jobs submitted while every worker already had one (QEMU's compression "busy"). */
  busy = 0;
  submitted = 0;

  constructor(size: number, init: Omit<Extract<ToCodec, { type: 'init' }>, 'type'>, makeWorker: () => Worker = defaultWorker) {
    this.outstanding = new Array<number>(size).fill(0);
    for (let i = 0; i < size; i++) {
      const w = makeWorker();
      w.onmessage = (e: MessageEvent<FromCodec>) => this.answer(i, e.data);
      w.onerror = (e) => this.failAll(new Error(`codec worker failed: ${e.message}`));
      w.postMessage({ type: 'init', ...init } satisfies ToCodec);
      this.workers.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Jobs not answered yet. */
  get pending(): number {
    return this.jobs.size;
  }

  /** zlib of one page; resolves to the zlib bytes, or null when the page should go plain. */
  async compress(page: Uint8Array): Promise<Uint8Array | null> {
    const buf = page.byteOffset === 0 && page.byteLength === page.buffer.byteLength ? (page.buffer as ArrayBuffer) : page.slice().buffer;
    const r = await this.submit((id) => ({ type: 'compress', id, page: buf }), [buf]);
    if (r.type !== 'compressed') throw new Error('codec worker answered out of turn');
    return r.bytes ? new Uint8Array(r.bytes) : null;
  }

  /** Inflates into the shared guest RAM at `offset`. */
  async decompress(offset: number, data: Uint8Array): Promise<void> {
    const buf = data.slice().buffer;
    await this.submit((id) => ({ type: 'decompress', id, offset, data: buf }), [buf]);
  }

  terminate(): void {
    this.failAll(new Error('codec pool terminated'));
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }

  private submit(make: (id: number) => ToCodec, transfer: Transferable[]): Promise<FromCodec> {
    if (this.workers.length === 0) return Promise.reject(new Error('codec pool terminated'));
    const id = this.nextId++;
    let best = 0;
    for (let i = 1; i < this.outstanding.length; i++) if (this.outstanding[i]! < this.outstanding[best]!) best = i;
    this.submitted++;
    if (this.outstanding[best]! > 0) this.busy++;
    this.outstanding[best]!++;
    return new Promise<FromCodec>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, worker: best });
      this.workers[best]!.postMessage(make(id), transfer);
    });
  }

  private answer(_worker: number, m: FromCodec): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    this.jobs.delete(m.id);
    this.outstanding[job.worker]!--;
    if (m.type === 'error') {
      const e = new Error(m.error.message);
      e.name = m.error.name;
      job.reject(e);
    } else job.resolve(m);
  }

  private failAll(e: Error): void {
    for (const [, job] of this.jobs) job.reject(e);
    this.jobs.clear();
    this.outstanding.fill(0);
  }
}

function defaultWorker(): Worker {
  return new Worker(new URL('./codec.worker.ts', import.meta.url), { type: 'module', name: 'codec' });
}
