import { AccessLevel, Labels, TargetId } from '@sallyport/protocol';
import { z } from 'zod';
import { DurationSchema } from './duration';

/**
 * Access rules: who may request which targets at which levels, for how long,
 * and how approval works. Deny by default: no matching rule, no access.
 */
const Principals = z
  .object({
    users: z
      .array(z.string().min(1))
      .default([])
      .describe('Usernames (preferred_username, or client id for services).'),
    groups: z.array(z.string().min(1)).default([]).describe('Identity-provider groups.'),
  })
  .strict();

/** Targets by id, or by labels (all must match). Also scopes guardrail rules (config `guardrails`). */
export const TargetSelector = z
  .object({
    ids: z.array(TargetId).default([]).describe('Target ids.'),
    labels: Labels.default({}).describe('All of these labels must match (`*` as a value matches any value).'),
  })
  .strict()
  .refine((t) => t.ids.length > 0 || Object.keys(t.labels).length > 0, {
    message: 'name target ids or labels (an empty selector would match every target)',
  });

const Approval = z.union([
  z.literal('auto').describe('Granted at once, no approver.'),
  z
    .object({
      approvers: Principals.describe('Who may approve; the requester never can.'),
      count: z.number().int().min(1).max(10).default(1).describe('Distinct approvers needed (k of n).'),
    })
    .strict(),
]);

export const AccessRule = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes'),
    description: z.string().optional(),
    requesters: Principals.describe('Who may request.'),
    targets: TargetSelector,
    levels: z.array(AccessLevel).min(1),
    maxDuration: DurationSchema.describe('Longest grant, e.g. 8h.'),
    approval: Approval,
    pendingTimeout: DurationSchema.optional().describe(
      'How long a request may wait for approval (default access.pendingTimeout).',
    ),
    breakGlass: z
      .boolean()
      .default(false)
      .describe('Allow break-glass: an immediate grant, flagged for review, every approver notified.'),
    ticketRequired: z.boolean().default(false).describe('Requests must carry a ticket reference.'),
  })
  .strict();
export type AccessRule = z.infer<typeof AccessRule>;

export const AccessConfig = z
  .object({
    pendingTimeout: DurationSchema.default(3600).describe(
      'Default time a request waits for approval before it expires.',
    ),
    expiryWarning: DurationSchema.default(300).describe('Warn the grant holder this long before expiry.'),
    maxDurationCap: DurationSchema.default(7 * 86_400).describe(
      'No grant is ever longer than this, whatever a rule says.',
    ),
    reviewers: Principals.default({ users: [], groups: ['approvers'] }).describe(
      "Who decides held statements and commands on targets whose grant came from an auto rule (otherwise the rule's approvers do).",
    ),
    reviewTimeout: DurationSchema.default(600).describe(
      'How long a held statement or command waits for a decision.',
    ),
    writesPerMinute: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(120)
      .describe(
        'Access requests, decisions and revocations one user may make per minute (then 429 rate_limited): generous for people and CI, a wall for floods.',
      ),
    rules: z.array(AccessRule).default([]),
  })
  .strict();
export type AccessConfig = z.infer<typeof AccessConfig>;
