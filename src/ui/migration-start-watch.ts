// When a migration begins, the page turns to its teaching view. A migration begins for this tab
// when its outgoing status enters setup (a new `migrate` to another tab: a save to `idb:` or
// `file:` keeps the layout, so the Snapshots panel and its progress stay where the person is), or
// its incoming status becomes active (a source connected and its stream flows in). Only the edge
// counts: a person who turned back to the overview during a migration stays there until the next.

import { isFinished, type MigrationStatus, type MigrationView } from './services/migration-view.js';

export class MigrationStartWatch {
  private outgoing: MigrationStatus = 'none';
  private incoming: MigrationStatus = 'none';

  /** Reads the statuses; true if a migration began since the last look. */
  began(m: Pick<MigrationView, 'outgoingStatus' | 'incomingStatus' | 'outgoingUri'>): boolean {
    const out = m.outgoingStatus;
    const inc = m.incomingStatus;
    const save = /^(idb|file):/.test(m.outgoingUri ?? '');
    const outBegan = !save && out !== this.outgoing && (out === 'setup' || out === 'active') && (this.outgoing === 'none' || isFinished(this.outgoing));
    const incBegan = inc !== this.incoming && inc === 'active';
    this.outgoing = out;
    this.incoming = inc;
    return outBegan || incBegan;
  }
}
