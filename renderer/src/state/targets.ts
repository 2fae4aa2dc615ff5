import type { TargetView } from '@sallyport/protocol';
import { create } from 'zustand';
import { gateway, isUnauthenticated, messageOf } from '../api';
import { useSession } from './session';

export type TargetsStatus = 'idle' | 'loading' | 'ready' | 'error';

export interface TargetsState {
  status: TargetsStatus;
  targets: TargetView[];
  error: string | null;
  /** Free-text search over name, id, kind, host and labels. */
  query: string;
  /** A `key=value` label the list is narrowed to, or null for all. */
  label: string | null;
  load(): Promise<void>;
  setQuery(query: string): void;
  setLabel(label: string | null): void;
  clearFilters(): void;
  reset(): void;
}

const initial = { status: 'idle' as TargetsStatus, targets: [], error: null, query: '', label: null };

export const useTargets = create<TargetsState>()((set) => ({
  ...initial,

  async load() {
    set({ status: 'loading', error: null });
    try {
      const targets = await gateway.targets();
      set({ status: 'ready', targets });
    } catch (err) {
      set({ status: 'error', error: messageOf(err) });
      // The session ended (expired, or the gateway restarted): back to the sign-in screen.
      if (isUnauthenticated(err)) void useSession.getState().load();
    }
  },
  setQuery: (query) => set({ query }),
  setLabel: (label) => set({ label }),
  clearFilters: () => set({ query: '', label: null }),
  reset: () => set(initial),
}));

// ---- pure helpers ----

export const labelPairs = (t: TargetView): string[] => Object.entries(t.labels).map(([k, v]) => `${k}=${v}`);

const wordsOf = (query: string): string[] => query.trim().toLowerCase().split(/\s+/).filter(Boolean);

/**
 * What the search looks in, lower-cased, built once per target: a keystroke over 5,000 targets
 * then costs substring checks only. (Targets are replaced on load, never mutated, so the cache
 * follows the objects.)
 */
const haystacks = new WeakMap<TargetView, string>();
function haystackOf(t: TargetView): string {
  let h = haystacks.get(t);
  if (h === undefined) {
    h = [t.name, t.id, t.kind, t.host, t.description ?? '', t.database ?? '', ...labelPairs(t)]
      .join(' ')
      .toLowerCase();
    haystacks.set(t, h);
  }
  return h;
}

const hasWords = (t: TargetView, words: string[]): boolean => {
  const h = haystackOf(t);
  return words.every((w) => h.includes(w));
};

export function matchesQuery(t: TargetView, query: string): boolean {
  const words = wordsOf(query);
  return words.length === 0 || hasWords(t, words);
}

/** `key=value` (label keys hold no `=`), without building every pair of the target. */
export function matchesLabel(t: TargetView, label: string | null): boolean {
  if (label === null) return true;
  const eq = label.indexOf('=');
  if (eq < 0) return false;
  const key = label.slice(0, eq);
  return Object.hasOwn(t.labels, key) && t.labels[key] === label.slice(eq + 1);
}

/** Memoizes on the identity of the inputs, so selectors return stable references. */
function memo<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let last: { args: A; result: R } | undefined;
  return (...args) => {
    if (last && last.args.length === args.length && last.args.every((a, i) => Object.is(a, args[i]))) {
      return last.result;
    }
    const result = fn(...args);
    last = { args, result };
    return result;
  };
}

// ---- selectors ----

/** The order of `a.name.localeCompare(b.name)`, without setting up a comparison each call. */
const byName = new Intl.Collator().compare;

/** Sorted once per load; filtering keeps the order, so a keystroke sorts nothing. */
const sortedByName = memo((targets: TargetView[]) => [...targets].sort((a, b) => byName(a.name, b.name)));

const visible = memo((targets: TargetView[], query: string, label: string | null) => {
  const sorted = sortedByName(targets);
  const words = wordsOf(query);
  if (words.length === 0 && label === null) return sorted;
  return sorted.filter((t) => (words.length === 0 || hasWords(t, words)) && matchesLabel(t, label));
});

const labelOptions = memo((targets: TargetView[]) =>
  [...new Set(targets.flatMap(labelPairs))].sort((a, b) => a.localeCompare(b)),
);

export const selectVisibleTargets = (s: TargetsState) => visible(s.targets, s.query, s.label);
export const selectLabelOptions = (s: TargetsState) => labelOptions(s.targets);
export const selectTotal = (s: TargetsState) => s.targets.length;
export const selectQuery = (s: TargetsState) => s.query;
export const selectLabel = (s: TargetsState) => s.label;
export const selectStatus = (s: TargetsState) => s.status;
export const selectError = (s: TargetsState) => s.error;
export const selectFiltered = (s: TargetsState) => s.query.trim() !== '' || s.label !== null;
