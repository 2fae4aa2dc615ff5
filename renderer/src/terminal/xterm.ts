import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { type ITerminalInitOnlyOptions, type ITerminalOptions, Terminal } from '@xterm/xterm';

/** One look for live terminals and replays. xterm renders with its DOM renderer (no WebGL needed). */
export const TERMINAL_THEME: NonNullable<ITerminalOptions['theme']> = {
  background: '#0b1220',
  foreground: '#e2e8f0',
  cursor: '#38bdf8',
  cursorAccent: '#0b1220',
  selectionBackground: '#1e3a5f',
  black: '#1e293b',
  red: '#f87171',
  green: '#4ade80',
  yellow: '#facc15',
  blue: '#60a5fa',
  magenta: '#c084fc',
  cyan: '#22d3ee',
  white: '#e2e8f0',
  brightBlack: '#64748b',
  brightRed: '#fca5a5',
  brightGreen: '#86efac',
  brightYellow: '#fde047',
  brightBlue: '#93c5fd',
  brightMagenta: '#d8b4fe',
  brightCyan: '#67e8f9',
  brightWhite: '#f8fafc',
};

export const SEARCH_DECORATIONS = {
  matchBackground: '#854d0e',
  matchOverviewRuler: '#facc15',
  activeMatchBackground: '#ca8a04',
  activeMatchColorOverviewRuler: '#fde047',
};

export interface XtermBundle {
  term: Terminal;
  fit: FitAddon;
  search: SearchAddon;
}

export function createTerminal(opts: ITerminalOptions & ITerminalInitOnlyOptions = {}): XtermBundle {
  const term = new Terminal({
    fontFamily: '"JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 13,
    lineHeight: 1.15,
    cursorBlink: true,
    scrollback: 5000,
    theme: TERMINAL_THEME,
    // Search decorations use the decoration API, which xterm still marks as proposed.
    allowProposedApi: true,
    ...opts,
  });
  const fit = new FitAddon();
  const search = new SearchAddon({ highlightLimit: 500 });
  term.loadAddon(fit);
  term.loadAddon(search);
  return { term, fit, search };
}

/** Fits the terminal to its element, unless the element is hidden (an inactive tab has no size). */
export function safeFit(el: HTMLElement | null, fit: FitAddon): void {
  if (!el || el.offsetWidth === 0 || el.offsetHeight === 0) return;
  try {
    fit.fit();
  } catch {
    // Not rendered yet: the next resize fits.
  }
}

export const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
