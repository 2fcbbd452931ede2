// Gives an element the snapshot list from context and re-renders it when the list changes.

import type { ReactiveControllerHost } from 'lit';
import { snapshotsContext } from '../contexts/snapshots-context.js';
import type { SnapshotsView } from '../services/snapshot-service.js';
import { SubscribableController } from './context-subscription.js';

export class SnapshotsController extends SubscribableController<SnapshotsView> {
  constructor(host: ReactiveControllerHost & HTMLElement) {
    super(host, snapshotsContext);
  }
}
