// `loopback:NAME`: two machines in one page joined by MessageChannels, one per channel id, so
// tests (and a demo) can migrate without WebRTC. The incoming side listens on NAME; the outgoing
// side connects to it; each side's channels go along its own routes (ports transfer to workers at
// any time, unlike data channels). A listener accepts one connection, as QEMU's -incoming does.

import { TransportError, type CloseInfo } from './channel.js';
import { channelLabel, checkRoutes, deliverChannel, type ChannelId, type ChannelRoute } from './routes.js';

export interface LoopbackLink {
  readonly uri: string;
  /** What the other side said when it connected (its `info`, as WebRTC's hello carries it). */
  readonly remote: { info?: unknown };
  /** Channels whose route had no `to`, kept on this thread (wrap them with fromMessagePort). */
  readonly channels: ReadonlyMap<ChannelId, MessagePort>;
  /** Resolves when either side closes the link (ok=true) or the page loses the other side. */
  readonly closed: Promise<CloseInfo>;
  /** Small application messages to the other side's link (the switchover handshake uses them). */
  sendControl(data: unknown): void;
  oncontrol: ((data: unknown) => void) | null;
  /** Tells the other side's link; channels already handed to workers are theirs to close. */
  close(reason?: string): void;
  /**
   * Fault tests: the link breaks as a network would, without a polite close: both sides see a
   * lost connection (ok=false). (The data channels live in workers; each side's migration
   * code shuts its own down when it hears of the loss, as it does for a real one.)
   */
  drop(): void;
}

export interface LoopbackIncoming {
  readonly name: string;
  /** Resolves with the link when a source connects; rejects if the listener is closed first. */
  readonly connection: Promise<LoopbackLink>;
  /** Stops listening (no effect on an accepted link). */
  close(): void;
}

interface Listener {
  routes: readonly ChannelRoute[];
  accept(ports: Map<ChannelId, MessagePort>, control: MessagePort, connection: string, info: unknown): void;
}

const listeners = new Map<string, Listener>();
let nextConnection = 1;

type LoopbackControl = { t: 'close'; reason: string } | { t: 'lost' } | { t: 'app'; data: unknown };

const LOST: CloseInfo = { ok: false, by: 'transport', reason: 'connection to peer lost' };

function makeLink(uri: string, kept: Map<ChannelId, MessagePort>, control: MessagePort, info?: unknown): LoopbackLink {
  let resolveClosed!: (i: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((r) => (resolveClosed = r));
  let done = false;
  const finish = (info: CloseInfo) => {
    if (done) return;
    done = true;
    control.close();
    resolveClosed(info);
  };
  const link: LoopbackLink = {
    uri,
    remote: info === undefined ? {} : { info },
    channels: kept,
    closed,
    oncontrol: null,
    sendControl(data: unknown) {
      if (!done) control.postMessage({ t: 'app', data } satisfies LoopbackControl);
    },
    close(reason = 'closed') {
      if (done) return;
      control.postMessage({ t: 'close', reason } satisfies LoopbackControl);
      finish({ ok: true, by: 'local', reason });
    },
    drop() {
      if (done) return;
      control.postMessage({ t: 'lost' } satisfies LoopbackControl);
      finish(LOST);
    },
  };
  control.onmessage = (e: MessageEvent<LoopbackControl>) => {
    const m = e.data;
    if (m.t === 'app') link.oncontrol?.(m.data);
    else if (m.t === 'close') finish({ ok: true, by: 'remote', reason: m.reason });
    else finish(LOST);
  };
  control.addEventListener('close', () => finish(LOST));
  return link;
}



/** Starts listening on loopback:NAME. Throws if something already listens there. */
export function listenLoopback(name: string, opts: { routes: readonly ChannelRoute[] }): LoopbackIncoming {
  checkRoutes(opts.routes);
  if (listeners.has(name)) throw new TransportError(`Failed to listen on 'loopback:${name}': Address already in use`);
  let resolve!: (l: LoopbackLink) => void;
  let reject!: (e: unknown) => void;
  const connection = new Promise<LoopbackLink>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  connection.catch(() => {});
  const listener: Listener = {
    routes: opts.routes,
    accept(ports, control, conn, info) {
      listeners.delete(name);
      const kept = new Map<ChannelId, MessagePort>();
      for (const [id, port] of ports) {
        const route = opts.routes.find((r) => r.id === id) ?? { id };
        const label = route.label ?? channelLabel(id);
        if (!deliverChannel(route, port, { id, label, connection: conn, transport: 'loopback' })) kept.set(id, port);
      }
      resolve(makeLink(`loopback:${name}`, kept, control, info));
    },
  };
  listeners.set(name, listener);
  return {
    name,
    connection,
    close() {
      if (listeners.get(name) !== listener) return;
      listeners.delete(name);
      reject(new TransportError(`stopped listening on 'loopback:${name}'`));
    },
  };
}

/**
 * Connects to loopback:NAME. One MessageChannel per channel id named by either side's routes;
 * this side's ends go along `routes`, the listener's along its own; the listener's link sees
 * `info` as its remote's. Throws if nobody listens.
 */
export function connectLoopback(name: string, opts: { routes: readonly ChannelRoute[]; info?: unknown }): LoopbackLink {
  checkRoutes(opts.routes);
  const listener = listeners.get(name);
  if (!listener) throw new TransportError(`Failed to connect to 'loopback:${name}': Connection refused`);
  const ids = [...new Set([...opts.routes.map((r) => r.id), ...listener.routes.map((r) => r.id)])].sort((a, b) => a - b);
  const conn = `loopback-${nextConnection++}`;
  const mine = new Map<ChannelId, MessagePort>();
  const theirs = new Map<ChannelId, MessagePort>();
  for (const id of ids) {
    const mc = new MessageChannel();
    mine.set(id, mc.port1);
    theirs.set(id, mc.port2);
  }
  const control = new MessageChannel();
  listener.accept(theirs, control.port2, conn, opts.info);
  const kept = new Map<ChannelId, MessagePort>();
  for (const [id, port] of mine) {
    const route = opts.routes.find((r) => r.id === id) ?? { id };
    const label = route.label ?? channelLabel(id);
    if (!deliverChannel(route, port, { id, label, connection: conn, transport: 'loopback' })) kept.set(id, port);
  }
  return makeLink(`loopback:${name}`, kept, control.port1);
}

/** Names currently listening (for diagnostics and the UI). */
export function loopbackListeners(): string[] {
  return [...listeners.keys()];
}
