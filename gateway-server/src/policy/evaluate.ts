import type { AccessLevel, TargetKind } from '@sallyport/protocol';
import { formatDuration } from './duration';
import type { AccessConfig, AccessRule } from './rules';

/** Levels that make sense per target kind. */
export const LEVELS_BY_KIND: Record<TargetKind, AccessLevel[]> = {
  postgres: ['read', 'write', 'admin'],
  ssh: ['shell', 'exec-only'],
};

export interface Requester {
  username: string;
  groups: string[];
}

export interface TargetFacts {
  id: string;
  kind: TargetKind;
  labels: Record<string, string>;
}

export interface AccessAsk {
  level: AccessLevel;
  durationSeconds: number;
  ticket?: string | undefined;
  breakGlass?: boolean | undefined;
}

export type RefusalCode =
  | 'no_rule'
  | 'level_not_for_kind'
  | 'level_not_allowed'
  | 'duration_exceeds_max'
  | 'ticket_required'
  | 'break_glass_not_allowed'
  | 'no_approver';

export type Decision =
  | { outcome: 'auto'; rule: AccessRule }
  | {
      outcome: 'approval';
      rule: AccessRule;
      approvers: { users: string[]; groups: string[] };
      count: number;
      pendingTimeoutSeconds: number;
    }
  | { outcome: 'break-glass'; rule: AccessRule }
  | { outcome: 'refused'; code: RefusalCode; message: string };

export function principalMatches(p: { users: string[]; groups: string[] }, who: Requester): boolean {
  return p.users.includes(who.username) || p.groups.some((g) => who.groups.includes(g));
}

export function targetMatches(sel: AccessRule['targets'], t: TargetFacts): boolean {
  if (sel.ids.includes(t.id)) return true;
  const wanted = Object.entries(sel.labels);
  return wanted.length > 0 && wanted.every(([k, v]) => (v === '*' ? k in t.labels : t.labels[k] === v));
}

/** Can anyone other than the requester approve under this rule? Groups are assumed to have members. */
function approverExists(rule: AccessRule, who: Requester): boolean {
  if (rule.approval === 'auto') return true;
  const { users, groups } = rule.approval.approvers;
  if (groups.length > 0) return true;
  return users.filter((u) => u !== who.username).length >= rule.approval.count;
}

/**
 * The one evaluator: requests, the CLI's `policy explain` and the UI all ask it.
 * Deny by default; among the rules that allow the ask, the least friction wins
 * (auto over approval, then fewer approvers).
 */
export function decide(cfg: AccessConfig, who: Requester, target: TargetFacts, ask: AccessAsk): Decision {
  const refuse = (code: RefusalCode, message: string): Decision => ({ outcome: 'refused', code, message });
  if (!LEVELS_BY_KIND[target.kind].includes(ask.level)) {
    return refuse(
      'level_not_for_kind',
      `level "${ask.level}" does not apply to ${target.kind} targets (use ${LEVELS_BY_KIND[target.kind].join(' or ')})`,
    );
  }
  const forMe = cfg.rules.filter(
    (r) => principalMatches(r.requesters, who) && targetMatches(r.targets, target),
  );
  if (forMe.length === 0)
    return refuse('no_rule', `no access rule lets ${who.username} request ${target.id}`);
  const atLevel = forMe.filter((r) => r.levels.includes(ask.level));
  if (atLevel.length === 0) {
    const levels = [...new Set(forMe.flatMap((r) => r.levels))];
    return refuse(
      'level_not_allowed',
      `level "${ask.level}" is not allowed on ${target.id} for you (allowed: ${levels.join(', ')})`,
    );
  }
  const maxOf = (r: AccessRule) => Math.min(r.maxDuration, cfg.maxDurationCap);
  const inTime = atLevel.filter((r) => ask.durationSeconds <= maxOf(r));
  if (inTime.length === 0) {
    const longest = Math.max(...atLevel.map(maxOf));
    return refuse(
      'duration_exceeds_max',
      `${formatDuration(ask.durationSeconds)} is longer than the ${formatDuration(longest)} allowed at level ${ask.level} on ${target.id}`,
    );
  }
  const withTicket = ask.ticket ? inTime : inTime.filter((r) => !r.ticketRequired);
  if (withTicket.length === 0)
    return refuse('ticket_required', `a ticket reference is required for ${target.id}`);

  if (ask.breakGlass) {
    const rule = withTicket.find((r) => r.breakGlass);
    if (!rule)
      return refuse(
        'break_glass_not_allowed',
        `break-glass is not allowed on ${target.id} at level ${ask.level}`,
      );
    return { outcome: 'break-glass', rule };
  }
  const auto = withTicket.find((r) => r.approval === 'auto');
  if (auto) return { outcome: 'auto', rule: auto };
  const approvable = withTicket
    .filter((r) => approverExists(r, who))
    .sort(
      (a, b) =>
        (a.approval === 'auto' ? 0 : a.approval.count) - (b.approval === 'auto' ? 0 : b.approval.count),
    );
  const rule = approvable[0];
  if (!rule || rule.approval === 'auto') {
    return refuse(
      'no_approver',
      `nobody other than you may approve access to ${target.id}: ask an admin to add approvers`,
    );
  }
  return {
    outcome: 'approval',
    rule,
    approvers: {
      users: rule.approval.approvers.users.filter((u) => u !== who.username),
      groups: rule.approval.approvers.groups,
    },
    count: rule.approval.count,
    pendingTimeoutSeconds: rule.pendingTimeout ?? cfg.pendingTimeout,
  };
}

/** May `approver` decide on a request made under `rule` by `requester`? */
export function mayApprove(
  rule: AccessRule,
  approver: Requester,
  requester: string,
): { ok: true } | { ok: false; code: 'self_approval' | 'not_an_approver'; message: string } {
  if (approver.username === requester)
    return { ok: false, code: 'self_approval', message: 'you cannot approve your own request' };
  if (rule.approval === 'auto' || !principalMatches(rule.approval.approvers, approver)) {
    return {
      ok: false,
      code: 'not_an_approver',
      message: `you are not an approver under rule "${rule.name}"`,
    };
  }
  return { ok: true };
}

export interface Explanation {
  target: string;
  user: string;
  rules: Array<{
    rule: string;
    applies: boolean;
    why: string;
    levels: AccessLevel[];
    maxDuration: string;
    approval: string;
    breakGlass: boolean;
  }>;
  /** Who reaches the target without any approval (auto rules), by principal. */
  withoutApproval: Array<{ rule: string; users: string[]; groups: string[]; levels: AccessLevel[] }>;
  /** Who reaches the target with approval. */
  withApproval: Array<{
    rule: string;
    users: string[];
    groups: string[];
    levels: AccessLevel[];
    approvers: string;
  }>;
}

const approvalText = (r: AccessRule) =>
  r.approval === 'auto'
    ? 'auto'
    : `${r.approval.count} of ${[...r.approval.approvers.users.map((u) => `user:${u}`), ...r.approval.approvers.groups.map((g) => `group:${g}`)].join(', ')}`;

export function explain(cfg: AccessConfig, who: Requester, target: TargetFacts): Explanation {
  const onTarget = cfg.rules.filter((r) => targetMatches(r.targets, target));
  return {
    target: target.id,
    user: who.username,
    rules: cfg.rules.map((r) => {
      const t = targetMatches(r.targets, target);
      const p = principalMatches(r.requesters, who);
      return {
        rule: r.name,
        applies: t && p,
        why: !t ? 'target does not match' : !p ? `${who.username} is not a requester` : 'applies',
        levels: r.levels.filter((l) => LEVELS_BY_KIND[target.kind].includes(l)),
        maxDuration: formatDuration(Math.min(r.maxDuration, cfg.maxDurationCap)),
        approval: approvalText(r),
        breakGlass: r.breakGlass,
      };
    }),
    withoutApproval: onTarget
      .filter((r) => r.approval === 'auto')
      .map((r) => ({
        rule: r.name,
        users: r.requesters.users,
        groups: r.requesters.groups,
        levels: r.levels,
      })),
    withApproval: onTarget
      .filter((r) => r.approval !== 'auto')
      .map((r) => ({
        rule: r.name,
        users: r.requesters.users,
        groups: r.requesters.groups,
        levels: r.levels,
        approvers: approvalText(r),
      })),
  };
}
