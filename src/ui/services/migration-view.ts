// What the migration panels read from the page's MigrationService (src/migration/
// migration-service.ts satisfies this structurally; tests pass a small fake). Reading only: every
// action a panel takes is a QMP command, so a user at the console or a test can do the same.

import type { MigrationInfo } from '../../migration/migration-info.js';
import type { MigrationLogEntry } from '../../migration/migration-service.js';
import type { MigrationCapability, MigrationParameterValues } from '../../migration/options-schema.js';
import type { PageState } from '../../migration/page-state.js';
import type { RoundRecords } from '../../migration/round-records.js';
import type { StreamLog } from '../../migration/stream-log.js';
import type { MigrationStatus } from '../../migration/state.js';

export type { MigrationInfo, MigrationRamInfo } from '../../migration/migration-info.js';
export type { MigrationLogEntry } from '../../migration/migration-service.js';
export type { RoundRecord } from '../../migration/round-records.js';
export type { MigrationStatus } from '../../migration/state.js';
// One definition of "setup or active" / "finished": the state machine's (QEMU's helpers).
export { isFinished, isSetupOrActive } from '../../migration/state.js';

/** The reading side of the shared page-state bytes (src/migration/page-state.ts). */
export type PageStateView = Pick<PageState, 'bytes' | 'pageCount'>;

/** The reading side of the shared round-record ring (src/migration/round-records.ts). */
export type RoundRecordsView = Pick<RoundRecords, 'count' | 'generation' | 'capacity' | 'get'>;

/** The reading side of the shared stream log (src/migration/stream-log.ts). */
export type StreamLogView = Pick<StreamLog, 'count' | 'generation' | 'seq' | 'side' | 'capacity' | 'list'>;

/** Another tab as the peer list shows it (src/transport/signaling.ts PeerInfo). */
export interface PeerView {
  readonly id: string;
  readonly name: string;
  /** Waiting for an incoming migration. */
  readonly incoming: boolean;
  /** When incoming: the only peer it accepts (null: anyone). */
  readonly incomingFrom: string | null;
  /** How it was found: a tab of this browser, the relay (another browser), or a token. */
  readonly via?: 'local' | 'relay' | 'token';
}

/** The tab's BroadcastChannel signaling: dispatches 'peers' and 'id' events. */
export interface SignalingView extends EventTarget {
  readonly id: string;
  readonly name: string;
  readonly peers: readonly PeerView[];
}

export interface MigrationOptionsView {
  queryCapabilities(): readonly { capability: MigrationCapability; state: boolean }[];
  queryParameters(): MigrationParameterValues;
}

/** Dispatches a plain 'change' Event whenever anything here changes. */
export interface MigrationView extends EventTarget {
  readonly outgoingStatus: MigrationStatus;
  readonly incomingStatus: MigrationStatus;
  readonly lastError: string | null;
  /** The URI of the last outgoing migration, as given to `migrate` (fakes may leave it out). */
  readonly outgoingUri?: string;
  readonly waitingForIncoming: boolean;
  readonly incomingBytesReceived: number;
  readonly activeBlockers: readonly string[];
  /**
   * One record per dirty-sync round of the outgoing migration, written by the migration worker
   * into shared memory (reset when the next one starts). Readers poll it: see RoundsController.
   */
  readonly rounds: RoundRecordsView;
  /** One byte per guest page, written by the workers (PageStatus); the memory map draws it. */
  readonly pageState: PageStateView;
  /**
   * Each section and command of this tab's migration stream, as its worker writes (source) or
   * reads (destination) it; optional for fakes that have no stream. See StreamLogController.
   */
  readonly streamLog?: StreamLogView;
  readonly log: readonly MigrationLogEntry[];
  readonly options: MigrationOptionsView;
  readonly signaling: SignalingView | null;
  queryMigrate(): MigrationInfo;
}

/**
 * Which side the panels follow: an outgoing migration if there is or was one, else the incoming
 * one (also before it starts, in a tab waiting as `-incoming`: runstate inmigrate).
 */
export function currentDirection(m: MigrationView, runstate?: string): 'outgoing' | 'incoming' {
  if (m.outgoingStatus !== 'none') return 'outgoing';
  return m.incomingStatus !== 'none' || runstate === 'inmigrate' ? 'incoming' : 'outgoing';
}

export function currentStatus(m: MigrationView, runstate?: string): MigrationStatus {
  return currentDirection(m, runstate) === 'incoming' ? m.incomingStatus : m.outgoingStatus;
}

/**
 * The tab was started with `?incoming=defer` and nothing has been asked of it yet: it is waiting
 * for a migrate-incoming command (runstate inmigrate, no incoming migration started).
 */
export function isDeferredIncoming(m: MigrationView, runstate: string | undefined): boolean {
  return runstate === 'inmigrate' && m.incomingStatus === 'none' && !m.waitingForIncoming;
}
