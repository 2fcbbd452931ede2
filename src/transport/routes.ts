// Which channels a migration connection has, and how each one reaches the worker that uses it.
// Shared by the WebRTC and loopback transports so a worker receives the same message either way.

import type { TransferableChannel } from './channel.js';

/**
 * Negotiated channel ids, the same on both sides (QEMU keeps the return path and the postcopy
 * preempt channel beside the main stream; multifd channels follow).
 */
export const CHANNEL = {
  /** source → destination: the migration stream. */
  main: 0,
  /** destination → source: return-path messages. */
  returnPath: 1,
  /** source → destination: urgent pages in postcopy (QEMU's postcopy preempt channel). */
  postcopy: 2,
  /**
   * source ⇄ destination: the switchover handshake and its round-trip probes, worker to worker
   * (control-channel.ts), so no main thread sits on the guest's downtime.
   */
  switchover: 3,
  /** first multifd channel; multifd channel n is multifdBase + n. */
  multifdBase: 4,
} as const;

export type ChannelId = number;

/** Default label for a channel id (labels are informational; ids are what match). */
export function channelLabel(id: ChannelId): string {
  switch (id) {
    case CHANNEL.main:
      return 'main';
    case CHANNEL.returnPath:
      return 'return-path';
    case CHANNEL.postcopy:
      return 'postcopy';
    case CHANNEL.switchover:
      return 'switchover';
    default:
      return id >= CHANNEL.multifdBase ? `multifd-${id - CHANNEL.multifdBase}` : `channel-${id}`;
  }
}

/** Anything with postMessage(message, transfer): a Worker, a MessagePort, a DedicatedWorkerGlobalScope. */
export interface ChannelTarget {
  postMessage(message: unknown, transfer: Transferable[]): void;
}

/** Facts about a channel handed to a route's message builder. */
export interface ChannelInfo {
  id: ChannelId;
  label: string;
  /** Identifies the connection (one per connect/accept) so a worker can tell attempts apart. */
  connection: string;
  /** 'webrtc' or 'loopback'. */
  transport: 'webrtc' | 'loopback';
}

/** The default message posted with a channel. */
export interface ChannelMessage extends ChannelInfo {
  type: 'tabmig-channel';
  channel: TransferableChannel;
}

export interface ChannelRoute {
  id: ChannelId;
  /** Defaults to channelLabel(id). */
  label?: string;
  /**
   * Where the channel goes, transferred in the same task that created it. Omitted: the channel
   * stays on this thread and is returned in the connection's `channels` map.
   */
  to?: ChannelTarget;
  /**
   * Builds the message posted to `to`; the channel must be somewhere inside it (it is also put in
   * the transfer list). Default: a ChannelMessage.
   */
  message?: (channel: TransferableChannel, info: ChannelInfo) => unknown;
}

/** Posts a freshly created channel along its route (synchronously: see DESIGN §3). */
export function deliverChannel(route: ChannelRoute, channel: TransferableChannel, info: ChannelInfo): boolean {
  if (!route.to) return false;
  const message = route.message ? route.message(channel, info) : ({ type: 'tabmig-channel', ...info, channel } satisfies ChannelMessage);
  route.to.postMessage(message, [channel as Transferable]);
  return true;
}

/** Checks a route list: ids are non-negative integers below 1024 and unique. */
export function checkRoutes(routes: readonly ChannelRoute[]): void {
  const seen = new Set<number>();
  for (const r of routes) {
    if (!Number.isInteger(r.id) || r.id < 0 || r.id > 1023) throw new RangeError(`invalid channel id ${r.id}`);
    if (seen.has(r.id)) throw new RangeError(`channel id ${r.id} routed twice`);
    seen.add(r.id);
  }
}

/** True if a worker message is a channel delivered with the default message shape. */
export function isChannelMessage(data: unknown): data is ChannelMessage {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'tabmig-channel';
}
