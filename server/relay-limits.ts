// The signaling relay's limits: each has a name, a default, and a test (test/e2e/
// signal-relay.test.mjs). Together they bound what any number of clients can make the relay hold:
// sockets (in all, per address, not yet joined), rooms and members, bytes queued for a reader
// that does not read, and the messages a client may send. `TABMIG_RELAY_LIMITS=name=value,…`
// overrides them when the server starts (the tests use small ones).

export interface RelayLimits {
  /** WebSockets open at once, joined or not; more are refused (HTTP 503). */
  maxConnections: number;
  /** WebSockets open at once from one IP address. */
  maxConnectionsPerAddress: number;
  /** Sockets from one address that have not joined a room yet; a newer one closes the oldest. */
  maxUnjoinedPerAddress: number;
  /** A socket that has not joined a room this long after opening is closed. */
  joinDeadlineMs: number;
  /** Rooms that exist at once (a room lives while it has members). */
  maxRooms: number;
  /** Peers in one room. */
  maxMembersPerRoom: number;
  /** Bytes queued for one socket that does not read; past that the relay disconnects it. */
  maxBufferedBytes: number;
  /** Messages a socket may send per second, and the burst above that; the rest are dropped. */
  messagesPerSecond: number;
  messageBurst: number;
  /** Joins and presence updates per second and burst: each one is sent to the whole room. */
  presencePerSecond: number;
  presenceBurst: number;
  /** Dropped messages a socket may run up before it is disconnected; they decay at floodForgetPerSecond. */
  floodDisconnectAfter: number;
  floodForgetPerSecond: number;
  /** A joined socket that does not answer a ping within this long is closed. */
  pingIntervalMs: number;
}

export const RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxConnections: 1000,
  maxConnectionsPerAddress: 100,
  maxUnjoinedPerAddress: 16,
  joinDeadlineMs: 10_000,
  maxRooms: 100,
  maxMembersPerRoom: 200,
  maxBufferedBytes: 256 * 1024,
  messagesPerSecond: 40,
  messageBurst: 120,
  presencePerSecond: 2,
  presenceBurst: 10,
  floodDisconnectAfter: 200,
  floodForgetPerSecond: 10,
  pingIntervalMs: 15_000,
});

/** `name=value,name=value` (names as above, positive integers); throws on anything else. */
export function parseRelayLimits(text: string | undefined): Partial<RelayLimits> {
  const out: Partial<RelayLimits> = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, value] = part.split('=').map((x) => x.trim());
    if (!name || !(name in RELAY_LIMITS)) throw new Error(`TABMIG_RELAY_LIMITS: unknown limit '${name}' (known: ${Object.keys(RELAY_LIMITS).join(', ')})`);
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`TABMIG_RELAY_LIMITS: ${name} must be a positive integer, not '${value}'`);
    out[name as keyof RelayLimits] = n;
  }
  return out;
}
