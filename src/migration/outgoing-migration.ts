// One outgoing migration, seen from the main thread: opens the transport, starts the migration
// and return-path workers with the shared buffers, and turns what they report into status
// changes, runstate changes and errors. The heavy lifting is in source/migration-thread.ts.

import type { Machine } from '../guest/machine.js';
import type { RunState } from '../guest/runstate.js';
import { connectLoopback } from '../transport/loopback.js';
import type { ChannelRoute } from '../transport/routes.js';
import type { Signaling } from '../transport/signaling.js';
import type { MigrationUri } from '../transport/uri.js';
import { connectToPeer } from '../transport/webrtc.js';
import { MigWord, type MigrationBlock } from './migration-block.js';
import type { MigrationOptions } from './options.js';
import type { FromReturnPath, FromSource, StreamTarget, ToSource } from './source/source-protocol.js';
import { isFinished, type MigrationStatus } from './state.js';

export interface OutgoingHooks {
  /** A status change made by a worker (already applied to the block). */
  status(from: MigrationStatus, to: MigrationStatus, error?: string): void;
  /** The first error of this migration (QEMU keeps only the first). */
  error(message: string): void;
  /** A return-path message or other progress worth showing in the event log. */
  log(text: string): void;
  /** A `file:` migration finished: the page offers the stream as a download. */
  file(name: string, blob: Blob): void;
}

interface Closable {
  close(reason?: string): unknown;
}

export class OutgoingMigration {
  private readonly worker: Worker;
  private readonly rpWorker: Worker | null;
  private link: Closable | null = null;
  private ended = false;

  constructor(
    private readonly machine: Machine,
    private readonly block: MigrationBlock,
    private readonly options: MigrationOptions,
    private readonly uri: MigrationUri,
    private readonly signaling: Signaling | null,
    private readonly machineType: string,
    private readonly hooks: OutgoingHooks,
  ) {
    this.worker = new Worker(new URL('./source/migration.worker.ts', import.meta.url), { type: 'module', name: 'migration' });
    this.worker.onmessage = (e: MessageEvent<FromSource>) => this.onWorker(e.data);
    const rp = this.usesReturnPath;
    this.rpWorker = rp ? new Worker(new URL('./source/return-path.worker.ts', import.meta.url), { type: 'module', name: 'return-path' }) : null;
    if (this.rpWorker) {
      this.rpWorker.onmessage = (e: MessageEvent<FromReturnPath>) => this.onReturnPath(e.data);
      this.rpWorker.postMessage({ type: 'start', block: block.buffer });
    }
  }

  /** A return path needs a peer that can answer: never for a saved stream. */
  private get usesReturnPath(): boolean {
    return this.options.useReturnPath && (this.uri.kind === 'webrtc' || this.uri.kind === 'loopback');
  }

  /** Starts the worker and, for a peer, connects; failures surface as a failed migration. */
  async start(): Promise<void> {
    const target: StreamTarget =
      this.uri.kind === 'idb' ? { kind: 'idb', name: this.uri.name } : this.uri.kind === 'file' ? { kind: 'file', name: this.uri.name } : { kind: 'channel' };
    const msg: ToSource = {
      type: 'start',
      ram: this.machine.ram,
      dirtyLog: this.machine.dirtyLog,
      control: this.machine.control.buffer,
      deviceState: this.machine.deviceState.buffer,
      block: this.block.buffer,
      options: this.options.toPlain(),
      target,
      machineType: this.machineType,
      returnPath: this.usesReturnPath,
    };
    this.worker.postMessage(msg);
    if (target.kind !== 'channel') return;
    const routes: ChannelRoute[] = [
      { id: 0, to: this.worker },
      this.rpWorker ? { id: 1, to: this.rpWorker } : { id: 1 },
    ];
    try {
      if (this.uri.kind === 'loopback') {
        const link = connectLoopback(this.uri.name, { routes });
        this.link = link;
        // As for WebRTC below: a destination that gives up (a stream it refused, say) closes the
        // link, which is all the source learns, since the channel ports live in workers and their
        // 'close' event is not reliable. Without this the source waited for ever on a back-pressured
        // write to a destination that had stopped reading (QEMU's source sees the socket close).
        const name = this.uri.name;
        link.closed.then((info) => {
          if (!this.ended) this.failFromOutside(`Connection to loopback:${name} closed by the destination: ${info.reason}`);
        });
      } else if (this.uri.kind === 'webrtc') {
        if (!this.signaling) throw new Error('WebRTC signaling is not available in this page');
        const link = await connectToPeer(this.signaling, this.uri.peer!, { routes, info: { ramSize: this.machine.ramSize } });
        this.link = link;
        link.closed.then((info) => {
          if (!this.ended) this.failFromOutside(`Connection to peer ${this.uri.kind === 'webrtc' ? this.uri.peer : ''} lost: ${info.reason}`);
        });
      }
      if (this.ended) this.link?.close('migration ended');
    } catch (e) {
      this.failFromOutside(e instanceof Error ? e.message : String(e));
    }
  }

  setDowntimeLimit(ms: number): void {
    this.worker.postMessage({ type: 'set-downtime-limit', ms } satisfies ToSource);
  }

  setRateLimit(bytesPerSecond: number): void {
    this.worker.postMessage({ type: 'set-rate-limit', bytesPerSecond } satisfies ToSource);
  }

  /** migrate_cancel (the caller already moved the status to 'cancelling'). */
  cancel(): void {
    this.block.bumpWord(MigWord.CONTINUE); // wake a pre-switchover pause
    this.worker.postMessage({ type: 'cancel' } satisfies ToSource);
    // Nothing is connected yet: no worker is running the migration, so finish it here.
    if (!this.link && this.uri.kind !== 'idb' && this.uri.kind !== 'file') {
      this.teardown();
      if (this.block.compareAndSet('cancelling', 'cancelled')) this.hooks.status('cancelling', 'cancelled');
    }
  }

  /** A failure the workers cannot see (the connection never came up, or broke). */
  private failFromOutside(message: string): void {
    this.hooks.error(message);
    for (;;) {
      const s = this.block.status;
      if (isFinished(s) || s === 'cancelling') return;
      if (this.block.compareAndSet(s, 'failed')) {
        this.hooks.status(s, 'failed', message);
        this.worker.postMessage({ type: 'cancel' } satisfies ToSource);
        if (!this.link) this.teardown();
        return;
      }
    }
  }

  private onWorker(msg: FromSource): void {
    switch (msg.type) {
      case 'status':
        if (msg.error) this.hooks.error(msg.error);
        this.hooks.status(msg.from, msg.to, msg.error);
        return;
      case 'runstate':
        this.machine.noteRunstate(msg.from as RunState);
        return;
      case 'file':
        this.hooks.file(msg.name, msg.blob);
        this.hooks.log(`saved ${msg.blob.size} bytes as file ${msg.name}`);
        return;
      case 'finished':
        this.teardown();
        return;
    }
  }

  private onReturnPath(msg: FromReturnPath): void {
    if (msg.type === 'rp-error') this.hooks.error(msg.message);
    else this.hooks.log(`return path: ${msg.name}${msg.value !== undefined ? ` ${msg.value}` : ''}`);
  }

  private teardown(): void {
    if (this.ended) return;
    this.ended = true;
    const completed = this.block.status === 'completed';
    // Give the last bytes time to leave on success; drop the link at once on failure.
    setTimeout(() => this.link?.close(completed ? 'migration completed' : 'migration ended'), completed ? 2000 : 0);
    setTimeout(() => {
      this.worker.terminate();
      this.rpWorker?.terminate();
    }, completed ? 2500 : 100);
  }
}
