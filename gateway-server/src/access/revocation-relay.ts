// Revocation across gateway instances that share a PostgreSQL store. The instance that revokes a
// grant closes its own sessions under it (revocation.ts); the others hold sessions too (a user's
// SQL tab on one, a CI job's SSH on another). Two paths reach them:
//   - right away: revocation.ts sends NOTIFY sallyport_grant_revoked in the revoking transaction
//     (delivered at commit), every instance LISTENs and, for a grant it holds sessions of, reads
//     the grant from the store (the notice is only a hint: anyone who can connect can NOTIFY) and
//     closes them if it is no longer active;
//   - as a fallback: every SWEEP_MS, and whenever the LISTEN connection comes back (notifications
//     sent while it was down are lost), an instance asks the store which of the grants it holds
//     sessions for are no longer active, and closes those.
// Each instance that closes sessions records a receipt of its own in the ledger:
// `revocation.sessions_closed` (grant, how many, which instance).
import type { Ledger } from '../audit';
import type { Store } from '../store/db';
import { listen } from '../store/listen';
import { REVOKED_CHANNEL, type RevokedNotice, userMessage } from './revocation';
import type { SessionRegistry } from './sessions';

const SWEEP_MS = 10_000;
/** The sweep leaves grants revoked less than this ago to the revoking instance (see closeEnded). */
const SETTLED_MS = 5_000;
/** Grant ids per sweep query. */
const SWEEP_CHUNK = 1000;

export interface RevocationRelayDeps {
  store: Store;
  /** The store's URL (postgres): the LISTEN connection is a connection of its own. */
  url: string;
  ledger: Ledger;
  sessions: SessionRegistry;
  instanceId: string;
  log?: { warn(o: object, m: string): void; info?(o: object, m: string): void };
  sweepMs?: number;
}

export interface RevocationRelay {
  /** Closes the sessions of grants that are no longer active (the fallback path). */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

export async function startRevocationRelay(deps: RevocationRelayDeps): Promise<RevocationRelay> {
  const { sessions, ledger } = deps;
  /** Grants whose sessions this relay is closing now (a notice and a sweep may meet). */
  const closing = new Set<string>();

  const closeHere = async (grantId: string, reason: string, via: 'notify' | 'sweep'): Promise<number> => {
    if (sessions.count(grantId) === 0 || closing.has(grantId)) return 0;
    closing.add(grantId);
    try {
      const report = await sessions.closeAll(grantId, userMessage(reason));
      if (report.closed === 0 && report.failed.length === 0) return 0;
      await ledger
        .append({
          kind: 'revocation.sessions_closed',
          actor: 'sallyport',
          actorKind: 'system',
          data: {
            grantId,
            sessionsClosed: report.closed,
            ...(report.failed.length > 0 ? { failures: report.failed } : {}),
            instance: deps.instanceId,
            via,
          },
        })
        .catch((err: Error) =>
          deps.log?.warn({ err: err.message, grantId }, 'could not record revocation.sessions_closed'),
        );
      return report.closed;
    } finally {
      closing.delete(grantId);
    }
  };

  /**
   * Closes the sessions here of those `grantIds` that are no longer active, with the reason the
   * store has. `settledMs`: only grants revoked at least that long ago (the sweep leaves fresh
   * revocations to the instance that is closing its own sessions for them right now).
   */
  const closeEnded = async (grantIds: string[], via: 'notify' | 'sweep', settledMs = 0): Promise<number> => {
    let closed = 0;
    for (let i = 0; i < grantIds.length; i += SWEEP_CHUNK) {
      let q = deps.store.db
        .selectFrom('grants')
        .select(['id', 'revoke_reason'])
        .where('id', 'in', grantIds.slice(i, i + SWEEP_CHUNK))
        .where('status', '!=', 'active');
      if (settledMs > 0) q = q.where('revoked_at', '<=', new Date(Date.now() - settledMs));
      for (const g of await q.execute()) closed += await closeHere(g.id, g.revoke_reason ?? 'revoked', via);
    }
    return closed;
  };

  const sweep = (): Promise<number> => {
    const held = sessions.grantIds();
    return held.length === 0 ? Promise.resolve(0) : closeEnded(held, 'sweep', SETTLED_MS);
  };
  const sweepLogged = () =>
    void sweep().catch((err: Error) => deps.log?.warn({ err: err.message }, 'revocation sweep failed'));

  const listener = await listen({
    url: deps.url,
    channel: REVOKED_CHANNEL,
    onMessage(payload) {
      let notice: Partial<RevokedNotice> | null;
      try {
        notice = JSON.parse(payload) as Partial<RevokedNotice> | null;
      } catch {
        notice = null;
      }
      if (!notice || typeof notice !== 'object' || typeof notice.grantId !== 'string') {
        deps.log?.warn({ payload: payload.slice(0, 200) }, 'ignored a malformed revocation notice');
        return;
      }
      if (notice.instance === deps.instanceId || sessions.count(notice.grantId) === 0) return;
      const grantId = notice.grantId;
      void closeEnded([grantId], 'notify').catch((err: Error) =>
        deps.log?.warn({ err: err.message, grantId }, 'could not close revoked sessions'),
      );
    },
    onConnected: sweepLogged,
    ...(deps.log ? { log: deps.log } : {}),
  });
  const timer = setInterval(sweepLogged, deps.sweepMs ?? SWEEP_MS);
  timer.unref();
  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await listener.stop();
    },
  };
}
