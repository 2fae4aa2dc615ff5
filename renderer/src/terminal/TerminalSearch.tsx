import type { SearchAddon } from '@xterm/addon-search';
import { useEffect, useId, useRef, useState } from 'react';
import { SEARCH_DECORATIONS } from './xterm';

/** The find bar of a terminal (Ctrl/Cmd-F): next/previous, case, result count. */
export function TerminalSearch({ search, onClose }: { search: SearchAddon; onClose(): void }) {
  const [query, setQuery] = useState('');
  const [caseSensitive, setCaseSensitive] = useState(false);
  const [results, setResults] = useState<{ index: number; count: number } | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const id = useId();

  useEffect(() => {
    input.current?.focus();
    input.current?.select();
    const sub = search.onDidChangeResults((r) => setResults({ index: r.resultIndex, count: r.resultCount }));
    return () => {
      sub.dispose();
      search.clearDecorations();
    };
  }, [search]);

  const opts = { caseSensitive, decorations: SEARCH_DECORATIONS };
  const next = () => (query ? search.findNext(query, opts) : search.clearDecorations());
  const prev = () => (query ? search.findPrevious(query, opts) : search.clearDecorations());

  useEffect(() => {
    if (query) search.findNext(query, { caseSensitive, decorations: SEARCH_DECORATIONS, incremental: true });
    else {
      search.clearDecorations();
      setResults(null);
    }
  }, [query, caseSensitive, search]);

  return (
    <search className="term-search" aria-label="Search the terminal">
      <label htmlFor={id} className="visually-hidden">
        Search the terminal
      </label>
      <input
        id={id}
        ref={input}
        type="text"
        placeholder="Find in terminal"
        value={query}
        spellCheck={false}
        autoComplete="off"
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            if (e.shiftKey) prev();
            else next();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            onClose();
          }
        }}
      />
      <span className="term-search-count" aria-live="polite">
        {query && results
          ? results.count === 0
            ? 'No results'
            : `${results.index >= 0 ? results.index + 1 : '?'} of ${results.count}`
          : ''}
      </span>
      <button
        type="button"
        className={`icon-button${caseSensitive ? ' icon-button-on' : ''}`}
        title="Match case"
        aria-pressed={caseSensitive}
        onClick={() => setCaseSensitive((v) => !v)}
      >
        Aa
      </button>
      <button type="button" className="icon-button" title="Previous match (Shift+Enter)" onClick={prev}>
        ↑
      </button>
      <button type="button" className="icon-button" title="Next match (Enter)" onClick={next}>
        ↓
      </button>
      <button
        type="button"
        className="icon-button"
        title="Close (Escape)"
        aria-label="Close search"
        onClick={onClose}
      >
        ×
      </button>
    </search>
  );
}
