// The fallback for lines the keystroke model cannot reconstruct (line-editor.ts marks them
// `uncertain`: history recall, tab completion, …): read the line from the SCREEN.
//
// A headless xterm is fed the session's output, exactly as the user's terminal is. When the first
// key of a new line is typed (the prompt has been drawn), `markLineStart()` remembers where the
// cursor is: that column is where the user's text begins, everything left of it is the prompt.
// When the user presses Enter, `readLine()` returns the text from that point to the end of the
// (possibly wrapped) line under the cursor.
//
// Writes to xterm are parsed asynchronously: `markLineStart()` is queued behind the output fed so
// far, and `readLine()` (or `await flush()` then `currentLine()`) waits for it. What the screen
// shows is what the remote shell echoed; it is not proof of what the shell will run (see
// docs/guardrails-shell.md, "What interactive filtering cannot guarantee").

import xtermHeadless from '@xterm/headless';

const { Terminal } = xtermHeadless;
type HeadlessTerminal = InstanceType<typeof Terminal>;
type Marker = NonNullable<ReturnType<HeadlessTerminal['registerMarker']>>;
type Buffer = HeadlessTerminal['buffer']['active'];

export interface ScreenLineReaderOptions {
  cols: number;
  rows: number;
  /** Lines kept above the screen (default 1000). */
  scrollback?: number;
}

export interface ScreenLineReader {
  /** Session output, as sent to the user (after masking). Resolves when it has been parsed. */
  feedOutput(data: string | Uint8Array): Promise<void>;
  /** The first key of a new line was typed: remember where the prompt ends (after pending output). */
  markLineStart(): void;
  /** Resolves when every output chunk fed so far (and pending marks) have been processed. */
  flush(): Promise<void>;
  /** The user's line as currently on screen (only output already parsed: see flush). */
  currentLine(): string;
  /** flush(), then currentLine(). */
  readLine(): Promise<string>;
  resize(cols: number, rows: number): void;
  /** A full-screen program (editor, pager) is using the alternate screen: there is no command line. */
  isAlternateScreen(): boolean;
  dispose(): void;
}

/** Rows a line may span before the mark is considered stale (screen cleared, prompt redrawn). */
const MAX_LINE_ROWS = 64;

export function createScreenLineReader(options: ScreenLineReaderOptions): ScreenLineReader {
  const term = new Terminal({
    cols: options.cols,
    rows: options.rows,
    scrollback: options.scrollback ?? 1000,
    allowProposedApi: true, // buffer and marker access
  });
  let mark: { marker: Marker | undefined; col: number } | undefined;

  const write = (data: string | Uint8Array) => new Promise<void>((resolve) => term.write(data, resolve));

  function currentLine(): string {
    const buffer = term.buffer.active;
    const cursorRow = buffer.baseY + buffer.cursorY;
    const markerRow = mark?.marker && !mark.marker.isDisposed ? mark.marker.line : -1;
    let startRow: number;
    let startCol: number;
    if (markerRow >= 0 && markerRow <= cursorRow && cursorRow - markerRow < MAX_LINE_ROWS) {
      startRow = markerRow;
      startCol = mark?.col ?? 0;
    } else {
      // No mark, or the screen was redrawn (Ctrl-L): the logical line under the cursor, without
      // the prompt width we remembered (the shell redraws the same prompt).
      startRow = cursorRow;
      while (startRow > 0 && buffer.getLine(startRow)?.isWrapped) startRow--;
      startCol = mark?.col ?? 0;
    }
    let endRow = cursorRow;
    while (buffer.getLine(endRow + 1)?.isWrapped) endRow++;
    return readRows(buffer, startRow, startCol, endRow);
  }

  return {
    feedOutput: write,
    markLineStart() {
      term.write('', () => {
        mark?.marker?.dispose();
        const buffer = term.buffer.active;
        mark = { marker: buffer.type === 'normal' ? term.registerMarker(0) : undefined, col: buffer.cursorX };
      });
    },
    flush: () => write(''),
    currentLine,
    async readLine() {
      await write('');
      return currentLine();
    },
    resize(cols, rows) {
      term.resize(cols, rows);
    },
    isAlternateScreen: () => term.buffer.active.type === 'alternate',
    dispose() {
      mark?.marker?.dispose();
      term.dispose();
    },
  };
}

/** Rows startRow..endRow, the first from startCol; rows that wrap into the next are joined as is. */
function readRows(buffer: Buffer, startRow: number, startCol: number, endRow: number): string {
  let text = '';
  for (let row = startRow; row <= endRow; row++) {
    const line = buffer.getLine(row);
    if (!line) break;
    const wrapsOn = buffer.getLine(row + 1)?.isWrapped === true && row < endRow;
    text += line.translateToString(!wrapsOn, row === startRow ? startCol : 0);
  }
  return text.trimEnd();
}
