// Revocation across gateway instances that share a PostgreSQL store. The instance that revokes a
// grant closes its own sessions under it (revocation.ts); the others hold sessions too (a user's
// SQL tab on one, a CI job's SSH on another). Two paths reach them:
//   - right away: revocation.ts sends NOTIFY sallyport_grant_revoked in the revoking transaction
//     (delivered at commit), every instance LISTENs and closes its sessions of that grant;
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

  const closeHere = async (grantId: string, reason: string, via: 'notify' | 'sweep'): Promise<number> => {
    if (sessions.count(grantId) === 0) return 0;
    const report = await sessions.closeAll(grantId, userMessage(reason));
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
  };

  const sweep = async (): Promise<number> => {
    const held = sessions.grantIds();
    if (held.length === 0) return 0;
    const ended = await deps.store.db
      .selectFrom('grants')
      .select(['id', 'revoke_reason'])
      .where('id', 'in', held)
      .where('status', '!=', 'active')
      .execute();
    let closed = 0;
    for (const g of ended) closed += await closeHere(g.id, g.revoke_reason ?? 'revoked', 'sweep');
    return closed;
  };
  const sweepLogged = () =>
    void sweep().catch((err: Error) => deps.log?.warn({ err: err.message }, 'revocation sweep failed'));

  const listener = await listen({
    url: deps.url,
    channel: REVOKED_CHANNEL,
    onMessage(payload) {
      let notice: RevokedNotice;
      try {
        notice = JSON.parse(payload) as RevokedNotice;
      } catch {
        deps.log?.warn({ payload: payload.slice(0, 200) }, 'ignored a malformed revocation notice');
        return;
      }
      if (notice.instance === deps.instanceId || typeof notice.grantId !== 'string') return;
      void closeHere(notice.grantId, String(notice.reason ?? 'revoked'), 'notify').catch((err: Error) =>
        deps.log?.warn({ err: err.message, grantId: notice.grantId }, 'could not close revoked sessions'),
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
