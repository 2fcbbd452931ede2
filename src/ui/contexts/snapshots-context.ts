import { createContext } from '@lit/context';
import type { SnapshotsView } from '../services/snapshot-service.js';

/** The snapshots saved in IndexedDB, provided by <tm-app>. */
export const snapshotsContext = createContext<SnapshotsView | undefined>(Symbol('tm-snapshots'));
