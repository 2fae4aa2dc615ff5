import type { AuditEventView, AuditVerify } from '@sallyport/protocol';
import { create } from 'zustand';
import { gateway, isUnauthenticated, messageOf } from '../api';
import { useSession } from '../state/session';

export interface AuditFilters {
  /** Who did it (the event's actor). */
  actor: string;
  target: string;
  /** An exact kind (`request.denied`) or a family (`request.*`). */
  kind: string;
  /** `datetime-local` values (the browser's time zone); empty for open-ended. */
  since: string;
  until: string;
}

export interface AuditState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: string | null;
  /** The form as typed. */
  draft: AuditFilters;
  /** The filters the list was loaded with. */
  applied: AuditFilters;
  events: AuditEventView[];
  /** A full page came back: there may be more after the last event. */
  hasMore: boolean;
  loadingMore: boolean;
  verify: { status: 'idle' | 'running' | 'done' | 'error'; result: AuditVerify | null; error: string | null };
  setDraft(patch: Partial<AuditFilters>): void;
  apply(): Promise<void>;
  clearFilters(): Promise<void>;
  loadMore(): Promise<void>;
  runVerify(): Promise<void>;
  reset(): void;
}

const PAGE = 200;
const noFilters: AuditFilters = { actor: '', target: '', kind: '', since: '', until: '' };

const initial = {
  status: 'idle' as AuditState['status'],
  error: null,
  draft: noFilters,
  applied: noFilters,
  events: [],
  hasMore: false,
  loadingMore: false,
  verify: { status: 'idle' as const, result: null, error: null },
};

const iso = (local: string): string | undefined => {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

function query(f: AuditFilters, afterSeq?: number) {
  const q: Parameters<typeof gateway.audit>[0] = { limit: PAGE };
  if (f.actor.trim()) q.actor = f.actor.trim();
  if (f.target.trim()) q.target = f.target.trim();
  if (f.kind.trim()) q.kind = f.kind.trim();
  const since = iso(f.since);
  const until = iso(f.until);
  if (since) q.since = since;
  if (until) q.until = until;
  if (afterSeq !== undefined) q.afterSeq = afterSeq;
  return q;
}

function ended(err: unknown): boolean {
  if (!isUnauthenticated(err)) return false;
  void useSession.getState().load();
  return true;
}

export const useAudit = create<AuditState>()((set, get) => ({
  ...initial,

  setDraft: (patch) => set({ draft: { ...get().draft, ...patch } }),

  async apply() {
    const filters = get().draft;
    set({ status: 'loading', error: null, applied: filters });
    try {
      const events = await gateway.audit(query(filters));
      if (get().applied !== filters) return;
      set({ status: 'ready', events, hasMore: events.length === PAGE });
    } catch (err) {
      if (ended(err)) return;
      set({ status: 'error', error: messageOf(err) });
    }
  },

  async clearFilters() {
    set({ draft: noFilters });
    await get().apply();
  },

  async loadMore() {
    const { events, applied, loadingMore } = get();
    const last = events[events.length - 1];
    if (!last || loadingMore) return;
    set({ loadingMore: true });
    try {
      const more = await gateway.audit(query(applied, last.seq));
      if (get().applied !== applied) return;
      set({ events: [...get().events, ...more], hasMore: more.length === PAGE });
    } catch (err) {
      if (ended(err)) return;
      set({ error: messageOf(err) });
    } finally {
      set({ loadingMore: false });
    }
  },

  async runVerify() {
    set({ verify: { status: 'running', result: null, error: null } });
    try {
      const result = await gateway.verifyAudit();
      set({ verify: { status: 'done', result, error: null } });
    } catch (err) {
      if (ended(err)) return;
      set({ verify: { status: 'error', result: null, error: messageOf(err) } });
    }
  },

  reset: () => set(initial),
}));

// ---- selectors ----

export const selectAuditStatus = (s: AuditState) => s.status;
export const selectAuditError = (s: AuditState) => s.error;
export const selectAuditEvents = (s: AuditState) => s.events;
export const selectDraft = (s: AuditState) => s.draft;
export const selectHasMore = (s: AuditState) => s.hasMore;
export const selectLoadingMore = (s: AuditState) => s.loadingMore;
export const selectVerify = (s: AuditState) => s.verify;
export const selectFiltered = (s: AuditState) => Object.values(s.applied).some((v) => v.trim() !== '');
