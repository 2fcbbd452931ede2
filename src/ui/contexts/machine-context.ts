import { createContext } from '@lit/context';
import type { MachineService } from '../services/machine-service.js';

/** The page's MachineService, provided by <tm-app>. */
export const machineContext = createContext<MachineService | undefined>(Symbol('tm-machine-service'));
