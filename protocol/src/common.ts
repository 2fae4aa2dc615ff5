import { z } from 'zod';

/** Kinds of targets the gateway can front. One protocol folder in gateway-server per kind. */
export const TargetKind = z.enum(['ssh', 'postgres']);
export type TargetKind = z.infer<typeof TargetKind>;

/**
 * Access levels. `read`/`write` apply to databases, `shell`/`exec-only` to SSH.
 * `exec-only` allows single commands (CLI, CI) but no interactive shell: the only
 * level where command guardrails are a hard guarantee.
 */
export const AccessLevel = z.enum(['read', 'write', 'admin', 'shell', 'exec-only']);
export type AccessLevel = z.infer<typeof AccessLevel>;

export const Role = z.enum(['developer', 'approver', 'admin']);
export type Role = z.infer<typeof Role>;

/** Target ids appear in URLs, CLI arguments and resource URIs, so they are slugs. */
export const TargetId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63 characters');
export type TargetId = z.infer<typeof TargetId>;

export const Labels = z.record(
  z.string().regex(/^[a-zA-Z0-9_./-]{1,63}$/, 'label keys: letters, digits, _ . / -'),
  z.string().max(253),
);
export type Labels = z.infer<typeof Labels>;

/** Resource URIs, in the style of Teleport Connect: typed strings, never ad-hoc paths. */
export type TargetUri = `/targets/${string}`;
export type RequestUri = `/requests/${string}`;
export type GrantUri = `/grants/${string}`;
export const targetUri = (id: string): TargetUri => `/targets/${id}`;

/** Every error body the gateway sends has this shape. `code` is stable; `message` is for people. */
export const ApiError = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string().optional(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ApiError = z.infer<typeof ApiError>;
