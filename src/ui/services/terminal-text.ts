// Turns a UART byte stream into the text a terminal would show: CR LF and LF end a line, a lone CR
// returns to the start of the line (progress counters redraw in place), backspace erases, ANSI
// escape sequences and other control characters are dropped. Chunks may split a CR LF pair or an
// escape sequence anywhere. Keeps about the last `limit` characters.
//
// The text is held as finished blocks of whole lines plus the unfinished tail, so a view can leave
// the blocks' DOM alone and re-lay out only the tail as output streams in.

const SPECIAL = /[\x00-\x09\x0b-\x1f\x7f]/g;
/** The tail is closed off into a block once it holds this much (at a line end). */
const BLOCK_CHARS = 4096;

export interface TextBlock {
  readonly id: number;
  readonly text: string;
}

export class TerminalText {
  private done: TextBlock[] = [];
  private doneChars = 0;
  private nextId = 0;
  private open = '';
  /** An unfinished CR or escape sequence from the end of the previous chunk. */
  private pending = '';

  constructor(readonly limit = 64 * 1024) {}

  /** Finished lines, oldest first; a block never changes once made. */
  get blocks(): readonly TextBlock[] {
    return this.done;
  }

  /** Everything after the last block: at least the current line. */
  get tail(): string {
    return this.open;
  }

  get text(): string {
    return this.done.map((b) => b.text).join('') + this.open;
  }

  clear(): void {
    this.done = [];
    this.doneChars = 0;
    this.open = '';
    this.pending = '';
  }

  write(chunk: string): void {
    const s = this.pending + chunk;
    this.pending = '';
    let out = this.open;
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
          if (at + 1 === s.length) this.pending = '\r';
          else if (s[at + 1] !== '\n') out = out.slice(0, out.lastIndexOf('\n') + 1);
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
    this.open = out;
    this.seal();
  }

  /** Closes whole lines of a long tail into blocks and drops the oldest blocks past the limit. */
  private seal(): void {
    while (this.open.length >= BLOCK_CHARS) {
      let cut = this.open.lastIndexOf('\n') + 1;
      // One endless line (the a-b guest prints only B's): split it anyway, so a view never
      // re-lays out more than a block; a later CR then redraws only the line's last part.
      if (cut === 0) cut = this.open.length - (this.open.length % BLOCK_CHARS);
      this.done.push({ id: this.nextId++, text: this.open.slice(0, cut) });
      this.doneChars += cut;
      this.open = this.open.slice(cut);
    }
    while (this.done.length > 0 && this.doneChars + this.open.length > this.limit) {
      this.doneChars -= this.done.shift()!.text.length;
    }
    if (this.open.length > this.limit) this.open = this.open.slice(-this.limit);
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
  return s.length - at > 34 ? at + 2 : -1; // a runaway CSI: give up on it
}
