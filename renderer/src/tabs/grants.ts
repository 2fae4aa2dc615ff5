import type { AccessLevel, GrantView } from '@sallyport/protocol';
import { gateway, messageOf } from '../api';

export type GrantCheck =
  | { ok: true; grant: GrantView }
  | {
      ok: false;
      /** For people: why the tab does not connect. */
      reason: string;
      /** Another active grant of the caller on the same target that the tab could use instead. */
      replacement?: GrantView;
      /** The check itself failed (gateway unreachable): retrying may help. */
      transient?: boolean;
    };

const SSH_LEVELS: AccessLevel[] = ['shell'];
const SQL_LEVELS: AccessLevel[] = ['read', 'write', 'admin'];

export const isLive = (g: GrantView, now = Date.now()): boolean =>
  g.status === 'active' && Date.parse(g.expiresAt) > now;

/**
 * Is the tab's grant still usable? A restored tab reconnects only when it is; otherwise it says
 * why and offers another active grant on the same target, if the user holds one.
 */
export async function checkGrant(
  grantId: string,
  targetId: string,
  channel: 'ssh' | 'sql',
): Promise<GrantCheck> {
  let grants: GrantView[];
  try {
    grants = await gateway.grants({ scope: 'mine' });
  } catch (err) {
    return { ok: false, reason: `Could not check the grant: ${messageOf(err)}`, transient: true };
  }
  const now = Date.now();
  const grant = grants.find((g) => g.id === grantId);
  if (grant && isLive(grant, now)) return { ok: true, grant };
  const levels = channel === 'ssh' ? SSH_LEVELS : SQL_LEVELS;
  const replacement = grants
    .filter((g) => g.targetId === targetId && g.id !== grantId && isLive(g, now) && levels.includes(g.level))
    .sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt))[0];
  let reason: string;
  if (!grant) reason = 'The grant this tab used no longer exists.';
  else if (grant.status === 'revoked') {
    reason = `The grant was revoked${grant.revokedBy ? ` by ${grant.revokedBy}` : ''}${
      grant.revokeReason ? `: ${grant.revokeReason}` : '.'
    }`;
  } else reason = `The grant expired at ${new Date(grant.expiresAt).toLocaleString()}.`;
  return { ok: false, reason, ...(replacement ? { replacement } : {}) };
}

/** Refusal codes of the channels that mean "this grant is over", as opposed to a technical error. */
export const GRANT_ENDED_CODES = new Set([
  'no_grant',
  'grant_revoked',
  'grant_expired',
  'grant_ended',
  'revoked',
  'expired',
]);

export function timeLeft(iso: string | undefined, now = Date.now()): string | null {
  if (!iso) return null;
  const ms = Date.parse(iso) - now;
  if (!Number.isFinite(ms)) return null;
  if (ms <= 0) return 'expired';
  const min = Math.round(ms / 60_000);
  if (min < 1) return 'less than a minute left';
  return min < 60 ? `${min} min left` : `${Math.floor(min / 60)} h ${min % 60} min left`;
}
