import type { GrantView } from '@sallyport/protocol';
import { sql } from 'kysely';
import type { Ledger } from '../audit';
import type { Store } from '../store/db';
import type { GrantRow } from '../store/tables';
import { type Actor, actorKindOf, type Notifier } from './service';
import type { SessionRegistry } from './sessions';
import { toGrantView } from './views';

export interface RevokerDeps {
  store: Store;
  ledger: Ledger;
  sessions: SessionRegistry;
  notifier: Notifier;
  now?: () => Date;
  /** Delay before retrying a failed revocation, by attempt number (1-based). */
  retryDelayMs?: (attempt: number) => number;
  log?: { warn(o: object, m: string): void };
  /** Wakes the scheduler for a retry. */
  onDue?: (at: Date) => void;
  /**
   * This gateway instance. With a PostgreSQL store, each revocation is announced to the other
   * instances (NOTIFY on revocation-relay.ts's channel, sent at commit) so they close their sessions.
   */
  instanceId?: string;
}

export type Revoker = ReturnType<typeof createRevoker>;

/** The NOTIFY channel on which an instance announces the grants it revoked (revocation-relay.ts listens). */
export const REVOKED_CHANNEL = 'sallyport_grant_revoked';

/**
 * What goes on REVOKED_CHANNEL, one notice per grant. A hint only: receivers read the grant's
 * state and reason from the store (anyone who can connect to the store can send a NOTIFY).
 */
export interface RevokedNotice {
  grantId: string;
  /** The instance that revoked (it has closed its own sessions already). */
  instance: string;
}

/**
 * Revocation in three steps, each recorded: the grant is marked revoked (so no
 * new session can start), the live sessions under it are closed, and the ledger
 * records `revocation.completed` with how many closed — or `revocation.failed`,
 * after which the scheduler retries until it completes.
 */
export function createRevoker(deps: RevokerDeps) {
  const { store, ledger, sessions } = deps;
  const db = store.db;
  const now = deps.now ?? (() => new Date());
  const retryDelay = deps.retryDelayMs ?? ((n: number) => Math.min(30_000, 500 * 2 ** (n - 1)));

  /** Marks active grants revoked, one transaction for the batch. Returns those this call revoked. */
  async function mark(ids: string[], by: Actor, reason: string): Promise<GrantRow[]> {
    if (ids.length === 0) return [];
    return db.transaction().execute(async (trx) => {
      const rows = await trx
        .updateTable('grants')
        .set({
          status: 'revoked',
          revoked_at: now(),
          revoked_by: by.username,
          revoke_reason: reason,
          revocation_state: 'pending',
        })
        .where('id', 'in', ids)
        .where('status', '=', 'active')
        .returningAll()
        .execute();
      await ledger.appendMany(
        rows.map((g) => ({
          kind: 'grant.revoked',
          actor: by.username,
          actorKind: actorKindOf(by),
          subject: g.holder,
          targetId: g.target_id,
          requestId: g.request_id,
          data: { grantId: g.id, reason, level: g.level },
        })),
        trx,
      );
      const instance = deps.instanceId;
      if (store.kind === 'postgres' && instance && rows.length > 0) {
        // One statement for the batch (an expiry sweep revokes hundreds), sent at commit.
        const notices = rows.map((g) => JSON.stringify({ grantId: g.id, instance } satisfies RevokedNotice));
        await sql`select pg_notify(${REVOKED_CHANNEL}, n) from unnest(${notices}::text[]) as n`.execute(trx);
      }
      return rows;
    });
  }

  /** Closes the sessions of already-revoked grants and records the outcome of each. */
  async function finish(grants: GrantRow[], reason: string): Promise<GrantRow[]> {
    const reports = await Promise.all(
      grants.map(async (g) => ({ g, report: await sessions.closeAll(g.id, userMessage(reason)) })),
    );
    const done = reports.filter((r) => r.report.failed.length === 0);
    const failed = reports.filter((r) => r.report.failed.length > 0);
    return db.transaction().execute(async (trx) => {
      const out: GrantRow[] = [];
      // The common case in one statement and one ledger insert, so a mass expiry stays fast.
      if (done.length > 0) {
        const updated = await trx
          .updateTable('grants')
          .set((eb) => ({
            revocation_state: 'completed',
            revocation_attempts: eb('revocation_attempts', '+', 1),
            next_revocation_attempt_at: null,
          }))
          .where(
            'id',
            'in',
            done.map((d) => d.g.id),
          )
          .returningAll()
          .execute();
        out.push(...updated);
        const attemptsOf = new Map(updated.map((g) => [g.id, g.revocation_attempts]));
        await ledger.appendMany(
          done.map(({ g, report }) => ({
            kind: 'revocation.completed',
            actor: 'sallyport',
            actorKind: 'system' as const,
            subject: g.holder,
            targetId: g.target_id,
            requestId: g.request_id,
            data: {
              grantId: g.id,
              sessionsClosed: report.closed,
              attempts: attemptsOf.get(g.id) ?? g.revocation_attempts + 1,
            },
          })),
          trx,
        );
      }
      for (const { g, report } of failed) {
        const attempts = g.revocation_attempts + 1;
        const next = new Date(now().getTime() + retryDelay(attempts));
        out.push(
          await trx
            .updateTable('grants')
            .set({
              revocation_state: 'failed',
              revocation_attempts: attempts,
              next_revocation_attempt_at: next,
            })
            .where('id', '=', g.id)
            .returningAll()
            .executeTakeFirstOrThrow(),
        );
        await ledger.append(
          {
            kind: 'revocation.failed',
            actor: 'sallyport',
            actorKind: 'system',
            subject: g.holder,
            targetId: g.target_id,
            requestId: g.request_id,
            data: {
              grantId: g.id,
              sessionsClosed: report.closed,
              failures: report.failed,
              attempts,
              retryAt: next.toISOString(),
            },
          },
          trx,
        );
        deps.log?.warn(
          { grantId: g.id, failures: report.failed.length, attempts },
          'revocation failed; will retry',
        );
        deps.onDue?.(next);
      }
      return out;
    });
  }

  return {
    /** Revokes now (expiry, early revoke). Idempotent: grants already revoked are left alone. */
    async revoke(ids: string[], by: Actor, reason: string): Promise<GrantView[]> {
      const marked = await mark(ids, by, reason);
      const done = await finish(marked, reason);
      for (const g of done) {
        deps.notifier.toUser(g.holder, { event: 'grant.revoked', grant: toGrantView(g), reason });
        await deps.notifier.external({ event: 'grant.revoked', grant: toGrantView(g), reason });
      }
      return done.map(toGrantView);
    },

    /** Retries revocations that failed and are due again. */
    async retryDue(): Promise<number> {
      const due = await db
        .selectFrom('grants')
        .selectAll()
        .where('status', '=', 'revoked')
        .where('revocation_state', 'in', ['failed', 'pending'])
        .where((eb) =>
          eb.or([
            eb('next_revocation_attempt_at', 'is', null),
            eb('next_revocation_attempt_at', '<=', now()),
          ]),
        )
        .limit(500)
        .execute();
      if (due.length > 0) await finish(due, 'retry');
      return due.length;
    },
  };
}

/** What a user sees in their terminal or SQL tab when a grant ends. */
export function userMessage(reason: string): string {
  if (reason === 'expired') return 'Your access grant has expired; the session is closed.';
  if (reason === 'retry') return 'Your access grant was revoked; the session is closed.';
  return `Your access grant was revoked (${reason}); the session is closed.`;
}
