import { z } from 'zod';

/**
 * A statement or command line held for an approver. The approval binds to the
 * exact text (by SHA-256) and can be used once.
 */
export const ReviewStatus = z.enum(['pending', 'approved', 'denied', 'expired', 'used', 'cancelled']);
export type ReviewStatus = z.infer<typeof ReviewStatus>;

export const ReviewView = z.object({
  id: z.string(),
  kind: z.enum(['sql', 'command']),
  requester: z.string(),
  targetId: z.string(),
  grantId: z.string(),
  sessionId: z.string(),
  /** The exact text that will run if approved. */
  text: z.string(),
  sha256: z.string(),
  rule: z.string(),
  message: z.string(),
  /** What approvers need to judge it: statement kinds, tables, EXPLAIN estimate, command names. */
  details: z.record(z.string(), z.unknown()),
  status: ReviewStatus,
  approvers: z.object({ users: z.array(z.string()), groups: z.array(z.string()) }),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedBy: z.string().nullable(),
  decisionReason: z.string().nullable(),
  decidedAt: z.string().nullable(),
});
export type ReviewView = z.infer<typeof ReviewView>;

export const ReviewList = z.object({ reviews: z.array(ReviewView) });
export const ReviewDecisionBody = z.object({ reason: z.string().trim().max(2000).optional() }).strict();
export const ReviewDenyBody = z.object({ reason: z.string().trim().min(3, 'say why').max(2000) }).strict();
