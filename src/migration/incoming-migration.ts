// One incoming migration, seen from the main thread: listens on the URI, hands the channels (or
// the saved stream) to incoming.worker, and when the whole stream has loaded decides the guest's
// runstate as QEMU does (process_incoming_migration_bh). On any failure the guest never starts.

import type { Machine } from '../guest/machine.js';
import { RUN_STATES, type RunState } from '../guest/runstate.js';
import { listenLoopback } from '../transport/loopback.js';
import type { ChannelRoute } from '../transport/routes.js';
import type { Signaling } from '../transport/signaling.js';
import type { MigrationUri } from '../transport/uri.js';
import { acceptFromPeer } from '../transport/webrtc.js';
import type { FromIncoming, IncomingStart, StreamSourceSpec } from './destination/incoming-protocol.js';
import type { MigrationOptions } from './options.js';

export interface IncomingHooks {
  /** The incoming status moved (setup → active → completed / failed). */
  status(to: 'setup' | 'active' | 'completed' | 'failed', error?: string): void;
  log(text: string): void;
  progress(bytes: number, pages: number): void;
  /** QEMU's autostart: whether a guest that was running at the source starts running here. */
  autostart(): boolean;
}

interface Closable {
  close(reason?: string): unknown;
}

export class IncomingMigration {
  private readonly worker: Worker;
  private link: Closable | null = null;
  private listener: { close(): void } | { cancel(reason?: string): void } | null = null;
  private done = false;

  constructor(
    private readonly machine: Machine,
    private readonly options: MigrationOptions,
    private readonly uri: MigrationUri,
    private readonly signaling: Signaling | null,
    private readonly machineType: string,
    private readonly hooks: IncomingHooks,
    private readonly file?: Blob,
  ) {
    this.worker = new Worker(new URL('./destination/incoming.worker.ts', import.meta.url), { type: 'module', name: 'incoming' });
    this.worker.onmessage = (e: MessageEvent<FromIncoming>) => this.onWorker(e.data);
  }

  /** Starts listening (or reading a saved stream). Throws QEMU-style errors for a bad URI. */
  start(): void {
    let source: StreamSourceSpec;
    switch (this.uri.kind) {
      case 'idb':
        source = { kind: 'idb', name: this.uri.name };
        break;
      case 'file':
        if (!this.file) throw new Error(`file:${this.uri.name} must be picked or dropped on the page to be loaded`);
        source = { kind: 'file', name: this.uri.name, blob: this.file };
        break;
      default:
        source = { kind: 'channel' };
    }
    const routes: ChannelRoute[] = [
      { id: 0, to: this.worker },
      { id: 1, to: this.worker },
    ];
    if (this.uri.kind === 'loopback') {
      const l = listenLoopback(this.uri.name, { routes });
      this.listener = l;
      l.connection.then((link) => this.connected(link)).catch(() => {});
    } else if (this.uri.kind === 'webrtc') {
      if (!this.signaling) throw new Error('WebRTC signaling is not available in this page');
      const acc = acceptFromPeer(this.signaling, { routes, from: this.uri.peer, info: { ramSize: this.machine.ramSize } });
      this.listener = acc;
      acc.connection
        .then((link) => {
          this.connected(link);
          link.closed.then((info) => {
            if (!this.done) this.worker.postMessage({ type: 'cancel', reason: info.reason });
          });
        })
        .catch((e: unknown) => this.fail(e instanceof Error ? e.message : String(e)));
    }
    const start: IncomingStart = {
      type: 'start',
      ram: this.machine.ram,
      deviceState: this.machine.deviceState.buffer,
      options: this.options.toPlain(),
      source,
      machineType: this.machineType,
    };
    this.worker.postMessage(start);
    this.hooks.status('setup');
    if (source.kind !== 'channel') this.hooks.status('active');
  }

  private connected(link: Closable): void {
    this.link = link;
    if (this.done) link.close('migration ended');
    else this.hooks.status('active');
  }

  /** Frees the worker of an incoming migration that never started (its URI was refused). */
  dispose(): void {
    this.done = true;
    this.worker.terminate();
  }

  /** Stops waiting (the tab is being turned back into a normal one, or closed). */
  cancel(reason: string): void {
    if (this.done) return;
    if (this.listener && 'close' in this.listener) this.listener.close();
    if (this.listener && 'cancel' in this.listener) this.listener.cancel(reason);
    this.worker.postMessage({ type: 'cancel', reason });
  }

  private onWorker(msg: FromIncoming): void {
    switch (msg.type) {
      case 'progress':
        this.hooks.progress(msg.bytes, msg.pages);
        return;
      case 'command':
        this.hooks.log(`stream command ${msg.name}${msg.value !== undefined ? ` ${msg.value}` : ''}`);
        return;
      case 'loaded':
        this.hooks.progress(msg.bytes, 0); // a short migration may end before the first progress tick
        this.loaded(msg.runstate);
        return;
      case 'failed':
        this.fail(msg.message);
        return;
    }
  }

  private loaded(globalRunstate: string | null): void {
    if (this.done) return;
    this.done = true;
    // RAM and device state changed under the vCPU: it must reload both before running.
    this.machine.control.bumpGeneration();
    this.hooks.status('completed');
    let next: RunState;
    if (globalRunstate === null || globalRunstate === 'running') next = this.hooks.autostart() ? 'running' : 'paused';
    else next = (RUN_STATES as readonly string[]).includes(globalRunstate) ? (globalRunstate as RunState) : 'paused';
    this.machine.setRunstate(next);
    this.finish();
  }

  private fail(message: string): void {
    if (this.done) return;
    this.done = true;
    this.hooks.status('failed', message);
    this.finish();
  }

  private finish(): void {
    setTimeout(() => this.link?.close('migration ended'), 1500);
    setTimeout(() => this.worker.terminate(), 2000);
  }
}
