import type {
  AccessLevel,
  CreateAccessRequest,
  GrantView,
  Notification,
  PolicyExplanation,
  RequestView,
  TargetView,
} from '@sallyport/protocol';
import { create } from 'zustand';
import { clampDuration, formatDuration, LEVEL_TEXT, prefillLevel, ruleFor } from '../access/format';
import { requestReasonProblem, revokeReasonProblem } from '../access/validate';
import { gateway, isUnauthenticated, messageOf } from '../api';
import { desktopNotify } from '../components/desktop-notify';
import { useNav } from '../components/nav';
import { toast } from '../components/toast';
import { useSession } from './session';
import { useTargets } from './targets';

// ---------------------------------------------------------------------------------------------
// THE OPEN-TAB SEAM. Everything that wants a session on a target (double-click on an active
// target, an approval arriving for a request made here, "Open" in My access) goes through
// openTargetTab(). Until session tabs exist it shows the "Connecting…" placeholder view; the
// tabs feature plugs in with setTabOpener() (or replaces the fallback below) and no caller
// changes.
// ---------------------------------------------------------------------------------------------

export type TabOpener = (target: TargetView, grant: GrantView) => void;
let tabOpener: TabOpener | null = null;

/** Installs the real tab opener (returns a function that removes it again). */
export function setTabOpener(opener: TabOpener | null): () => void {
  tabOpener = opener;
  return () => {
    if (tabOpener === opener) tabOpener = null;
  };
}

/** Opens (or focuses) a session tab on `target` under `grant`. */
export function openTargetTab(target: TargetView, grant: GrantView): void {
  useAccess.setState({ opened: { target, grant, at: Date.now() } });
  if (tabOpener) {
    tabOpener(target, grant);
    return;
  }
  useNav.getState().go('connecting');
}

// ---------------------------------------------------------------------------------------------

export interface RequestForm {
  level: AccessLevel;
  duration: string;
  reason: string;
  ticket: string;
  breakGlass: boolean;
}

/** form: being filled in; pending: waiting for approvers; the rest: how a pending request ended. */
export type DialogPhase = 'form' | 'pending' | 'denied' | 'expired' | 'cancelled';

export interface RequestDialog {
  /** Changes with every opening, so late answers for an earlier dialog are dropped. */
  token: number;
  target: TargetView;
  extendsGrant: GrantView | null;
  phase: DialogPhase;
  form: RequestForm;
  levelTouched: boolean;
  explanation: PolicyExplanation | null;
  explaining: boolean;
  explainError: string | null;
  showValidation: boolean;
  submitting: boolean;
  /** The gateway's refusal, shown inline. */
  error: string | null;
  request: RequestView | null;
  cancelling: boolean;
}

export interface RevokeDialog {
  grant: GrantView;
  reason: string;
  showValidation: boolean;
  busy: boolean;
  error: string | null;
}

export interface AccessState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: string | null;
  /** My requests, newest first. */
  requests: RequestView[];
  /** My grants, newest first. */
  grants: GrantView[];
  dialog: RequestDialog | null;
  revoke: RevokeDialog | null;
  /** Requests made from this console: their approval opens the tab by itself. */
  awaiting: string[];
  /** The last tab asked for through the seam (the placeholder view shows it). */
  opened: { target: TargetView; grant: GrantView; at: number } | null;
  /** Ids of requests being cancelled from My access. */
  cancelling: string[];

  load(): Promise<void>;
  /** Double-click / Enter on a target: open its tab, show its pending request, or ask for access. */
  activateTarget(target: TargetView): Promise<void>;
  openRequest(target: TargetView, opts?: { extendsGrant?: GrantView }): void;
  extendGrant(grant: GrantView): Promise<void>;
  showPending(target: TargetView, requestId: string): Promise<void>;
  updateForm(patch: Partial<RequestForm>): void;
  submit(): Promise<void>;
  cancelRequest(id: string): Promise<void>;
  closeDialog(): void;
  startRevoke(grant: GrantView): void;
  setRevokeReason(reason: string): void;
  confirmRevoke(): Promise<void>;
  closeRevoke(): void;
  onNotification(n: Notification): void;
  reset(): void;
}

const initial = {
  status: 'idle' as AccessState['status'],
  error: null,
  requests: [],
  grants: [],
  dialog: null,
  revoke: null,
  awaiting: [],
  opened: null,
  cancelling: [],
};

let dialogToken = 0;

const me = () => useSession.getState().me?.username;

export const targetName = (id: string): string =>
  useTargets.getState().targets.find((t) => t.id === id)?.name ?? id;

async function targetById(id: string): Promise<TargetView | undefined> {
  const known = useTargets.getState().targets.find((t) => t.id === id);
  if (known) return known;
  try {
    return await gateway.target(id);
  } catch {
    return undefined;
  }
}

const upsert = <T extends { id: string }>(list: T[], item: T): T[] =>
  list.some((x) => x.id === item.id) ? list.map((x) => (x.id === item.id ? item : x)) : [item, ...list];

const refreshTargets = () => {
  if (useTargets.getState().status !== 'idle') void useTargets.getState().load();
};

function sessionEnded(err: unknown): boolean {
  if (!isUnauthenticated(err)) return false;
  void useSession.getState().load();
  return true;
}

const isUsable = (g: GrantView) => g.status === 'active' && Date.parse(g.expiresAt) > Date.now();

const decidedText = (r: RequestView) =>
  `${LEVEL_TEXT[r.level].toLowerCase()} on ${targetName(r.targetId)} for ${formatDuration(r.durationSeconds)}`;

export const useAccess = create<AccessState>()((set, get) => {
  /** Applies a change to the open request dialog only if it is still the same one. */
  const patchDialog = (token: number, patch: Partial<RequestDialog>) => {
    const d = get().dialog;
    if (d && d.token === token) set({ dialog: { ...d, ...patch } });
  };

  /** A request of mine changed (answer, notification, reload): dialog, awaiting, tab. */
  const requestChanged = async (r: RequestView, grant?: GrantView) => {
    set({ requests: upsert(get().requests, r) });
    if (grant) set({ grants: upsert(get().grants, grant) });
    const d = get().dialog;
    const inDialog = d !== null && d.request?.id === r.id;
    const awaited = get().awaiting.includes(r.id);
    if (r.status === 'pending') return;
    if (awaited) set({ awaiting: get().awaiting.filter((id) => id !== r.id) });
    if (r.status === 'approved') {
      if (inDialog) set({ dialog: null });
      if (grant && awaited && r.extendsGrantId === null) {
        const target = await targetById(r.targetId);
        if (target) openTargetTab(target, grant);
      }
    } else if (inDialog) {
      const phase: DialogPhase =
        r.status === 'denied' ? 'denied' : r.status === 'expired' ? 'expired' : 'cancelled';
      set({ dialog: { ...d, phase, request: r, cancelling: false } });
    }
  };

  return {
    ...initial,

    async load() {
      if (get().status === 'idle' || get().status === 'error') set({ status: 'loading', error: null });
      try {
        const [requests, grants] = await Promise.all([
          gateway.requests({ scope: 'mine' }),
          gateway.grants({ scope: 'mine' }),
        ]);
        set({ status: 'ready', error: null, requests, grants });
        // Anything awaited that was decided while we were not listening.
        for (const id of get().awaiting) {
          const r = requests.find((x) => x.id === id);
          if (r && r.status !== 'pending') {
            void requestChanged(
              r,
              grants.find((g) => g.id === r.grantId),
            );
          }
        }
      } catch (err) {
        if (sessionEnded(err)) return;
        set({ status: 'error', error: messageOf(err) });
      }
    },

    async activateTarget(target) {
      const { state, grantId, requestId } = target.access;
      if (state === 'active' || state === 'expiring') {
        const find = () => get().grants.find((g) => g.id === grantId && isUsable(g));
        if (!find()) await get().load();
        const grant = find();
        if (grant) openTargetTab(target, grant);
        else {
          toast({ tone: 'warning', title: 'That grant has ended', body: 'Request access again.' });
          refreshTargets();
        }
        return;
      }
      if (state === 'pending' && requestId) {
        await get().showPending(target, requestId);
        return;
      }
      get().openRequest(target);
    },

    openRequest(target, opts = {}) {
      const token = ++dialogToken;
      const extendsGrant = opts.extendsGrant ?? null;
      set({
        dialog: {
          token,
          target,
          extendsGrant,
          phase: 'form',
          form: {
            level: extendsGrant?.level ?? prefillLevel(null, target.kind),
            duration: '30m',
            reason: '',
            ticket: '',
            breakGlass: false,
          },
          levelTouched: extendsGrant !== null,
          explanation: null,
          explaining: true,
          explainError: null,
          showValidation: false,
          submitting: false,
          error: null,
          request: null,
          cancelling: false,
        },
      });
      gateway.explain({ target: target.id }).then(
        (explanation) => {
          const d = get().dialog;
          if (!d || d.token !== token) return;
          const level = d.levelTouched ? d.form.level : prefillLevel(explanation, target.kind);
          const duration = clampDuration(d.form.duration, ruleFor(explanation, level)?.maxDuration);
          patchDialog(token, { explanation, explaining: false, form: { ...d.form, level, duration } });
        },
        (err) => {
          if (sessionEnded(err)) return;
          patchDialog(token, { explaining: false, explainError: messageOf(err) });
        },
      );
    },

    async extendGrant(grant) {
      const target = await targetById(grant.targetId);
      if (!target) {
        toast({
          tone: 'error',
          title: 'Cannot extend',
          body: `Target ${grant.targetId} is not visible to you.`,
        });
        return;
      }
      get().openRequest(target, { extendsGrant: grant });
    },

    async showPending(target, requestId) {
      const token = ++dialogToken;
      const known = get().requests.find((r) => r.id === requestId) ?? null;
      set({
        awaiting: get().awaiting.includes(requestId) ? get().awaiting : [...get().awaiting, requestId],
        dialog: {
          token,
          target,
          extendsGrant: null,
          phase: 'pending',
          form: {
            level: prefillLevel(null, target.kind),
            duration: '30m',
            reason: '',
            ticket: '',
            breakGlass: false,
          },
          levelTouched: true,
          explanation: null,
          explaining: false,
          explainError: null,
          showValidation: false,
          submitting: false,
          error: null,
          request: known,
          cancelling: false,
        },
      });
      try {
        const request = await gateway.request(requestId);
        patchDialog(token, { request });
        await requestChanged(
          request,
          request.grantId ? get().grants.find((g) => g.id === request.grantId) : undefined,
        );
      } catch (err) {
        if (sessionEnded(err)) return;
        patchDialog(token, { error: messageOf(err) });
      }
    },

    updateForm(patch) {
      const d = get().dialog;
      if (!d) return;
      const form = { ...d.form, ...patch };
      if (patch.level !== undefined) {
        const rule = ruleFor(d.explanation, form.level);
        form.duration = clampDuration(form.duration, rule?.maxDuration);
        if (!rule?.breakGlass) form.breakGlass = false;
      }
      set({
        dialog: { ...d, form, levelTouched: d.levelTouched || patch.level !== undefined, error: null },
      });
    },

    async submit() {
      const d = get().dialog;
      if (d?.phase !== 'form' || d.submitting) return;
      if (requestReasonProblem(d.form.reason) !== null) {
        set({ dialog: { ...d, showValidation: true } });
        return;
      }
      const { token, target, extendsGrant, form } = d;
      patchDialog(token, { submitting: true, error: null, showValidation: true });
      const ticket = form.ticket.trim();
      const body: CreateAccessRequest = {
        targetId: target.id,
        level: form.level,
        duration: form.duration,
        reason: form.reason.trim(),
        ...(ticket ? { ticket } : {}),
        ...(form.breakGlass ? { breakGlass: true } : {}),
        ...(extendsGrant ? { extendsGrantId: extendsGrant.id } : {}),
      };
      try {
        const outcome = await gateway.requestAccess(body);
        set({ requests: upsert(get().requests, outcome.request) });
        if (outcome.outcome === 'granted') {
          set({ grants: upsert(get().grants, outcome.grant) });
          if (get().dialog?.token === token) set({ dialog: null });
          if (extendsGrant) {
            toast({ tone: 'success', title: 'Access extended', body: decidedText(outcome.request) });
          } else {
            toast({
              tone: outcome.request.breakGlass ? 'warning' : 'success',
              title: outcome.request.breakGlass ? 'Break-glass access granted' : 'Access granted',
              body: decidedText(outcome.request),
            });
            openTargetTab(target, outcome.grant);
          }
        } else {
          if (!extendsGrant) set({ awaiting: [...get().awaiting, outcome.request.id] });
          patchDialog(token, { phase: 'pending', submitting: false, request: outcome.request });
        }
        refreshTargets();
      } catch (err) {
        if (sessionEnded(err)) return;
        patchDialog(token, { submitting: false, error: messageOf(err) });
      }
    },

    async cancelRequest(id) {
      const d = get().dialog;
      if (d?.request?.id === id) set({ dialog: { ...d, cancelling: true, error: null } });
      set({ cancelling: [...get().cancelling, id] });
      try {
        const r = await gateway.cancel(id);
        set({ awaiting: get().awaiting.filter((x) => x !== id) });
        if (get().dialog?.request?.id === id) set({ dialog: null });
        set({ requests: upsert(get().requests, r) });
        toast({ tone: 'info', title: 'Request cancelled', body: decidedText(r) });
        refreshTargets();
      } catch (err) {
        if (sessionEnded(err)) return;
        const cur = get().dialog;
        if (cur?.request?.id === id) set({ dialog: { ...cur, cancelling: false, error: messageOf(err) } });
        else toast({ tone: 'error', title: 'Could not cancel', body: messageOf(err) });
      } finally {
        set({ cancelling: get().cancelling.filter((x) => x !== id) });
      }
    },

    closeDialog: () => set({ dialog: null }),

    startRevoke: (grant) =>
      set({ revoke: { grant, reason: '', showValidation: false, busy: false, error: null } }),

    setRevokeReason(reason) {
      const r = get().revoke;
      if (r) set({ revoke: { ...r, reason, error: null } });
    },

    async confirmRevoke() {
      const r = get().revoke;
      if (!r || r.busy) return;
      if (revokeReasonProblem(r.reason) !== null) {
        set({ revoke: { ...r, showValidation: true } });
        return;
      }
      set({ revoke: { ...r, busy: true, error: null, showValidation: true } });
      try {
        const grant = await gateway.revoke(r.grant.id, r.reason.trim());
        set({ grants: upsert(get().grants, grant), revoke: null });
        toast({
          tone: 'info',
          title: 'Access revoked',
          body: `${LEVEL_TEXT[grant.level]} on ${targetName(grant.targetId)} has ended.`,
        });
        refreshTargets();
      } catch (err) {
        if (sessionEnded(err)) return;
        const cur = get().revoke;
        if (cur) set({ revoke: { ...cur, busy: false, error: messageOf(err) } });
      }
    },

    closeRevoke: () => set({ revoke: null }),

    onNotification(n) {
      const mine = me();
      switch (n.event) {
        case 'request.decided': {
          if (n.request.requester !== mine) return;
          const r = n.request;
          if (r.status === 'approved') {
            const by = r.decidedBy ?? r.approvals.at(-1)?.approver;
            const body = `${decidedText(r)}${by ? `, approved by ${by}` : ''}.`;
            toast({
              tone: 'success',
              title: r.extendsGrantId ? 'Extension approved' : 'Access approved',
              body,
            });
            desktopNotify('Access approved', body);
          } else if (r.status === 'denied') {
            const body = `${decidedText(r)} — ${r.decidedBy ?? 'an approver'}: ${r.decisionReason ?? 'no reason given'}`;
            if (get().dialog?.request?.id !== r.id)
              toast({ tone: 'error', title: 'Request denied', body }, 15_000);
            desktopNotify('Access request denied', body);
          }
          void requestChanged(r, n.grant);
          return;
        }
        case 'request.expired': {
          if (n.request.requester !== mine) return;
          toast({
            tone: 'warning',
            title: 'Request expired',
            body: `Nobody decided ${decidedText(n.request)} in time.`,
          });
          void requestChanged(n.request);
          return;
        }
        case 'grant.expiring': {
          if (n.grant.holder !== mine) return;
          set({ grants: upsert(get().grants, n.grant) });
          const body = `${LEVEL_TEXT[n.grant.level]} on ${targetName(n.grant.targetId)} ends in ${formatDuration(n.secondsLeft)}. Extend it from My access.`;
          toast({ tone: 'warning', title: 'Access ending soon', body }, 12_000);
          desktopNotify('Access ending soon', body);
          return;
        }
        case 'grant.reviewed': {
          if (n.grant.holder !== mine) return;
          set({ grants: upsert(get().grants, n.grant) });
          return;
        }
        case 'grant.revoked': {
          if (n.grant.holder !== mine) return;
          set({ grants: upsert(get().grants, n.grant) });
          if (n.grant.revokedBy !== mine) {
            const expired = n.grant.revokedBy === 'sallyport' && n.reason === 'expired';
            const what = `${LEVEL_TEXT[n.grant.level]} on ${targetName(n.grant.targetId)}`;
            const body = expired
              ? `${what} reached its expiry.`
              : `${what}, revoked by ${n.grant.revokedBy}: ${n.reason}`;
            toast({ tone: 'warning', title: expired ? 'Access expired' : 'Access revoked', body }, 12_000);
            desktopNotify(expired ? 'Access expired' : 'Access revoked', body);
          }
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

function memo<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let last: { args: A; result: R } | undefined;
  return (...args) => {
    if (last?.args.every((a, i) => Object.is(a, args[i]))) return last.result;
    const result = fn(...args);
    last = { args, result };
    return result;
  };
}

const activeGrants = memo((grants: GrantView[]) =>
  grants
    .filter((g) => g.status === 'active')
    .sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt)),
);
const endedGrants = memo((grants: GrantView[]) => grants.filter((g) => g.status !== 'active'));
const pendingRequests = memo((requests: RequestView[]) => requests.filter((r) => r.status === 'pending'));
const pastRequests = memo((requests: RequestView[]) => requests.filter((r) => r.status !== 'pending'));

export const selectAccessStatus = (s: AccessState) => s.status;
export const selectAccessError = (s: AccessState) => s.error;
export const selectActiveGrants = (s: AccessState) => activeGrants(s.grants);
export const selectEndedGrants = (s: AccessState) => endedGrants(s.grants);
export const selectPendingRequests = (s: AccessState) => pendingRequests(s.requests);
export const selectPastRequests = (s: AccessState) => pastRequests(s.requests);
export const selectDialog = (s: AccessState) => s.dialog;
export const selectRevoke = (s: AccessState) => s.revoke;
export const selectOpened = (s: AccessState) => s.opened;
export const selectCancelling = (s: AccessState) => s.cancelling;
