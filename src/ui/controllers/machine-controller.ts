// Gives an element the MachineService from context and re-renders it whenever the machine changes.

import type { ReactiveControllerHost } from 'lit';
import { machineContext } from '../contexts/machine-context.js';
import type { MachineService } from '../services/machine-service.js';
import { SubscribableController } from './context-subscription.js';

export class MachineController extends SubscribableController<MachineService> {
  constructor(host: ReactiveControllerHost & HTMLElement) {
    super(host, machineContext);
  }
}
