import { z } from 'zod';
import { AccessLevel, TargetId } from './common';
import { ReviewView } from './reviews';

export const RequestStatus = z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled']);
export type RequestStatus = z.infer<typeof RequestStatus>;

/** Longest grant anyone can ask for, whatever the rules say: a bound on absurd input. */
export const ABSOLUTE_MAX_DURATION_SECONDS = 366 * 86_400;

const Reason = z
  .string()
  .trim()
  .min(10, 'give a reason of at least 10 characters that says why you need access')
  .max(2000)
  .refine(
    (r) => (r.match(/\p{L}{2,}/gu) ?? []).length >= 2,
    'the reason must say why in words (at least two words)',
  )
  .refine((r) => !/^(.)\1+$/.test(r.replace(/\s/g, '')), 'the reason must say why in words');

export const CreateAccessRequest = z
  .object({
    targetId: TargetId,
    level: AccessLevel,
    /** Seconds, or text like `2h`, `30m`. */
    duration: z.union([z.number(), z.string().min(1).max(32)]),
    reason: Reason,
    ticket: z.string().trim().min(1).max(200).optional(),
    breakGlass: z.boolean().optional(),
    extendsGrantId: z.string().uuid().optional(),
  })
  .strict();
export type CreateAccessRequest = z.infer<typeof CreateAccessRequest>;

export const ApproveBody = z.object({ reason: z.string().trim().max(2000).optional() }).strict();
export const DenyBody = z.object({ reason: Reason }).strict();
export const RevokeBody = z.object({ reason: z.string().trim().min(3).max(2000) }).strict();

export const ApprovalView = z.object({
  approver: z.string(),
  decision: z.enum(['approve', 'deny']),
  reason: z.string().nullable(),
  at: z.string(),
});

export const RequestView = z.object({
  id: z.string(),
  requester: z.string(),
  targetId: z.string(),
  level: AccessLevel,
  durationSeconds: z.number(),
  reason: z.string(),
  ticket: z.string().nullable(),
  rule: z.string(),
  status: RequestStatus,
  breakGlass: z.boolean(),
  extendsGrantId: z.string().nullable(),
  approvalsRequired: z.number(),
  approvers: z.object({ users: z.array(z.string()), groups: z.array(z.string()) }),
  approvals: z.array(ApprovalView),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  decisionReason: z.string().nullable(),
  grantId: z.string().nullable(),
});
export type RequestView = z.infer<typeof RequestView>;

export const GrantView = z.object({
  id: z.string(),
  requestId: z.string(),
  holder: z.string(),
  targetId: z.string(),
  level: AccessLevel,
  createdAt: z.string(),
  expiresAt: z.string(),
  status: z.enum(['active', 'revoked']),
  reviewRequired: z.boolean(),
  revokedAt: z.string().nullable(),
  revokedBy: z.string().nullable(),
  revokeReason: z.string().nullable(),
  revocation: z.enum(['none', 'pending', 'completed', 'failed']),
  /** A break-glass grant's review after the fact; absent from gateways older than the field. */
  reviewedBy: z.string().nullable().optional(),
  reviewedAt: z.string().nullable().optional(),
  reviewNote: z.string().nullable().optional(),
});
export type GrantView = z.infer<typeof GrantView>;

/** Marking a break-glass grant reviewed: what the reviewer found (recorded in the ledger). */
export const ReviewGrantBody = z.object({ note: z.string().trim().min(3).max(2000) }).strict();
export type ReviewGrantBody = z.infer<typeof ReviewGrantBody>;

/** Break-glass grants waiting for the caller's review, each with the request that took it. */
export const GrantsToReview = z.object({
  items: z.array(z.object({ grant: GrantView, request: RequestView })),
});
export type GrantsToReview = z.infer<typeof GrantsToReview>;

/** The answer to a request: at once, one of three. */
export const RequestOutcome = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('granted'), request: RequestView, grant: GrantView }),
  z.object({ outcome: z.literal('pending'), request: RequestView }),
]);
export type RequestOutcome = z.infer<typeof RequestOutcome>;

export const RequestList = z.object({ requests: z.array(RequestView) });
export const GrantList = z.object({ grants: z.array(GrantView) });

export const AuditEventView = z.object({
  seq: z.number(),
  id: z.string(),
  at: z.string(),
  kind: z.string(),
  actor: z.string(),
  actorKind: z.string(),
  subject: z.string().nullable(),
  targetId: z.string().nullable(),
  requestId: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEventView = z.infer<typeof AuditEventView>;
export const AuditList = z.object({ events: z.array(AuditEventView) });
export const AuditVerify = z.union([
  z.object({ ok: z.literal(true), count: z.number(), head: z.string() }),
  z.object({ ok: z.literal(false), count: z.number(), seq: z.number(), id: z.string(), problem: z.string() }),
]);
export type AuditVerify = z.infer<typeof AuditVerify>;

export const PolicyExplanation = z.object({
  target: z.string(),
  user: z.string(),
  rules: z.array(
    z.object({
      rule: z.string(),
      applies: z.boolean(),
      why: z.string(),
      levels: z.array(AccessLevel),
      maxDuration: z.string(),
      approval: z.string(),
      breakGlass: z.boolean(),
    }),
  ),
  withoutApproval: z.array(
    z.object({
      rule: z.string(),
      users: z.array(z.string()),
      groups: z.array(z.string()),
      levels: z.array(AccessLevel),
    }),
  ),
  withApproval: z.array(
    z.object({
      rule: z.string(),
      users: z.array(z.string()),
      groups: z.array(z.string()),
      levels: z.array(AccessLevel),
      approvers: z.string(),
    }),
  ),
});
export type PolicyExplanation = z.infer<typeof PolicyExplanation>;

/** Pushed on the event socket (and to webhooks). */
export const Notification = z.discriminatedUnion('event', [
  z.object({ event: z.literal('request.pending'), request: RequestView }),
  z.object({ event: z.literal('request.decided'), request: RequestView, grant: GrantView.optional() }),
  z.object({ event: z.literal('request.expired'), request: RequestView }),
  z.object({ event: z.literal('grant.break_glass'), request: RequestView, grant: GrantView }),
  z.object({ event: z.literal('grant.expiring'), grant: GrantView, secondsLeft: z.number() }),
  z.object({ event: z.literal('grant.revoked'), grant: GrantView, reason: z.string() }),
  z.object({ event: z.literal('grant.reviewed'), grant: GrantView }),
  z.object({ event: z.literal('review.pending'), review: ReviewView }),
  z.object({ event: z.literal('review.decided'), review: ReviewView }),
]);
export type Notification = z.infer<typeof Notification>;
