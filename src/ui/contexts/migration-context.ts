import { createContext } from '@lit/context';
import type { MigrationView } from '../services/migration-view.js';

/** The page's MigrationService (read-only view), provided by <tm-app>. */
export const migrationContext = createContext<MigrationView | undefined>(Symbol('tm-migration-service'));
