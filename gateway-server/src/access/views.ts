import type { AccessLevel, GrantView, RequestView } from '@sallyport/protocol';
import type { AccessRequestRow, ApprovalRow, GrantRow } from '../store/tables';

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function toRequestView(
  r: AccessRequestRow,
  approvals: ApprovalRow[],
  grantId: string | null,
): RequestView {
  return {
    id: r.id,
    requester: r.requester,
    targetId: r.target_id,
    level: r.level as AccessLevel,
    durationSeconds: r.duration_seconds,
    reason: r.reason,
    ticket: r.ticket,
    rule: r.rule_name,
    status: r.status,
    breakGlass: r.break_glass,
    extendsGrantId: r.extends_grant_id,
    approvalsRequired: r.approvals_required,
    approvers: { users: r.approver_users, groups: r.approver_groups },
    approvals: approvals.map((a) => ({
      approver: a.approver,
      decision: a.decision,
      reason: a.reason,
      at: iso(a.at)!,
    })),
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at)!,
    decidedAt: iso(r.decided_at),
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    grantId,
  };
}

export function toGrantView(g: GrantRow): GrantView {
  return {
    id: g.id,
    requestId: g.request_id,
    holder: g.holder,
    targetId: g.target_id,
    level: g.level as AccessLevel,
    createdAt: iso(g.created_at)!,
    expiresAt: iso(g.expires_at)!,
    status: g.status,
    reviewRequired: g.review_required,
    revokedAt: iso(g.revoked_at),
    revokedBy: g.revoked_by,
    revokeReason: g.revoke_reason,
    revocation: g.revocation_state,
    reviewedBy: g.reviewed_by ?? null,
    reviewedAt: iso(g.reviewed_at ?? null),
    reviewNote: g.review_note ?? null,
  };
}
