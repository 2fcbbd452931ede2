// The signaling relay: a WebSocket at /signal on the Vite dev and preview servers' own port, so
// pages in other browsers or on other machines (`npm start -- --host`) find each other. It
// forwards signaling only (presence, offer/answer/ICE, refusals): the migration itself flows
// peer to peer. Rooms (`/signal?room=NAME`) keep classes apart. It trusts nothing a page says:
// a forwarded message carries the sender's id as this connection registered it; an id is held
// by its first live connection until that one disconnects; frames are size-capped (ws
// maxPayload) and rate-capped (token bucket); a peer that disconnects or stops answering pings
// is forgotten at once and the room told.
//
// Built on `ws` (the WebSocket library Vite itself uses for HMR): maintained, no native
// dependencies, and it attaches to an existing http.Server's 'upgrade' event with noServer, so
// the relay shares the page's port and origin.

import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Plugin } from 'vite';
import {
  RELAY_BURST,
  RELAY_MAX_BYTES,
  RELAY_PATH,
  RELAY_PROTOCOL,
  RELAY_RATE_PER_S,
  RELAY_ROOM_LIMIT,
  ROOM_PATTERN,
  isRelayPresence,
  type FromRelay,
  type RelayPresence,
  type ToRelay,
} from '../src/transport/relay-protocol.js';

interface Client {
  ws: WebSocket;
  room: string;
  peer: RelayPresence | null;
  tokens: number;
  lastRefill: number;
  alive: boolean;
  dropped: number;
}

export interface RelayOptions {
  /** Log line sink (default: none). */
  log?: (line: string) => void;
  pingIntervalMs?: number;
}

export interface SignalRelay {
  /** Handles an HTTP upgrade if it is for the relay's path; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Rooms and their peer ids (tests, logs). */
  rooms(): Map<string, string[]>;
  close(): void;
}

export function createSignalRelay(opts: RelayOptions = {}): SignalRelay {
  const wss = new WebSocketServer({ noServer: true, maxPayload: RELAY_MAX_BYTES, clientTracking: false });
  const rooms = new Map<string, Map<string, Client>>();
  const log = opts.log ?? (() => {});

  const send = (c: Client, m: FromRelay) => {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(m));
  };
  const broadcast = (room: string, m: FromRelay, except?: Client) => {
    for (const c of rooms.get(room)?.values() ?? []) if (c !== except) send(c, m);
  };

  const leave = (c: Client) => {
    const members = rooms.get(c.room);
    if (!c.peer || !members || members.get(c.peer.id) !== c) return;
    members.delete(c.peer.id);
    if (members.size === 0) rooms.delete(c.room);
    broadcast(c.room, { t: 'left', id: c.peer.id });
    c.peer = null;
  };

  const allow = (c: Client): boolean => {
    const now = Date.now();
    c.tokens = Math.min(RELAY_BURST, c.tokens + ((now - c.lastRefill) / 1000) * RELAY_RATE_PER_S);
    c.lastRefill = now;
    if (c.tokens >= 1) {
      c.tokens -= 1;
      return true;
    }
    // A page that keeps flooding after being told is cut off.
    if (++c.dropped === 1) send(c, { t: 'error', reason: 'rate limit: message dropped' });
    if (c.dropped > RELAY_BURST * 4) c.ws.close(1008, 'flood');
    return false;
  };

  const onMessage = (c: Client, raw: string) => {
    if (!allow(c)) return;
    let m: ToRelay;
    try {
      m = JSON.parse(raw) as ToRelay;
    } catch {
      return send(c, { t: 'error', reason: 'malformed message dropped' });
    }
    if (typeof m !== 'object' || m === null) return send(c, { t: 'error', reason: 'malformed message dropped' });
    switch (m.t) {
      case 'join': {
        if (m.v !== RELAY_PROTOCOL) return send(c, { t: 'error', reason: `relay speaks protocol ${RELAY_PROTOCOL}` });
        if (!isRelayPresence(m.peer)) return send(c, { t: 'error', reason: 'malformed presence dropped' });
        if (c.peer) leave(c);
        const members = rooms.get(c.room) ?? new Map<string, Client>();
        const holder = members.get(m.peer.id);
        if (holder && holder !== c) return send(c, { t: 'id-taken', id: m.peer.id });
        if (members.size >= RELAY_ROOM_LIMIT) return send(c, { t: 'error', reason: 'room is full' });
        rooms.set(c.room, members);
        members.set(m.peer.id, c);
        c.peer = m.peer;
        send(c, { t: 'joined', id: m.peer.id, room: c.room });
        send(c, { t: 'peers', peers: [...members.values()].filter((o) => o !== c && o.peer).map((o) => o.peer!) });
        broadcast(c.room, { t: 'peer', peer: m.peer }, c);
        log(`relay: ${m.peer.id} joined room ${c.room} (${members.size})`);
        return;
      }
      case 'update': {
        if (!c.peer) return send(c, { t: 'error', reason: 'join first' });
        // The id is the connection's: an update cannot move it.
        if (!isRelayPresence(m.peer) || m.peer.id !== c.peer.id) return send(c, { t: 'error', reason: 'malformed presence dropped' });
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

  const ping = setInterval(() => {
    for (const members of rooms.values()) {
      for (const c of members.values()) {
        if (!c.alive) {
          c.ws.terminate();
          continue;
        }
        c.alive = false;
        c.ws.ping();
      }
    }
  }, opts.pingIntervalMs ?? 15000);
  ping.unref?.();

  return {
    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://relay');
      if (url.pathname !== RELAY_PATH) return false;
      const room = url.searchParams.get('room') || 'default';
      if (!ROOM_PATTERN.test(room)) {
        socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c: Client = { ws, room, peer: null, tokens: RELAY_BURST, lastRefill: Date.now(), alive: true, dropped: 0 };
        ws.on('pong', () => (c.alive = true));
        ws.on('message', (data, isBinary) => {
          if (isBinary) return send(c, { t: 'error', reason: 'binary frames are not signaling' });
          onMessage(c, data.toString());
        });
        ws.on('close', () => leave(c));
        ws.on('error', () => leave(c));
      });
      return true;
    },
    rooms() {
      return new Map([...rooms].map(([r, m]) => [r, [...m.keys()]]));
    },
    close() {
      clearInterval(ping);
      for (const members of rooms.values()) for (const c of members.values()) c.ws.terminate();
      rooms.clear();
      wss.close();
    },
  };
}

/** Vite plugin: the relay on the dev server and on `vite preview`, same port as the page. */
export function signalRelayPlugin(opts: RelayOptions = {}): Plugin {
  const attach = (http: HttpServer | Http2SecureServer | null | undefined) => {
    if (!http) return; // middleware mode: whoever owns the server must attach it
    const relay = createSignalRelay(opts);
    // Other upgrades (Vite's HMR socket) are left alone.
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void relay.handleUpgrade(req, socket, head));
    http.on('close', () => relay.close());
  };
  return {
    name: 'tabmig-signal-relay',
    configureServer(server) {
      attach(server.httpServer);
    },
    configurePreviewServer(server) {
      attach(server.httpServer);
    },
  };
}
