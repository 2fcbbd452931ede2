// Gives an element the run history from context and re-renders it when the list changes.

import type { ReactiveControllerHost } from 'lit';
import { historyContext } from '../contexts/history-context.js';
import type { HistoryView } from '../services/history-service.js';
import { SubscribableController } from './context-subscription.js';

export class HistoryController extends SubscribableController<HistoryView> {
  constructor(host: ReactiveControllerHost & HTMLElement) {
    super(host, historyContext);
  }
}
