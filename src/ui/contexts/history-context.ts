import { createContext } from '@lit/context';
import type { HistoryView } from '../services/history-service.js';

/** The run history kept in IndexedDB, provided by <tm-app>. */
export const historyContext = createContext<HistoryView | undefined>(Symbol('tm-history'));
