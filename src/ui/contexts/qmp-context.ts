import { createContext } from '@lit/context';
import type { QmpClient } from '../services/qmp-client.js';

/** The page's QMP client, provided by <tm-app>. */
export const qmpContext = createContext<QmpClient | undefined>(Symbol('tm-qmp-client'));
