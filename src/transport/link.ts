// What the migration code needs of a connection to its peer, whatever carries it (WebRTC or the
// in-page loopback): a small control conversation beside the data channels (the switchover
// handshake uses it), how it ended, and a way to end it — politely, or as a failure would.

import type { CloseInfo } from './channel.js';

export interface MigrationLink {
  readonly uri: string;
  /** Resolves once when the link ends: ok=false when it was lost rather than closed. */
  readonly closed: Promise<CloseInfo>;
  /** Small JSON-serializable application messages to the peer's link. */
  sendControl(data: unknown): void;
  oncontrol: ((data: unknown) => void) | null;
  /** Ends the link; the peer hears of it. */
  close(reason?: string): unknown;
  /** Fault tests: the link breaks as a network failure would (no polite close). */
  drop(): void;
}
