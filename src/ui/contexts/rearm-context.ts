import { createContext } from '@lit/context';
import type { Rearm } from '../services/rearm.js';

/** "Migrate again with …" (the non-convergence remedies that need a new migration), provided by <tm-app>. */
export const rearmContext = createContext<Rearm | undefined>(Symbol('tm-rearm'));
