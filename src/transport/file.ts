// `file:NAME`: a migration stream as a file the user downloads, or picks / drops to load.
// The sink and the source work in workers; only downloadBlob needs the main thread's document.

import type { ByteSource, CommitSink } from './bytes.js';
import { ChannelClosedError } from './channel.js';

/** Collects a stream into a Blob; `blob` is set by commit(). */
export class BlobSink implements CommitSink {
  blob: Blob | null = null;
  bytesWritten = 0;
  private parts: BlobPart[] = [];
  private partsBytes = 0;
  private acc: Blob;
  private state: 'open' | 'done' = 'open';

  constructor(
    readonly name: string,
    private readonly type = 'application/octet-stream',
  ) {
    this.acc = new Blob([], { type });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new ChannelClosedError(`file:${this.name}`, 'closed', 'local');
    // Copy: the writer may reuse its buffer, and a SharedArrayBuffer view cannot go in a Blob.
    this.parts.push(chunk.slice());
    this.partsBytes += chunk.byteLength;
    this.bytesWritten += chunk.byteLength;
    // Fold parts into the Blob now and then so the browser can move them out of the JS heap.
    if (this.partsBytes >= 8 << 20) this.fold();
  }

  private fold(): void {
    this.acc = new Blob([this.acc, ...this.parts], { type: this.type });
    this.parts = [];
    this.partsBytes = 0;
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new ChannelClosedError(`file:${this.name}`, 'closed', 'local');
    this.fold();
    this.state = 'done';
    this.blob = this.acc;
  }

  async abort(): Promise<void> {
    this.state = 'done';
    this.parts = [];
    this.acc = new Blob([]);
  }
}

/** Reads a Blob or File back as chunks of chunkSize bytes. */
export function blobSource(blob: Blob, chunkSize = 1024 * 1024): ByteSource & { readonly size: number; readonly bytesRead: number } {
  let at = 0;
  return {
    size: blob.size,
    get bytesRead() {
      return at;
    },
    async read() {
      if (at >= blob.size) return null;
      const piece = new Uint8Array(await blob.slice(at, at + chunkSize).arrayBuffer());
      at += piece.byteLength;
      return piece;
    },
  };
}

/** Offers a Blob as a download named `filename` (main thread only). */
export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own reference by now; revoke later to be safe on slow starts.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
