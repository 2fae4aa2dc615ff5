// Reconstructs the lines a user submits in an interactive shell from their KEYSTROKES.
//
// A small model of readline in its default (emacs) key bindings: the gateway sees the bytes the
// client types, not the remote shell's buffer, so it replays the editing keys it can model
// exactly (insert, delete, kill, cursor moves, transpose, case changes, bracketed paste) and marks
// the line `uncertain` when a key changed the line in a way it cannot see: history recall
// (up/down, Ctrl-P/N/R/S, M-< M->, M-. M-_), tab completion, yank, undo, numeric arguments,
// Ctrl-X sequences (Ctrl-X Ctrl-E runs an editor), unknown escape sequences. An uncertain line
// must be read back from the screen (screen-line.ts) or refused; it must never be trusted as is.
//
// What this model cannot know (docs/guardrails-shell.md): a custom ~/.inputrc, vi mode
// (`set -o vi`), shells other than bash/readline (zsh's zle has different defaults), and programs
// that read the terminal themselves (editors, REPLs, `read`).

import { StringDecoder } from 'node:string_decoder';

export interface SubmittedLine {
  /** The line as the shell will receive it, without the Enter. */
  line: string;
  /** A key was used since the previous submit whose effect the gateway cannot see. */
  uncertain: boolean;
  /** Why (`history`, `completion`, `search`, `yank`, `undo`, `numeric-argument`, `ctrl-x`, `unknown-key: …`). */
  reasons: string[];
  /** Submitted by a newline inside a bracketed paste. */
  pasted: boolean;
}

export interface LineEditorOptions {
  /** Called when the first key of a new line arrives, before it is applied (see screen-line.ts). */
  onLineStart?: () => void;
}

type State =
  | { k: 'normal' }
  | { k: 'esc' }
  | { k: 'csi'; params: string }
  | { k: 'ss3' }
  | { k: 'quoted' }
  | { k: 'ctrl-x' }
  | { k: 'char-search' }
  | { k: 'paste'; end: number; cr: boolean };

const PASTE_END = '\x1b[201~';
const WORD_CHAR = /[\p{L}\p{N}]/u;

export class LineEditor {
  private chars: string[] = [];
  private point = 0;
  private reasons = new Set<string>();
  private state: State = { k: 'normal' };
  private killed = '';
  private lastWasKill = false;
  private nextUncertain: string | undefined;
  private dirty = false;
  private readonly decoder = new StringDecoder('utf8');
  private out: SubmittedLine[] = [];

  constructor(private readonly options: LineEditorOptions = {}) {}

  /** The line being edited. */
  get line(): string {
    return this.chars.join('');
  }

  /** Cursor position in code points. */
  get cursor(): number {
    return this.point;
  }

  get uncertain(): boolean {
    return this.reasons.size > 0;
  }

  /** Why the line being edited is uncertain (`editor`: Ctrl-X Ctrl-E will run an editor's buffer, no Enter follows). */
  get uncertainReasons(): string[] {
    return [...this.reasons];
  }

  /** No key has been typed since the last submit, Ctrl-C or reset. */
  get pristine(): boolean {
    return !this.dirty;
  }

  /** Forget the current line (for example when the session layer knows a program took the terminal). */
  reset(): void {
    this.clearLine();
    this.state = { k: 'normal' };
  }

  /** Feeds client input (bytes are UTF-8); returns every line submitted by it, in order. */
  feed(data: string | Uint8Array): SubmittedLine[] {
    const text = typeof data === 'string' ? data : this.decoder.write(Buffer.from(data));
    this.out = [];
    for (const ch of text) this.key(ch);
    return this.out;
  }

  // ---------------------------------------------------------------------------------------------

  private key(ch: string): void {
    const s = this.state;
    if (s.k === 'paste') {
      this.pasteChar(ch, s);
      return;
    }
    this.startLine();
    switch (s.k) {
      case 'esc':
        this.state = { k: 'normal' };
        this.meta(ch);
        return;
      case 'csi':
        if (/[\x20-\x3f]/.test(ch)) {
          s.params += ch;
          if (s.params.length > 32) {
            this.state = { k: 'normal' };
            this.reasons.add('unknown-key: long escape sequence');
          }
          return;
        }
        this.state = { k: 'normal' };
        this.csi(s.params, ch);
        return;
      case 'ss3':
        this.state = { k: 'normal' };
        this.csi('', ch);
        return;
      case 'quoted':
        this.state = { k: 'normal' };
        this.insert(ch);
        return;
      case 'ctrl-x':
        this.state = { k: 'normal' };
        this.reasons.add(ch === '\x05' ? 'editor' : 'ctrl-x');
        return;
      case 'char-search':
        this.state = { k: 'normal' };
        this.reasons.add('character-search');
        return;
    }
    this.control(ch);
  }

  private control(ch: string): void {
    const code = ch.codePointAt(0) ?? 0;
    const kill = this.lastWasKill;
    this.lastWasKill = false;
    if (code >= 0x20 && code !== 0x7f) {
      this.insert(ch);
      return;
    }
    switch (ch) {
      case '\r':
      case '\n':
        this.submit(false);
        return;
      case '\x01': // C-a
        this.point = 0;
        return;
      case '\x05': // C-e
        this.point = this.chars.length;
        return;
      case '\x02': // C-b
        this.point = Math.max(0, this.point - 1);
        return;
      case '\x06': // C-f
        this.point = Math.min(this.chars.length, this.point + 1);
        return;
      case '\x7f':
      case '\x08': // Backspace, C-h
        if (this.point > 0) this.chars.splice(--this.point, 1);
        return;
      case '\x04': // C-d: delete-char (on an empty line the shell sees end of file)
        if (this.point < this.chars.length) this.chars.splice(this.point, 1);
        return;
      case '\x0b': // C-k
        this.killText(this.point, this.chars.length, kill, false);
        return;
      case '\x15': // C-u
        this.killText(0, this.point, kill, true);
        return;
      case '\x17': {
        // C-w: unix-word-rubout (words are separated by whitespace)
        let start = this.point;
        while (start > 0 && /\s/.test(this.chars[start - 1] ?? '')) start--;
        while (start > 0 && !/\s/.test(this.chars[start - 1] ?? '')) start--;
        this.killText(start, this.point, kill, true);
        return;
      }
      case '\x14': {
        // C-t: transpose-chars
        if (this.chars.length < 2 || this.point === 0) return;
        const at = this.point === this.chars.length ? this.point - 1 : this.point;
        const a = this.chars[at - 1] ?? '';
        this.chars[at - 1] = this.chars[at] ?? '';
        this.chars[at] = a;
        this.point = at + 1;
        return;
      }
      case '\x03': // C-c: the line is abandoned
        this.clearLine();
        return;
      case '\x0c': // C-l: clear-screen
      case '\x00': // C-@: set-mark
      case '\x07': // C-g: abort
      case '\x1a': // C-z
      case '\x1c': // C-\
        return;
      case '\x09':
        this.reasons.add('completion');
        return;
      case '\x0e':
      case '\x10':
        this.reasons.add('history');
        return;
      case '\x12':
      case '\x13':
        this.reasons.add('search');
        return;
      case '\x0f': // C-o: operate-and-get-next: submit, then the next history line is loaded
        this.submit(false);
        this.nextUncertain = 'history';
        return;
      case '\x16':
      case '\x11': // C-v, C-q: quoted-insert
        this.state = { k: 'quoted' };
        return;
      case '\x18':
        this.state = { k: 'ctrl-x' };
        return;
      case '\x19': // C-y: yank (modelled, but the kill ring may hold text from before we knew it)
        this.insertText(this.killed);
        this.reasons.add('yank');
        return;
      case '\x1d':
        this.state = { k: 'char-search' };
        return;
      case '\x1f':
        this.reasons.add('undo');
        return;
      case '\x1b':
        this.state = { k: 'esc' };
        this.lastWasKill = kill;
        return;
      default:
        this.reasons.add(`unknown-key: 0x${code.toString(16).padStart(2, '0')}`);
    }
  }

  /** ESC followed by `ch`: a CSI/SS3 introducer or a Meta key. */
  private meta(ch: string): void {
    const kill = this.lastWasKill;
    this.lastWasKill = false;
    switch (ch) {
      case '[':
        this.state = { k: 'csi', params: '' };
        return;
      case 'O':
        this.state = { k: 'ss3' };
        return;
      case 'b':
      case 'B':
        this.point = this.wordStart(this.point);
        return;
      case 'f':
      case 'F':
        this.point = this.wordEnd(this.point);
        return;
      case 'd':
      case 'D':
        this.killText(this.point, this.wordEnd(this.point), kill, false);
        return;
      case '\x7f':
      case '\x08':
        this.killText(this.wordStart(this.point), this.point, kill, true);
        return;
      case 'u':
      case 'U':
      case 'l':
      case 'L':
      case 'c':
      case 'C':
        this.caseWord(ch.toLowerCase());
        return;
      case '#': // insert-comment: the line is submitted commented out
        this.chars.unshift('#');
        this.submit(false);
        return;
      case '<':
      case '>':
      case '.':
      case '_':
        this.reasons.add('history');
        return;
      case 'y':
        this.reasons.add('yank');
        return;
      case 'r':
      case '\x12':
        this.reasons.add('undo');
        return;
      case '\x1b':
      case '\t':
      case '?':
      case '*':
      case '/':
      case '!':
      case '~':
      case '$':
      case '@':
        this.reasons.add('completion');
        return;
      default:
        if (/[0-9-]/.test(ch)) this.reasons.add('numeric-argument');
        else this.reasons.add(`unknown-key: M-${JSON.stringify(ch)}`);
    }
  }

  /** A CSI (`ESC [ params final`) or SS3 (`ESC O final`) key. */
  private csi(params: string, final: string): void {
    this.lastWasKill = false;
    const [first = '', modifier = ''] = params.split(';');
    const word = modifier === '3' || modifier === '5'; // Alt/Ctrl + arrow: word moves
    switch (final) {
      case 'A':
      case 'B':
        this.reasons.add('history');
        return;
      case 'C':
        this.point = word ? this.wordEnd(this.point) : Math.min(this.chars.length, this.point + 1);
        return;
      case 'D':
        this.point = word ? this.wordStart(this.point) : Math.max(0, this.point - 1);
        return;
      case 'H':
        this.point = 0;
        return;
      case 'F':
        this.point = this.chars.length;
        return;
      case 'I': // focus in/out reports
      case 'O':
      case 'P': // F1–F4 (SS3): unbound
      case 'Q':
      case 'R':
      case 'S':
        return;
      case '~':
        switch (first) {
          case '1':
          case '7':
            this.point = 0;
            return;
          case '4':
          case '8':
            this.point = this.chars.length;
            return;
          case '3':
            if (this.point < this.chars.length) this.chars.splice(this.point, 1);
            return;
          case '200':
            this.state = { k: 'paste', end: 0, cr: false };
            return;
          case '201':
          case '2': // Insert: unbound by default
            return;
          case '5':
          case '6':
            this.reasons.add('history'); // Page Up/Down: history-search in many inputrc files
            return;
        }
    }
    this.reasons.add(`unknown-key: ESC [${params}${final}`);
  }

  /** Inside a bracketed paste: text is inserted as is; each newline submits a line. */
  private pasteChar(ch: string, s: { k: 'paste'; end: number; cr: boolean }): void {
    if (ch === PASTE_END.charAt(s.end)) {
      s.end++;
      if (s.end === PASTE_END.length) this.state = { k: 'normal' };
      return;
    }
    if (s.end > 0) {
      // Not the end marker after all: what was held back is pasted text.
      const held = PASTE_END.slice(0, s.end);
      s.end = 0;
      for (const c of held) this.pasteChar(c, s);
      this.pasteChar(ch, s);
      return;
    }
    // CRLF in pasted text is one line break.
    const afterCr = s.cr;
    s.cr = ch === '\r';
    if (ch === '\n' && afterCr) return;
    this.startLine();
    if (ch === '\r' || ch === '\n') {
      this.submit(true);
      return;
    }
    this.insert(ch);
  }

  private startLine(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.options.onLineStart?.();
    if (this.nextUncertain) {
      this.reasons.add(this.nextUncertain);
      this.nextUncertain = undefined;
    }
  }

  // ---- editing primitives ---------------------------------------------------------------------

  private insert(ch: string): void {
    this.chars.splice(this.point++, 0, ch);
    this.lastWasKill = false;
  }

  private insertText(text: string): void {
    for (const ch of text) this.insert(ch);
  }

  private killText(start: number, end: number, append: boolean, backward: boolean): void {
    if (end <= start) {
      this.lastWasKill = true;
      return;
    }
    const text = this.chars.splice(start, end - start).join('');
    this.point = start;
    // Consecutive kills accumulate in one kill-ring entry, as in readline.
    this.killed = append ? (backward ? text + this.killed : this.killed + text) : text;
    this.lastWasKill = true;
  }

  private wordStart(from: number): number {
    let i = from;
    while (i > 0 && !WORD_CHAR.test(this.chars[i - 1] ?? '')) i--;
    while (i > 0 && WORD_CHAR.test(this.chars[i - 1] ?? '')) i--;
    return i;
  }

  private wordEnd(from: number): number {
    let i = from;
    while (i < this.chars.length && !WORD_CHAR.test(this.chars[i] ?? '')) i++;
    while (i < this.chars.length && WORD_CHAR.test(this.chars[i] ?? '')) i++;
    return i;
  }

  private caseWord(mode: string): void {
    const end = this.wordEnd(this.point);
    let first = true;
    for (let i = this.point; i < end; i++) {
      const c = this.chars[i] ?? '';
      if (!WORD_CHAR.test(c)) continue;
      this.chars[i] = mode === 'u' || (mode === 'c' && first) ? c.toUpperCase() : c.toLowerCase();
      first = false;
    }
    this.point = end;
  }

  private submit(pasted: boolean): void {
    this.out.push({ line: this.line, uncertain: this.reasons.size > 0, reasons: [...this.reasons], pasted });
    this.clearLine();
  }

  private clearLine(): void {
    this.chars = [];
    this.point = 0;
    this.reasons = new Set();
    this.dirty = false;
    this.lastWasKill = false;
  }
}

export function createLineEditor(options?: LineEditorOptions): LineEditor {
  return new LineEditor(options);
}
