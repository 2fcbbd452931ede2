// Who holds the guest (DESIGN §10): at every instant at most one copy of it runs, anywhere. A
// machine is empty (nothing loaded yet, or a discarded copy), the owner (its guest is the guest),
// in migration (source or destination: the migration statuses say so), spent (its guest left
// for another machine: after the switchover's commit, or postcopy's RUN) or in doubt (a
// destination holding a complete paused copy whose source's fate is not known yet). This file
// keeps the states that outlive a migration — empty, owner, spent, in doubt — and the words
// that explain a refusal; the migration service moves it and asks it.

export { RESET_SWITCHOVER_TEXT } from '../guest/control-block.js';

export type Ownership = 'empty' | 'owner' | 'spent' | 'in-doubt';

/** What a refusal says on a spent machine, for `cont`. */
export const SPENT_CONT_TEXT =
  'The guest migrated to another tab: the copy left here is stale and must not run beside it ' +
  '(x-tabmig-load a program, or receive a migration, to have a guest here again)';

/** What a refusal says on a spent machine, for `migrate` (any URI, snapshots included). */
export const SPENT_MIGRATE_TEXT =
  'The guest migrated to another tab: the copy left here is stale and can be neither migrated nor saved ' +
  '(x-tabmig-load a program, or receive a migration, to have a guest here again)';

/** A postcopy destination's guest is split between two tabs until every page is in. */
export function pagesMissingText(missing: number): string {
  return `The guest's memory is still arriving from the source (postcopy, ${missing} pages missing): it can be migrated or saved once every page is in`;
}

export const RESET_INMIGRATE_TEXT = 'Guest is waiting for an incoming migration';
export const RESET_POSTCOPY_TEXT = "The guest's memory is still arriving from the source (postcopy): it cannot be reset or replaced until every page is in";

export class GuestOwnership {
  private current: Ownership;

  constructor(initial: Ownership) {
    this.current = initial;
  }

  get state(): Ownership {
    return this.current;
  }

  get spent(): boolean {
    return this.current === 'spent';
  }

  get inDoubt(): boolean {
    return this.current === 'in-doubt';
  }

  /** The guest left for another machine (commit, or postcopy's RUN): sticky until a new guest. */
  spend(): void {
    this.current = 'spent';
  }

  /** A guest of this machine's own: loaded (x-tabmig-load), received, or kept after a doubt. */
  own(): void {
    this.current = 'owner';
  }

  /** A destination kept a complete paused copy whose source's fate is unknown. */
  doubt(): void {
    this.current = 'in-doubt';
  }

  /** What this machine held was discarded (a stale copy): it waits for a guest. */
  empty(): void {
    this.current = 'empty';
  }
}
