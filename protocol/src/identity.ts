import { z } from 'zod';
import { Role } from './common';

export const Me = z.object({
  subject: z.string(),
  username: z.string(),
  name: z.string().optional(),
  email: z.string().optional(),
  kind: z.enum(['user', 'service']),
  groups: z.array(z.string()),
  roles: z.array(Role),
  tokenExpiresAt: z.string(),
});
export type Me = z.infer<typeof Me>;

export const Health = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.record(z.string(), z.string()).optional(),
});
export type Health = z.infer<typeof Health>;
