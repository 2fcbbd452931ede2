// Turns a UART byte stream into the text a terminal would show, for a <pre>: CR LF and LF end a
// line, a lone CR returns to the start of the line (progress counters redraw in place), backspace
// erases, ANSI escape sequences and other control characters are dropped. Keeps the last `limit`
// characters. Chunks may split a CR LF pair or an escape sequence anywhere.

const SPECIAL = /[\x00-\x09\x0b-\x1f\x7f]/g;

export class TerminalText {
  private shown = '';
  /** An unfinished CR or escape sequence from the end of the previous chunk. */
  private pending = '';

  constructor(readonly limit = 64 * 1024) {}

  get text(): string {
    return this.shown;
  }

  clear(): void {
    this.shown = '';
    this.pending = '';
  }

  write(chunk: string): void {
    const s = this.pending + chunk;
    this.pending = '';
    let out = this.shown;
    let i = 0;
    SPECIAL.lastIndex = 0;
    for (let m = SPECIAL.exec(s); m; m = SPECIAL.exec(s)) {
      const at = m.index;
      out += s.slice(i, at);
      i = at + 1;
      switch (s[at]) {
        case '\t':
          out += '\t';
          break;
        case '\r':
          if (at + 1 === s.length) {
            this.pending = '\r';
          } else if (s[at + 1] !== '\n') {
            out = out.slice(0, out.lastIndexOf('\n') + 1);
          }
          break;
        case '\b':
          if (out.length > 0 && !out.endsWith('\n')) out = out.slice(0, -1);
          break;
        case '\x1b': {
          const end = escapeEnd(s, at);
          if (end < 0) {
            this.pending = s.slice(at);
            i = s.length;
          } else {
            i = end;
          }
          break;
        }
        default:
          break; // bell, NUL, DEL and the rest: nothing to show
      }
      SPECIAL.lastIndex = i;
      if (this.pending) break;
    }
    if (!this.pending) out += s.slice(i);
    if (out.length > this.limit) {
      // Start the kept history at a line boundary when one is near, so no half line leads it.
      out = out.slice(out.length - this.limit);
      const nl = out.indexOf('\n');
      if (nl >= 0 && nl < 256) out = out.slice(nl + 1);
    }
    this.shown = out;
  }
}

/** Index just past the escape sequence starting at `at`, or -1 if the chunk ends inside it. */
function escapeEnd(s: string, at: number): number {
  if (at + 1 >= s.length) return -1;
  if (s[at + 1] !== '[') return at + 2; // two-character escape (ESC c, ESC 7, ...)
  for (let j = at + 2; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c >= 0x40 && c <= 0x7e) return j + 1;
  }
  return at + 2 + 32 < s.length ? at + 2 : -1; // a runaway CSI: give up on it
}
