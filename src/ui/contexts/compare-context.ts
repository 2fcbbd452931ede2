import { createContext } from '@lit/context';
import type { CompareService } from '../services/compare-service.js';

/** Compare (stop-and-copy, precopy, postcopy between two tabs), provided by <tm-app>. */
export const compareContext = createContext<CompareService | undefined>(Symbol('tm-compare'));
