// The line under a control that says which QMP command it sent and how QEMU answered: a tick, or
// QEMU's error reply in red, right next to the control that caused it.

import { css, html, nothing } from 'lit';
import type { QmpController } from './controllers/qmp-controller.js';
import { describeError, type QmpCommand, type QmpErrorReply, type QmpReply } from './services/qmp-client.js';

export interface CommandOutcome {
  /** The command as sent (JSON). */
  cmd: string;
  pending: boolean;
  error?: QmpErrorReply;
}

export function commandText(cmd: QmpCommand): string {
  return JSON.stringify(cmd);
}

/**
 * Sends `cmd`, reporting the outcome through `show` before and after; returns QEMU's reply. `text`
 * is the command as the feedback line shows it.
 */
export async function runCommand(
  qmp: QmpController,
  cmd: QmpCommand,
  show: (o: CommandOutcome) => void,
  text = commandText(cmd),
): Promise<QmpReply> {
  show({ cmd: text, pending: true });
  const reply = await qmp.execute(cmd);
  show({ cmd: text, pending: false, error: reply.error });
  return reply;
}

/** `compact` leaves out a successful command (for rows where a tick would be noise). */
export function renderOutcome(o: CommandOutcome | null | undefined, opts: { compact?: boolean } = {}) {
  if (!o) return nothing;
  if (o.error) {
    return html`<p class="feedback failed" role="alert">
      ${opts.compact ? nothing : html`<span class="sent">${o.cmd} →</span> `}<strong>${describeError(o.error)}</strong>
    </p>`;
  }
  if (opts.compact) return nothing;
  return html`<p class="feedback">${o.cmd} ${o.pending ? '…' : html`<span class="ok">✓</span>`}</p>`;
}

export const feedbackStyles = css`
  .feedback {
    margin: 0.5rem 0 0;
    padding: 0.35rem 0.6rem;
    border-radius: 6px;
    background: var(--tm-surface-2);
    font-family: var(--tm-mono);
    font-size: 0.8rem;
    color: var(--tm-muted);
    overflow-wrap: anywhere;
  }
  .feedback .ok {
    color: var(--tm-ok);
    font-weight: 650;
  }
  .feedback.failed {
    background: var(--tm-danger-soft);
    color: var(--tm-danger);
  }
  .feedback.failed strong {
    font-weight: 650;
  }
  .feedback.failed .sent {
    color: #9b4a4a;
  }
`;
