// The run history as the UI sees it: a plain class over the IndexedDB store (history-db.ts) that
// records every outgoing migration when it ends — its capabilities and parameters as they were at
// the start, the round records, query-migrate's result — and tells subscribers when the list
// changes. It reads the migration service's shared state once per status change, no polling.

import { isFinished, type MigrationView } from './migration-view.js';
import { openHistoryDB, type HistoryDatabase, type RunMethod, type RunRecord } from './history-db.js';

export type { RunMethod, RunRecord } from './history-db.js';

export interface HistoryView {
  readonly runs: readonly RunRecord[];
  subscribe(listener: () => void): () => void;
  unsubscribe(listener: () => void): void;
  delete(id: number): Promise<void>;
  /** Adds (or replaces, with an id) a run; returns its id. */
  put(run: RunRecord): Promise<number>;
  exportJson(ids?: readonly number[]): string;
}

export class HistoryService implements HistoryView {
  runs: RunRecord[] = [];
  private db: Promise<HistoryDatabase> | null = null;
  private readonly listeners = new Set<() => void>();
  private lastStatus = 'none';
  private pending: Omit<RunRecord, 'rounds' | 'result'> | null = null;
  /** A label (and measured guest downtime) for the next run that ends, set by Compare. */
  nextRun: { label: string; method: RunMethod; guest?: RunRecord['guest'] } | null = null;
  private readonly channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('tabmig-history') : null;

  constructor(private readonly name?: string) {
    this.channel?.addEventListener('message', () => void this.refresh());
  }

  /** Follows a migration service: records each outgoing migration when it ends. */
  watch(m: MigrationView): () => void {
    const onChange = () => this.observe(m);
    m.addEventListener('change', onChange);
    return () => m.removeEventListener('change', onChange);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.db) void this.refresh();
    return () => this.unsubscribe(listener);
  }

  unsubscribe(listener: () => void): void {
    this.listeners.delete(listener);
  }

  private open(): Promise<HistoryDatabase> {
    return (this.db ??= openHistoryDB(this.name));
  }

  async refresh(): Promise<void> {
    const db = await this.open();
    this.runs = (await db.getAllFromIndex('runs', 'started')).reverse();
    for (const l of this.listeners) l();
  }

  async put(run: RunRecord): Promise<number> {
    const db = await this.open();
    const id = await db.put('runs', run);
    await this.refresh();
    this.channel?.postMessage('changed');
    return id;
  }

  async delete(id: number): Promise<void> {
    const db = await this.open();
    await db.delete('runs', id);
    await this.refresh();
    this.channel?.postMessage('changed');
  }

  exportJson(ids?: readonly number[]): string {
    const runs = ids ? this.runs.filter((r) => r.id !== undefined && ids.includes(r.id)) : this.runs;
    return JSON.stringify({ format: 'tabmig-run-history', version: 1, runs }, null, 2);
  }

  /** The run that ended last (resolved when it is stored), for Compare. */
  lastStored: Promise<RunRecord> | null = null;
  private resolveStored: ((r: RunRecord) => void) | null = null;

  /** A promise for the next run this service stores. */
  nextStored(): Promise<RunRecord> {
    return (this.lastStored = new Promise((r) => (this.resolveStored = r)));
  }

  private observe(m: MigrationView): void {
    const status = m.outgoingStatus;
    if (status === this.lastStatus) return;
    const was = this.lastStatus;
    this.lastStatus = status;
    if (status.startsWith('postcopy') && this.pending && this.pending.method !== 'stop-and-copy') this.pending.method = 'postcopy';
    if ((status === 'setup' || status === 'active') && (was === 'none' || isFinished(was as never))) {
      const caps = Object.fromEntries(m.options.queryCapabilities().map((c) => [c.capability, c.state]));
      const parameters = { ...m.options.queryParameters() } as Record<string, unknown>;
      const next = this.nextRun;
      this.nextRun = null;
      const uri = m.outgoingUri ?? '';
      // postcopy-ram only allows a postcopy: the run is one once it switched (below).
      const saved = uri.startsWith('idb:') || uri.startsWith('file:');
      this.pending = {
        started: Date.now(),
        uri,
        method: next?.method ?? (saved ? 'snapshot' : 'precopy'),
        label: next?.label ?? '',
        guest: next?.guest,
        capabilities: caps,
        parameters,
      };
    } else if (isFinished(status as never) && this.pending) {
      const ring = m.rounds;
      const rounds = [];
      for (let i = Math.max(0, ring.count - ring.capacity); i < ring.count; i++) {
        const r = ring.get(i);
        if (r) rounds.push(r);
      }
      const result = m.queryMigrate();
      const run: RunRecord = { ...this.pending, rounds, result };
      this.pending = null;
      void this.put(run).then((id) => {
        const stored = { ...run, id };
        this.resolveStored?.(stored);
        this.resolveStored = null;
      });
    }
  }
}
