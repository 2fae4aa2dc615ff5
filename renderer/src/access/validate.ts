// Inline validation with the protocol's own schemas, so the console and the gateway agree.
import {
  CreateAccessRequest,
  DenyBody,
  ReviewDenyBody,
  ReviewGrantBody,
  RevokeBody,
} from '@sallyport/protocol';
import type { z } from 'zod';

function firstProblem(schema: z.ZodType, value: unknown): string | null {
  const r = schema.safeParse(value);
  if (r.success) return null;
  const msg = r.error.issues[0]?.message ?? 'invalid';
  return msg.charAt(0).toUpperCase() + msg.slice(1) + (/[.!?]$/.test(msg) ? '' : '.');
}

/** Why a request reason would be refused, or null. */
export const requestReasonProblem = (reason: string) =>
  firstProblem(CreateAccessRequest.shape.reason, reason);

/** Why a deny reason would be refused, or null. The requester reads it, so it must say why in words. */
export const denyReasonProblem = (reason: string) =>
  firstProblem(DenyBody.shape.reason, reason) === null
    ? null
    : 'Say why you deny it, in words (at least 10 characters): the requester sees this.';

export const reviewDenyReasonProblem = (reason: string) =>
  firstProblem(ReviewDenyBody.shape.reason, reason) === null
    ? null
    : 'Say why you deny it (at least 3 characters): the requester sees this.';

export const revokeReasonProblem = (reason: string) =>
  firstProblem(RevokeBody.shape.reason, reason) === null
    ? null
    : 'Say why you revoke it (at least 3 characters): it goes in the audit ledger.';

export const reviewNoteProblem = (note: string) =>
  firstProblem(ReviewGrantBody.shape.note, note) === null
    ? null
    : 'Say what you found (at least 3 characters): it goes in the audit ledger.';
