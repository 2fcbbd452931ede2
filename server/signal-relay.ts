// The signaling relay: a WebSocket at /signal on the Vite dev and preview servers' own port, so
// pages in other browsers or on other machines (`npm start -- --host`) find each other. It
// forwards signaling only (presence, offer/answer/ICE, refusals): the migration itself flows
// peer to peer. Rooms (`/signal?room=NAME`) keep classes apart. It trusts nothing a page says:
// a forwarded message carries the sender's id as this connection registered it; an id is held
// by its first live connection until that one disconnects; a peer that disconnects or stops
// answering pings is forgotten at once and the room told.
//
// It holds under abuse: only pages of its own origin open a socket (relay-origin.ts), and every
// resource a client can make it hold has a limit (relay-limits.ts): sockets in all and per
// address, sockets that never join (reaped after a deadline, the oldest of an address closed
// first), rooms and members, the bytes queued for a socket that does not read (it is
// disconnected rather than buffered for), and messages (token buckets; a flooder's dropped
// count decays, and past a bound it is disconnected).
//
// Built on `ws` (the WebSocket library Vite itself uses for HMR): maintained, no native
// dependencies, and it attaches to an existing http.Server's 'upgrade' event with noServer, so
// the relay shares the page's port and origin.

import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Plugin } from 'vite';
import { RELAY_MAX_BYTES, RELAY_PATH, RELAY_PROTOCOL, ROOM_PATTERN, isRelayPresence, type FromRelay, type RelayPresence, type ToRelay } from '../src/transport/relay-protocol.js';
import { RELAY_LIMITS, type RelayLimits } from './relay-limits.js';
import { originRefusal, type OriginRule } from './relay-origin.js';

/** A token bucket: `rate` a second, up to `burst`. */
class Bucket {
  private tokens: number;
  private at = Date.now();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

interface Client {
  ws: WebSocket;
  address: string;
  room: string;
  peer: RelayPresence | null;
  /** Set once it has joined a room (and is no longer reaped by the join deadline). */
  joined: boolean;
  joinTimer: ReturnType<typeof setTimeout> | null;
  messages: Bucket;
  presence: Bucket;
  /** Dropped messages, decaying at floodForgetPerSecond since strikesAt. */
  strikes: number;
  strikesAt: number;
  warnedAt: number;
  alive: boolean;
}

export interface RelayOptions {
  /** Log line sink (default: none). Refusals are summarised, at most one line per kind every 10 s. */
  log?: (line: string) => void;
  /** Overrides of the defaults in relay-limits.ts. */
  limits?: Partial<RelayLimits>;
  /** Who may open a socket (default: the page's own origin, on IP addresses and localhost). */
  origin?: Partial<OriginRule>;
}

export interface RelayStats {
  connections: number;
  unjoined: number;
  rooms: number;
  members: number;
}

export interface SignalRelay {
  /** Handles an HTTP upgrade if it is for the relay's path; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Rooms and their peer ids (tests, logs). */
  rooms(): Map<string, string[]>;
  stats(): RelayStats;
  readonly limits: Readonly<RelayLimits>;
  close(): void;
}

export function createSignalRelay(opts: RelayOptions = {}): SignalRelay {
  const limits: RelayLimits = { ...RELAY_LIMITS, ...opts.limits };
  const originRule: OriginRule = { origins: opts.origin?.origins ?? [], allowedHosts: opts.origin?.allowedHosts ?? [] };
  const wss = new WebSocketServer({ noServer: true, maxPayload: RELAY_MAX_BYTES, clientTracking: false });
  const rooms = new Map<string, Map<string, Client>>();
  const clients = new Set<Client>();
  const byAddress = new Map<string, Set<Client>>();
  const log = opts.log ?? (() => {});

  // Refusals come in floods: one line per kind every 10 s, with how many there were.
  const logged = new Map<string, { at: number; count: number }>();
  const note = (kind: string, line: string) => {
    const now = Date.now();
    const l = logged.get(kind) ?? { at: 0, count: 0 };
    l.count++;
    if (now - l.at >= 10_000) {
      log(`relay: ${line}${l.count > 1 ? ` (${l.count} times since the last such line)` : ''}`);
      l.at = now;
      l.count = 0;
    }
    logged.set(kind, l);
  };

  const sendText = (c: Client, text: string) => {
    if (c.ws.readyState !== c.ws.OPEN) return;
    // A reader that does not read is not buffered for: past the bound it is disconnected.
    if (c.ws.bufferedAmount + text.length > limits.maxBufferedBytes) {
      note('slow', `a socket from ${c.address} does not read (${c.ws.bufferedAmount} bytes queued): disconnected`);
      c.ws.terminate();
      return;
    }
    c.ws.send(text);
  };
  const send = (c: Client, m: FromRelay) => sendText(c, JSON.stringify(m));
  const broadcast = (room: string, m: FromRelay, except?: Client) => {
    const text = JSON.stringify(m);
    for (const c of rooms.get(room)?.values() ?? []) if (c !== except) sendText(c, text);
  };

  const leave = (c: Client) => {
    const members = rooms.get(c.room);
    if (!c.peer || !members || members.get(c.peer.id) !== c) return;
    members.delete(c.peer.id);
    if (members.size === 0) rooms.delete(c.room);
    broadcast(c.room, { t: 'left', id: c.peer.id });
    c.peer = null;
  };

  const forget = (c: Client) => {
    if (!clients.delete(c)) return;
    if (c.joinTimer) clearTimeout(c.joinTimer);
    const mine = byAddress.get(c.address);
    mine?.delete(c);
    if (mine?.size === 0) byAddress.delete(c.address);
    leave(c);
  };

  /** A dropped message: counted (the count decays), warned about now and then, and cut off past the bound. */
  const strike = (c: Client, reason: string) => {
    const now = Date.now();
    c.strikes = Math.max(0, c.strikes - ((now - c.strikesAt) / 1000) * limits.floodForgetPerSecond) + 1;
    c.strikesAt = now;
    if (now - c.warnedAt >= 5000) {
      c.warnedAt = now;
      send(c, { t: 'error', reason });
    }
    if (c.strikes > limits.floodDisconnectAfter) {
      note('flood', `a socket from ${c.address} kept flooding: disconnected`);
      c.ws.close(1008, 'flood');
    }
  };

  const join = (c: Client, m: Extract<ToRelay, { t: 'join' }>) => {
    if (m.v !== RELAY_PROTOCOL) return send(c, { t: 'error', reason: `relay speaks protocol ${RELAY_PROTOCOL}` });
    if (!isRelayPresence(m.peer)) return send(c, { t: 'error', reason: 'malformed presence dropped' });
    if (!c.presence.take()) return strike(c, 'rate limit: join dropped');
    if (c.peer) leave(c);
    const members = rooms.get(c.room) ?? new Map<string, Client>();
    const holder = members.get(m.peer.id);
    if (holder && holder !== c) return send(c, { t: 'id-taken', id: m.peer.id });
    if (members.size >= limits.maxMembersPerRoom) return send(c, { t: 'error', reason: 'room is full' });
    if (!rooms.has(c.room) && rooms.size >= limits.maxRooms) return send(c, { t: 'error', reason: 'too many rooms on this relay' });
    rooms.set(c.room, members);
    members.set(m.peer.id, c);
    c.peer = m.peer;
    if (!c.joined) {
      c.joined = true;
      if (c.joinTimer) clearTimeout(c.joinTimer);
      c.joinTimer = null;
    }
    send(c, { t: 'joined', id: m.peer.id, room: c.room });
    send(c, { t: 'peers', peers: [...members.values()].filter((o) => o !== c && o.peer).map((o) => o.peer!) });
    broadcast(c.room, { t: 'peer', peer: m.peer }, c);
  };

  const onMessage = (c: Client, raw: string) => {
    if (!c.messages.take()) return strike(c, 'rate limit: message dropped');
    let m: ToRelay;
    try {
      m = JSON.parse(raw) as ToRelay;
    } catch {
      return send(c, { t: 'error', reason: 'malformed message dropped' });
    }
    if (typeof m !== 'object' || m === null) return send(c, { t: 'error', reason: 'malformed message dropped' });
    switch (m.t) {
      case 'join':
        return join(c, m);
      case 'update': {
        if (!c.peer) return send(c, { t: 'error', reason: 'join first' });
        // The id is the connection's: an update cannot move it.
        if (!isRelayPresence(m.peer) || m.peer.id !== c.peer.id) return send(c, { t: 'error', reason: 'malformed presence dropped' });
        if (!c.presence.take()) return strike(c, 'rate limit: presence update dropped');
        c.peer = m.peer;
        broadcast(c.room, { t: 'peer', peer: m.peer }, c);
        return;
      }
      case 'to': {
        if (!c.peer) return send(c, { t: 'error', reason: 'join first' });
        if (typeof m.to !== 'string') return send(c, { t: 'error', reason: 'malformed message dropped' });
        const target = rooms.get(c.room)?.get(m.to);
        if (!target || target === c) return send(c, { t: 'no-peer', to: m.to });
        send(target, { t: 'from', from: c.peer.id, msg: m.msg });
        return;
      }
      default:
        return send(c, { t: 'error', reason: 'malformed message dropped' });
    }
  };

  const refuse = (socket: Duplex, status: string, kind: string, why: string) => {
    note(kind, why);
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${why}\n`);
    socket.destroy();
  };

  const ping = setInterval(() => {
    for (const c of clients) {
      if (!c.joined) continue; // the join deadline takes care of those
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }, limits.pingIntervalMs);
  ping.unref?.();

  return {
    limits,
    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://relay');
      if (url.pathname !== RELAY_PATH) return false;
      const room = url.searchParams.get('room') || 'default';
      if (!ROOM_PATTERN.test(room)) {
        socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        return true;
      }
      const whyNot = originRefusal(req, originRule);
      if (whyNot) {
        refuse(socket, '403 Forbidden', 'origin', `socket refused: ${whyNot}`);
        return true;
      }
      const address = req.socket.remoteAddress ?? '?';
      const mine = byAddress.get(address) ?? new Set<Client>();
      // An address at its limits makes room by closing its own oldest socket that never joined.
      const oldestUnjoined = () => [...mine].find((o) => !o.joined);
      const unjoined = [...mine].filter((o) => !o.joined).length;
      if (unjoined >= limits.maxUnjoinedPerAddress || mine.size >= limits.maxConnectionsPerAddress) {
        const victim = oldestUnjoined();
        if (!victim) {
          refuse(socket, '503 Service Unavailable', 'per-address', `socket from ${address} refused: ${mine.size} open from that address (maxConnectionsPerAddress)`);
          return true;
        }
        note('unjoined', `sockets from ${address} that never joined: the oldest closed (maxUnjoinedPerAddress / maxConnectionsPerAddress)`);
        victim.ws.terminate();
        forget(victim);
      }
      if (clients.size >= limits.maxConnections) {
        refuse(socket, '503 Service Unavailable', 'total', `socket from ${address} refused: ${clients.size} open (maxConnections)`);
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c: Client = {
          ws,
          address,
          room,
          peer: null,
          joined: false,
          joinTimer: null,
          messages: new Bucket(limits.messagesPerSecond, limits.messageBurst),
          presence: new Bucket(limits.presencePerSecond, limits.presenceBurst),
          strikes: 0,
          strikesAt: Date.now(),
          warnedAt: 0,
          alive: true,
        };
        clients.add(c);
        mine.add(c);
        byAddress.set(address, mine);
        c.joinTimer = setTimeout(() => {
          if (c.joined) return;
          note('deadline', `a socket from ${address} did not join within ${limits.joinDeadlineMs} ms: closed`);
          ws.terminate();
          forget(c);
        }, limits.joinDeadlineMs);
        ws.on('pong', () => (c.alive = true));
        ws.on('message', (data, isBinary) => {
          if (isBinary) return send(c, { t: 'error', reason: 'binary frames are not signaling' });
          onMessage(c, data.toString());
        });
        ws.on('close', () => forget(c));
        ws.on('error', () => forget(c));
      });
      return true;
    },
    rooms() {
      return new Map([...rooms].map(([r, m]) => [r, [...m.keys()]]));
    },
    stats() {
      let members = 0;
      for (const m of rooms.values()) members += m.size;
      return { connections: clients.size, unjoined: [...clients].filter((c) => !c.joined).length, rooms: rooms.size, members };
    },
    close() {
      clearInterval(ping);
      for (const c of [...clients]) {
        c.ws.terminate();
        forget(c);
      }
      rooms.clear();
      wss.close();
    },
  };
}

/** Vite plugin: the relay on the dev server and on `vite preview`, same port as the page. */
export function signalRelayPlugin(opts: RelayOptions = {}): Plugin {
  const attach = (http: HttpServer | Http2SecureServer | null | undefined, allowedHosts: readonly string[] | true, log: (line: string) => void) => {
    if (!http) return; // middleware mode: whoever owns the server must attach it
    const relay = createSignalRelay({ log, ...opts, origin: { allowedHosts, ...opts.origin } });
    // Other upgrades (Vite's HMR socket) are left alone.
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void relay.handleUpgrade(req, socket, head));
    http.on('close', () => relay.close());
  };
  return {
    name: 'tabmig-signal-relay',
    configureServer(server) {
      attach(server.httpServer, server.config.server.allowedHosts ?? [], (l) => server.config.logger.warn(l, { timestamp: true }));
    },
    configurePreviewServer(server) {
      attach(server.httpServer, server.config.preview.allowedHosts ?? [], (l) => server.config.logger.warn(l, { timestamp: true }));
    },
  };
}
