import {
  GatewayError,
  type GrantView,
  type Notification,
  type RequestView,
  type ReviewView,
} from '@sallyport/protocol';
import { create } from 'zustand';
import { formatDuration, LEVEL_TEXT } from '../access/format';
import { denyReasonProblem, reviewDenyReasonProblem, reviewNoteProblem } from '../access/validate';
import { gateway, isUnauthenticated, messageOf } from '../api';
import { desktopNotify } from '../components/desktop-notify';
import { useNav } from '../components/nav';
import { toast } from '../components/toast';
import { targetName } from './access';
import { useSession } from './session';

/**
 * A break-glass grant someone took: every approver is told, and one of them reviews it afterwards
 * (loaded from the gateway, so it stays until someone has).
 */
export interface BreakGlassAlert {
  id: string;
  request: RequestView;
  grant: GrantView;
  at: string;
}

export type InboxItemRef = { kind: 'request' | 'review' | 'alert'; id: string };

export interface Decision {
  mode: 'idle' | 'deny';
  reason: string;
  showValidation: boolean;
  busy: 'approve' | 'deny' | 'review' | null;
  error: string | null;
}

export interface InboxState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: string | null;
  /** Access requests waiting for a decision I may make, newest first. */
  requests: RequestView[];
  /** Held statements and command lines waiting for me, newest first. */
  reviews: ReviewView[];
  alerts: BreakGlassAlert[];
  selected: InboxItemRef | null;
  decision: Decision;

  load(): Promise<void>;
  select(ref: InboxItemRef | null): void;
  startDeny(): void;
  cancelDeny(): void;
  setDenyReason(reason: string): void;
  approve(): Promise<void>;
  deny(): Promise<void>;
  /** Marks the selected break-glass grant reviewed, with `decision.reason` as what was found. */
  reviewAlert(): Promise<void>;
  onNotification(n: Notification): void;
  reset(): void;
}

const idleDecision: Decision = { mode: 'idle', reason: '', showValidation: false, busy: null, error: null };

const initial = {
  status: 'idle' as InboxState['status'],
  error: null,
  requests: [],
  reviews: [],
  alerts: [],
  selected: null,
  decision: idleDecision,
};

const me = () => useSession.getState().me?.username;

/** In-app toast, unless the inbox is on screen: the new item appears there already. */
const toastUnlessInInbox: typeof toast = (t, ttl) => {
  if (useNav.getState().view !== 'inbox') toast(t, ttl);
};

const upsertFirst = <T extends { id: string }>(list: T[], item: T): T[] => [
  item,
  ...list.filter((x) => x.id !== item.id),
];
const without = <T extends { id: string }>(list: T[], id: string): T[] => list.filter((x) => x.id !== id);

const what = (r: RequestView) =>
  `${LEVEL_TEXT[r.level].toLowerCase()} on ${targetName(r.targetId)} for ${formatDuration(r.durationSeconds)}`;

/** I have already given my approval to this (k-of-n) request. */
export const approvedByMe = (r: RequestView, username: string | undefined): boolean =>
  r.approvals.some((a) => a.approver === username && a.decision === 'approve');

export const useInbox = create<InboxState>()((set, get) => {
  /** After the selected item leaves the inbox, select the next one (or none). */
  const removeSelected = (kind: InboxItemRef['kind'], id: string) => {
    const sel = get().selected;
    if (sel?.kind !== kind || sel.id !== id) return;
    set({ selected: null, decision: idleDecision });
  };

  /**
   * A decision the gateway refused: shown on the item, and the inbox reloaded. If the item is gone
   * with the reload (someone else decided it meanwhile), the reason is toasted instead.
   */
  const decisionFailed = async (err: unknown) => {
    if (isUnauthenticated(err)) {
      void useSession.getState().load();
      return;
    }
    const message = messageOf(err);
    const sel = get().selected;
    set({ decision: { ...get().decision, busy: null, error: message } });
    await get().load();
    if (sel && get().selected === null) toast({ tone: 'warning', title: 'Not done', body: message });
  };

  return {
    ...initial,

    async load() {
      if (get().status === 'idle' || get().status === 'error') set({ status: 'loading', error: null });
      try {
        const [requests, reviews, toReview] = await Promise.all([
          gateway.requests({ scope: 'inbox', status: 'pending' }),
          gateway.reviews({ scope: 'inbox', status: 'pending' }),
          // A gateway from before break-glass reviews has no such list: the rest of the inbox still works.
          gateway.grantsToReview().catch((err: unknown) => {
            if (err instanceof GatewayError && err.status === 404) return [];
            throw err;
          }),
        ]);
        const alerts = toReview.map(({ grant, request }) => ({
          id: grant.id,
          grant,
          request,
          at: grant.createdAt,
        }));
        set({ status: 'ready', error: null, requests, reviews, alerts });
        const sel = get().selected;
        if (sel?.kind === 'request' && !requests.some((r) => r.id === sel.id))
          removeSelected('request', sel.id);
        if (sel?.kind === 'review' && !reviews.some((r) => r.id === sel.id)) removeSelected('review', sel.id);
        if (sel?.kind === 'alert' && !alerts.some((a) => a.id === sel.id)) removeSelected('alert', sel.id);
      } catch (err) {
        if (isUnauthenticated(err)) {
          void useSession.getState().load();
          return;
        }
        set({ status: 'error', error: messageOf(err) });
      }
    },

    select(ref) {
      const sel = get().selected;
      if (sel && ref && sel.kind === ref.kind && sel.id === ref.id) return;
      set({ selected: ref, decision: idleDecision });
    },

    startDeny: () => set({ decision: { ...get().decision, mode: 'deny', error: null } }),
    cancelDeny: () => set({ decision: idleDecision }),
    setDenyReason: (reason) => set({ decision: { ...get().decision, reason, error: null } }),

    async approve() {
      const sel = get().selected;
      if (!sel || sel.kind === 'alert' || get().decision.busy) return;
      set({ decision: { ...get().decision, busy: 'approve', error: null } });
      try {
        if (sel.kind === 'request') {
          const { request } = await gateway.approve(sel.id);
          if (request.status === 'pending') {
            set({ requests: get().requests.map((r) => (r.id === request.id ? request : r)) });
            toast({
              tone: 'success',
              title: 'Approval recorded',
              body: `${request.requester}: ${what(request)} still needs ${request.approvalsRequired - request.approvals.length} more.`,
            });
          } else {
            set({ requests: without(get().requests, request.id) });
            removeSelected('request', request.id);
            toast({
              tone: 'success',
              title: 'Approved',
              body: `${request.requester} now has ${what(request)}.`,
            });
          }
        } else {
          const review = await gateway.approveReview(sel.id);
          set({ reviews: without(get().reviews, review.id) });
          removeSelected('review', review.id);
          toast({
            tone: 'success',
            title: 'Approved',
            body: `${review.requester}’s ${review.kind === 'sql' ? 'statement' : 'command'} can run once.`,
          });
        }
        set({ decision: { ...get().decision, busy: null } });
      } catch (err) {
        await decisionFailed(err);
      }
    },

    async deny() {
      const sel = get().selected;
      const d = get().decision;
      if (!sel || sel.kind === 'alert' || d.busy) return;
      const problem =
        sel.kind === 'request' ? denyReasonProblem(d.reason) : reviewDenyReasonProblem(d.reason);
      if (problem !== null) {
        set({ decision: { ...d, mode: 'deny', showValidation: true } });
        return;
      }
      set({ decision: { ...d, busy: 'deny', error: null, showValidation: true } });
      try {
        if (sel.kind === 'request') {
          const request = await gateway.deny(sel.id, d.reason.trim());
          set({ requests: without(get().requests, request.id) });
          removeSelected('request', request.id);
          toast({ tone: 'info', title: 'Denied', body: `${request.requester} is told why.` });
        } else {
          const review = await gateway.denyReview(sel.id, d.reason.trim());
          set({ reviews: without(get().reviews, review.id) });
          removeSelected('review', review.id);
          toast({ tone: 'info', title: 'Denied', body: `${review.requester} is told why.` });
        }
        set({ decision: idleDecision });
      } catch (err) {
        await decisionFailed(err);
      }
    },

    async reviewAlert() {
      const sel = get().selected;
      const d = get().decision;
      if (sel?.kind !== 'alert' || d.busy) return;
      if (reviewNoteProblem(d.reason) !== null) {
        set({ decision: { ...d, showValidation: true } });
        return;
      }
      set({ decision: { ...d, busy: 'review', error: null, showValidation: true } });
      try {
        const grant = await gateway.reviewGrant(sel.id, d.reason.trim());
        set({ alerts: without(get().alerts, grant.id) });
        removeSelected('alert', grant.id);
        toast({
          tone: 'success',
          title: 'Reviewed',
          body: `${grant.holder}’s break-glass access is marked reviewed.`,
        });
        set({ decision: idleDecision });
      } catch (err) {
        await decisionFailed(err);
      }
    },

    onNotification(n) {
      const mine = me();
      switch (n.event) {
        case 'request.pending': {
          if (n.request.requester === mine) return;
          set({ requests: upsertFirst(get().requests, n.request) });
          const body = `${n.request.requester} asks for ${what(n.request)}: ${n.request.reason}`;
          toastUnlessInInbox({ tone: 'info', title: 'New access request', body });
          desktopNotify('Access request waiting for you', body);
          return;
        }
        case 'request.decided':
        case 'request.expired': {
          if (n.request.status === 'pending') {
            if (get().requests.some((r) => r.id === n.request.id))
              set({ requests: get().requests.map((r) => (r.id === n.request.id ? n.request : r)) });
            return;
          }
          if (!get().requests.some((r) => r.id === n.request.id)) return;
          set({ requests: without(get().requests, n.request.id) });
          removeSelected('request', n.request.id);
          if (n.request.requester !== mine) {
            toast({
              tone: 'info',
              title: `Request ${n.request.status}`,
              body: `${n.request.requester}: ${what(n.request)}`,
            });
          }
          return;
        }
        case 'grant.break_glass': {
          if (n.request.requester === mine) return;
          const alert: BreakGlassAlert = {
            id: n.grant.id,
            request: n.request,
            grant: n.grant,
            at: n.grant.createdAt,
          };
          set({ alerts: upsertFirst(get().alerts, alert) });
          const body = `${n.request.requester} took ${what(n.request)}: ${n.request.reason}`;
          toast({ tone: 'error', title: 'Break-glass access', body }, 15_000);
          desktopNotify('Break-glass access', body);
          return;
        }
        case 'grant.reviewed': {
          if (!get().alerts.some((a) => a.id === n.grant.id)) return;
          set({ alerts: without(get().alerts, n.grant.id) });
          removeSelected('alert', n.grant.id);
          // Said even in the inbox: the item someone was looking at (or typing a note on) is gone.
          if (n.grant.reviewedBy && n.grant.reviewedBy !== mine) {
            toast({
              tone: 'info',
              title: 'Break-glass reviewed',
              body: `${n.grant.reviewedBy} reviewed ${n.grant.holder}’s break-glass access.`,
            });
          }
          return;
        }
        case 'review.pending': {
          if (n.review.requester === mine) return;
          set({ reviews: upsertFirst(get().reviews, n.review) });
          const body = `${n.review.requester} on ${targetName(n.review.targetId)}: ${n.review.text.slice(0, 120)}`;
          toastUnlessInInbox({
            tone: 'info',
            title: n.review.kind === 'sql' ? 'Statement held for review' : 'Command held for review',
            body,
          });
          desktopNotify('Held for your review', body);
          return;
        }
        case 'review.decided': {
          if (n.review.status === 'pending' || !get().reviews.some((r) => r.id === n.review.id)) return;
          set({ reviews: without(get().reviews, n.review.id) });
          removeSelected('review', n.review.id);
          return;
        }
        default:
          return;
      }
    },

    reset: () => set(initial),
  };
});

// ---- selectors ----

export const selectInboxStatus = (s: InboxState) => s.status;
export const selectInboxError = (s: InboxState) => s.error;
export const selectInboxRequests = (s: InboxState) => s.requests;
export const selectInboxReviews = (s: InboxState) => s.reviews;
export const selectAlerts = (s: InboxState) => s.alerts;
export const selectSelected = (s: InboxState) => s.selected;
export const selectDecision = (s: InboxState) => s.decision;

/** What waits for me to act: the nav badge. */
export const selectInboxCount = (s: InboxState): number => {
  const username = useSession.getState().me?.username;
  return s.requests.filter((r) => !approvedByMe(r, username)).length + s.reviews.length + s.alerts.length;
};

export const selectSelectedRequest = (s: InboxState): RequestView | undefined =>
  s.selected?.kind === 'request' ? s.requests.find((r) => r.id === s.selected!.id) : undefined;
export const selectSelectedReview = (s: InboxState): ReviewView | undefined =>
  s.selected?.kind === 'review' ? s.reviews.find((r) => r.id === s.selected!.id) : undefined;
export const selectSelectedAlert = (s: InboxState): BreakGlassAlert | undefined =>
  s.selected?.kind === 'alert' ? s.alerts.find((a) => a.id === s.selected!.id) : undefined;
