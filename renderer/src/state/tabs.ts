import type { AccessLevel, TargetKind } from '@sallyport/protocol';
import { create } from 'zustand';

/**
 * Session tabs, in the style of Teleport Connect's documents: every tab has a typed kind and a
 * resource URI (`/targets/<id>/ssh`, `/targets/<id>/sql`, `/recordings/<sessionId>`). Many tabs
 * can be open at once; the list is persisted per user in localStorage (ids, titles, SQL drafts and
 * history — never a token or a credential) and restored on the next start, where a tab reconnects
 * only if its grant is still active.
 *
 * The seam for the rest of the app is `openTab` / `openTargetTab`: the targets list and the access
 * flow call it once they hold a grant.
 */

export type TabKind = 'ssh' | 'sql' | 'replay';

export type SshTabUri = `/targets/${string}/ssh`;
export type SqlTabUri = `/targets/${string}/sql`;
export type RecordingUri = `/recordings/${string}`;
export type TabUri = SshTabUri | SqlTabUri | RecordingUri;

export const sshTabUri = (targetId: string): SshTabUri => `/targets/${targetId}/ssh`;
export const sqlTabUri = (targetId: string): SqlTabUri => `/targets/${targetId}/sql`;
export const recordingUri = (sessionId: string): RecordingUri => `/recordings/${sessionId}`;

export type ParsedTabUri =
  | { kind: 'ssh'; targetId: string }
  | { kind: 'sql'; targetId: string }
  | { kind: 'replay'; sessionId: string };

export function parseTabUri(uri: string): ParsedTabUri | null {
  const target = /^\/targets\/([a-z0-9][a-z0-9-]{0,62})\/(ssh|sql)$/.exec(uri);
  if (target) return { kind: target[2] as 'ssh' | 'sql', targetId: target[1]! };
  const rec = /^\/recordings\/([0-9a-f-]{36})$/.exec(uri);
  if (rec) return { kind: 'replay', sessionId: rec[1]! };
  return null;
}

/** Reserved ids of the two views that are always there (they are not tabs and are never closed). */
export const HOME = 'home';
export const RECORDINGS = 'recordings';
export type FixedView = typeof HOME | typeof RECORDINGS;

interface TabBase {
  /** Document id, unique per tab (two SSH tabs on one target share a URI, not an id). */
  id: string;
  kind: TabKind;
  uri: TabUri;
  title: string;
  openedAt: string;
}

export interface SshTab extends TabBase {
  kind: 'ssh';
  uri: SshTabUri;
  targetId: string;
  grantId: string;
  level?: AccessLevel;
}

export type HistoryOutcome = 'ok' | 'error' | 'blocked' | 'review' | 'cancelled';

export interface HistoryEntry {
  sql: string;
  at: string;
  outcome: HistoryOutcome;
  /** Rows of the last statement that returned some. */
  rows?: number;
}

export interface SqlTab extends TabBase {
  kind: 'sql';
  uri: SqlTabUri;
  targetId: string;
  grantId: string;
  level?: AccessLevel;
  /** The editor's text, kept across restarts. */
  draft: string;
  /** Statements run in this tab, newest first. */
  history: HistoryEntry[];
}

export interface ReplayTab extends TabBase {
  kind: 'replay';
  uri: RecordingUri;
  sessionId: string;
  recordingKind: 'ssh' | 'sql';
  targetId: string;
}

export type Tab = SshTab | SqlTab | ReplayTab;

/** Live state of a tab's connection (not persisted), for the tab strip's status dot. */
export type TabStatus =
  | 'checking'
  | 'connecting'
  | 'connected'
  | 'running'
  | 'closed'
  | 'grant-ended'
  | 'idle';

export type OpenTabInput =
  | { kind: 'ssh'; targetId: string; title?: string; grantId: string; level?: AccessLevel }
  | {
      kind: 'sql';
      targetId: string;
      title?: string;
      grantId: string;
      level?: AccessLevel;
      /** Initial text of a new tab (an existing tab keeps its own). */
      sql?: string;
    }
  | { kind: 'replay'; sessionId: string; recordingKind: 'ssh' | 'sql'; targetId: string; title?: string };

export const HISTORY_LIMIT = 100;
const STORAGE_PREFIX = 'sallyport.tabs.v1:';
const DRAFT_LIMIT = 256 * 1024;

export interface TabsState {
  /** Whose tabs these are (the storage key); null until `attach`. */
  owner: string | null;
  tabs: Tab[];
  /** A tab id, or one of the fixed views. */
  activeId: string;
  status: Record<string, TabStatus>;
  /** Bumped to ask a tab to (re)connect: a new grant for the same URI, or "reconnect". */
  epoch: Record<string, number>;

  /** Loads the persisted tabs of `username` (called once signed in). */
  attach(username: string): void;
  /** Forgets the in-memory tabs (sign-out); the persisted list stays for that user's next sign-in. */
  detach(): void;
  open(input: OpenTabInput, opts?: { newTab?: boolean }): string;
  close(id: string): void;
  activate(id: string): void;
  setStatus(id: string, status: TabStatus): void;
  reconnect(id: string): void;
  setDraft(id: string, draft: string): void;
  addHistory(id: string, entry: HistoryEntry): void;
  clearHistory(id: string): void;
  /** Moves a tab to another position (drag and drop in the strip). */
  move(id: string, toIndex: number): void;
}

const newId = () =>
  `tab-${typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : String(Math.random()).slice(2)}`;

function uriOf(input: OpenTabInput): TabUri {
  if (input.kind === 'ssh') return sshTabUri(input.targetId);
  if (input.kind === 'sql') return sqlTabUri(input.targetId);
  return recordingUri(input.sessionId);
}

function tabFrom(input: OpenTabInput): Tab {
  const base = { id: newId(), openedAt: new Date().toISOString() };
  if (input.kind === 'ssh') {
    return {
      ...base,
      kind: 'ssh',
      uri: sshTabUri(input.targetId),
      title: input.title ?? input.targetId,
      targetId: input.targetId,
      grantId: input.grantId,
      ...(input.level ? { level: input.level } : {}),
    };
  }
  if (input.kind === 'sql') {
    return {
      ...base,
      kind: 'sql',
      uri: sqlTabUri(input.targetId),
      title: input.title ?? input.targetId,
      targetId: input.targetId,
      grantId: input.grantId,
      ...(input.level ? { level: input.level } : {}),
      draft: input.sql ?? '',
      history: [],
    };
  }
  return {
    ...base,
    kind: 'replay',
    uri: recordingUri(input.sessionId),
    title: input.title ?? `Replay ${input.sessionId.slice(0, 8)}`,
    sessionId: input.sessionId,
    recordingKind: input.recordingKind,
    targetId: input.targetId,
  };
}

// ---- persistence (localStorage; nothing secret: ids, titles, drafts and history) ----

const storage = (): Storage | null => {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
};

interface Persisted {
  version: 1;
  tabs: Tab[];
  activeId: string;
}

/** Validates what comes back from storage: anything that does not look like a tab is dropped. */
export function restoreTabs(raw: unknown): Persisted {
  const empty: Persisted = { version: 1, tabs: [], activeId: HOME };
  if (typeof raw !== 'object' || raw === null) return empty;
  const r = raw as { tabs?: unknown; activeId?: unknown };
  if (!Array.isArray(r.tabs)) return empty;
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length < 300;
  const tabs: Tab[] = [];
  for (const t of r.tabs as Array<Record<string, unknown>>) {
    if (typeof t !== 'object' || t === null || !str(t.id) || !str(t.uri) || !str(t.title)) continue;
    const parsed = parseTabUri(t.uri);
    if (!parsed || parsed.kind !== t.kind) continue;
    const openedAt = str(t.openedAt) ? t.openedAt : new Date().toISOString();
    if (parsed.kind === 'replay') {
      if (t.recordingKind !== 'ssh' && t.recordingKind !== 'sql') continue;
      tabs.push({
        id: t.id,
        kind: 'replay',
        uri: recordingUri(parsed.sessionId),
        title: t.title,
        openedAt,
        sessionId: parsed.sessionId,
        recordingKind: t.recordingKind,
        targetId: str(t.targetId) ? t.targetId : '',
      });
      continue;
    }
    if (!str(t.grantId)) continue;
    const level = str(t.level) ? (t.level as AccessLevel) : undefined;
    if (parsed.kind === 'ssh') {
      tabs.push({
        id: t.id,
        kind: 'ssh',
        uri: sshTabUri(parsed.targetId),
        title: t.title,
        openedAt,
        targetId: parsed.targetId,
        grantId: t.grantId,
        ...(level ? { level } : {}),
      });
    } else {
      const history = Array.isArray(t.history)
        ? (t.history as Array<Record<string, unknown>>)
            .filter((h) => typeof h === 'object' && h !== null && typeof h.sql === 'string' && str(h.at))
            .slice(0, HISTORY_LIMIT)
            .map(
              (h): HistoryEntry => ({
                sql: h.sql as string,
                at: h.at as string,
                outcome: (['ok', 'error', 'blocked', 'review', 'cancelled'] as const).includes(
                  h.outcome as HistoryOutcome,
                )
                  ? (h.outcome as HistoryOutcome)
                  : 'ok',
                ...(typeof h.rows === 'number' ? { rows: h.rows } : {}),
              }),
            )
        : [];
      tabs.push({
        id: t.id,
        kind: 'sql',
        uri: sqlTabUri(parsed.targetId),
        title: t.title,
        openedAt,
        targetId: parsed.targetId,
        grantId: t.grantId,
        ...(level ? { level } : {}),
        draft: typeof t.draft === 'string' ? t.draft.slice(0, DRAFT_LIMIT) : '',
        history,
      });
    }
  }
  const ids = new Set(tabs.map((t) => t.id));
  const activeId =
    typeof r.activeId === 'string' && (ids.has(r.activeId) || r.activeId === RECORDINGS) ? r.activeId : HOME;
  return { version: 1, tabs, activeId };
}

function load(owner: string): Persisted {
  const raw = storage()?.getItem(STORAGE_PREFIX + owner);
  if (!raw) return restoreTabs(null);
  try {
    return restoreTabs(JSON.parse(raw));
  } catch {
    return restoreTabs(null);
  }
}

function save(state: Pick<TabsState, 'owner' | 'tabs' | 'activeId'>): void {
  if (!state.owner) return;
  const data: Persisted = { version: 1, tabs: state.tabs, activeId: state.activeId };
  try {
    storage()?.setItem(STORAGE_PREFIX + state.owner, JSON.stringify(data));
  } catch {
    // Storage full or disabled: tabs simply are not restored next time.
  }
}

export const useTabs = create<TabsState>()((set, get) => ({
  owner: null,
  tabs: [],
  activeId: HOME,
  status: {},
  epoch: {},

  attach(username) {
    if (get().owner === username) return;
    const persisted = load(username);
    set({ owner: username, tabs: persisted.tabs, activeId: persisted.activeId, status: {}, epoch: {} });
  },
  detach: () => set({ owner: null, tabs: [], activeId: HOME, status: {}, epoch: {} }),

  open(input, opts = {}) {
    const uri = uriOf(input);
    const existing = opts.newTab ? undefined : get().tabs.find((t) => t.uri === uri);
    if (existing) {
      // The same resource with a new grant (access requested again): the tab takes it and reconnects.
      const grantId = input.kind === 'replay' ? undefined : input.grantId;
      if (grantId && 'grantId' in existing && existing.grantId !== grantId) {
        set((s) => ({
          tabs: s.tabs.map((t) =>
            t.id === existing.id && t.kind !== 'replay'
              ? { ...t, grantId, ...(input.kind !== 'replay' && input.level ? { level: input.level } : {}) }
              : t,
          ),
          epoch: { ...s.epoch, [existing.id]: (s.epoch[existing.id] ?? 0) + 1 },
        }));
      }
      set({ activeId: existing.id });
      return existing.id;
    }
    const tab = tabFrom(input);
    set((s) => ({ tabs: [...s.tabs, tab], activeId: tab.id }));
    return tab.id;
  },

  close(id) {
    set((s) => {
      const index = s.tabs.findIndex((t) => t.id === id);
      if (index < 0) return s;
      const tabs = s.tabs.filter((t) => t.id !== id);
      const { [id]: _status, ...status } = s.status;
      const { [id]: _epoch, ...epoch } = s.epoch;
      // Closing the active tab shows its right neighbour, else its left one, else home (like a browser).
      const activeId = s.activeId !== id ? s.activeId : (tabs[index]?.id ?? tabs[index - 1]?.id ?? HOME);
      return { tabs, status, epoch, activeId };
    });
  },
  activate: (id) => set({ activeId: id }),
  setStatus: (id, status) => {
    if (get().status[id] !== status) set((s) => ({ status: { ...s.status, [id]: status } }));
  },
  reconnect: (id) => set((s) => ({ epoch: { ...s.epoch, [id]: (s.epoch[id] ?? 0) + 1 } })),
  setDraft(id, draft) {
    const text = draft.slice(0, DRAFT_LIMIT);
    set((s) => ({
      tabs: s.tabs.map((t) =>
        t.id === id && t.kind === 'sql' && t.draft !== text ? { ...t, draft: text } : t,
      ),
    }));
  },
  addHistory(id, entry) {
    set((s) => ({
      tabs: s.tabs.map((t) =>
        t.id === id && t.kind === 'sql'
          ? {
              ...t,
              history: [entry, ...t.history.filter((h) => h.sql !== entry.sql)].slice(0, HISTORY_LIMIT),
            }
          : t,
      ),
    }));
  },
  clearHistory: (id) =>
    set((s) => ({ tabs: s.tabs.map((t) => (t.id === id && t.kind === 'sql' ? { ...t, history: [] } : t)) })),
  move(id, toIndex) {
    set((s) => {
      const from = s.tabs.findIndex((t) => t.id === id);
      if (from < 0) return s;
      const tabs = [...s.tabs];
      const [tab] = tabs.splice(from, 1);
      tabs.splice(Math.max(0, Math.min(toIndex, tabs.length)), 0, tab!);
      return { tabs };
    });
  },
}));

// Persist the tab list (not the live status) whenever it changes.
useTabs.subscribe((s, prev) => {
  if (s.owner && (s.tabs !== prev.tabs || s.activeId !== prev.activeId || s.owner !== prev.owner)) save(s);
});

// ---- the seam used by the rest of the app ----

/** Opens (or focuses) a tab. Returns the tab id. */
export const openTab = (input: OpenTabInput, opts?: { newTab?: boolean }): string =>
  useTabs.getState().open(input, opts);

/**
 * Opens the natural tab for a target under a grant: a terminal for SSH targets, a SQL editor
 * for PostgreSQL. If a tab for that target exists it is focused (and takes the new grant).
 */
export function openTargetTab(
  target: { id: string; name?: string; kind: TargetKind },
  grant: { id: string; level?: AccessLevel },
  opts?: { newTab?: boolean },
): string {
  const common = {
    targetId: target.id,
    title: target.name ?? target.id,
    grantId: grant.id,
    ...(grant.level ? { level: grant.level } : {}),
  };
  return openTab(target.kind === 'postgres' ? { kind: 'sql', ...common } : { kind: 'ssh', ...common }, opts);
}

export const openRecordings = () => useTabs.getState().activate(RECORDINGS);
export const showHome = () => useTabs.getState().activate(HOME);

// ---- selectors ----

export const selectTabs = (s: TabsState) => s.tabs;
export const selectActiveId = (s: TabsState) => s.activeId;
export const selectActiveTab = (s: TabsState): Tab | undefined => s.tabs.find((t) => t.id === s.activeId);
export const selectTab =
  (id: string) =>
  (s: TabsState): Tab | undefined =>
    s.tabs.find((t) => t.id === id);
export const selectStatusOf = (id: string) => (s: TabsState) => s.status[id] ?? 'idle';
export const selectEpochOf = (id: string) => (s: TabsState) => s.epoch[id] ?? 0;
export const selectTabCount = (s: TabsState) => s.tabs.length;

const KIND_NAME: Record<TabKind, string> = { ssh: 'SSH session', sql: 'SQL session', replay: 'Replay' };

/** What the page header says for the active view; null on the home view (the page's own title). */
let headingCache: { key: string; value: { title: string; subtitle: string } | null } = {
  key: '',
  value: null,
};
export function selectHeading(s: TabsState): { title: string; subtitle: string } | null {
  const tab = selectActiveTab(s);
  const key = tab ? `${tab.id}\u0000${tab.title}\u0000${tab.uri}` : s.activeId;
  if (headingCache.key === key) return headingCache.value;
  let value: { title: string; subtitle: string } | null = null;
  if (s.activeId === RECORDINGS)
    value = { title: 'Recordings', subtitle: 'Replay recorded SSH and SQL sessions' };
  else if (tab) value = { title: tab.title, subtitle: `${KIND_NAME[tab.kind]} · ${tab.uri}` };
  headingCache = { key, value };
  return value;
}
