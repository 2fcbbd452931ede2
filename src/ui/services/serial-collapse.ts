// What the serial console writes to its terminal: the guest's bytes as they come, except that a
// run of the stress guest's "clock jumped N ms" lines (one each time its clock skips, dozens a
// second on a busy machine) collapses into one line that counts them and keeps the largest jump,
// redrawn in place (carriage return, erase line). Display only: x-tabmig-guest-info keeps every
// line as the guest printed it.

const CLOCK = /^stress: clock jumped (\d+) ms\r?$/;
const PREFIX = 'stress: clock jumped';
/** Back to the start of the line, and erase it (CSI K). */
const REDRAW = '\r\x1b[K';

export class SerialCollapse {
  /** An unfinished line that may yet become a clock line: held until its end arrives. */
  private held = '';
  /** The clock lines of the current run: how many, the largest jump. */
  private run: { count: number; largest: number } | null = null;
  /** The run's line is on screen with the cursor at its end (no line end written yet). */
  private open = false;

  /** The text to write for `chunk` (LF line ends; the terminal turns them into CR LF). */
  write(chunk: string): string {
    let text = this.held + chunk;
    this.held = '';
    let out = '';
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      out += this.line(text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    if (text) {
      // A line begun: held only while it could be a clock line, so prompts show at once.
      if (PREFIX.startsWith(text) || text.startsWith(PREFIX)) this.held = text;
      else out += this.close() + text;
    }
    return out;
  }

  private line(line: string): string {
    const m = CLOCK.exec(line);
    if (!m) return `${this.close()}${line}\n`;
    const ms = Number(m[1]);
    this.run = this.run ? { count: this.run.count + 1, largest: Math.max(this.run.largest, ms) } : { count: 1, largest: ms };
    // Short enough not to wrap in a narrow console, so the carriage return redraws all of it.
    const text = this.run.count === 1 ? line.replace(/\r$/, '') : `stress: clock jumped ×${this.run.count} (max ${this.run.largest} ms)`;
    const out = `${this.open ? REDRAW : ''}${text}`;
    this.open = true;
    return out;
  }

  /** Anything else ends the run: its line gets its line end, the next jump counts afresh. */
  private close(): string {
    this.run = null;
    if (!this.open) return '';
    this.open = false;
    return '\n';
  }
}
