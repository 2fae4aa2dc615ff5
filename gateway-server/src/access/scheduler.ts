import type { Ledger } from '../audit';
import type { AccessConfig } from '../policy';
import type { Store } from '../store/db';
import type { Revoker } from './revocation';
import { type AccessService, type Notifier, SYSTEM } from './service';
import { toGrantView } from './views';

export interface SchedulerDeps {
  store: Store;
  ledger: Ledger;
  access: AccessService;
  revoker: Revoker;
  notifier: Notifier;
  config: () => AccessConfig;
  now?: () => Date;
  log: {
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
    info(o: object, m: string): void;
  };
  /** Longest sleep between sweeps, whatever is due: a safety net for clocks and missed kicks. */
  maxSleepMs?: number;
}

export type Scheduler = ReturnType<typeof createScheduler>;

/**
 * Wakes exactly when the next thing is due (a grant expiry, an expiry warning,
 * a pending request's timeout, a revocation retry), and at least every
 * `maxSleepMs`. Everything it acts on is read from the store, so a restarted
 * gateway catches up on its first sweep.
 */
export function createScheduler(deps: SchedulerDeps) {
  const db = deps.store.db;
  const now = deps.now ?? (() => new Date());
  const maxSleep = deps.maxSleepMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  let wakeAt = Number.POSITIVE_INFINITY;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  async function expireGrants() {
    const due = await db
      .selectFrom('grants')
      .select('id')
      .where('status', '=', 'active')
      .where('expires_at', '<=', now())
      .limit(1000)
      .execute();
    if (due.length > 0)
      await deps.revoker.revoke(
        due.map((g) => g.id),
        SYSTEM,
        'expired',
      );
  }

  async function expireRequests() {
    const rows = await db.transaction().execute(async (trx) => {
      const expired = await trx
        .updateTable('access_requests')
        .set({
          status: 'expired',
          decided_at: now(),
          decided_by: 'sallyport',
          decision_reason: 'nobody approved it in time',
        })
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now())
        .returningAll()
        .execute();
      for (const r of expired) {
        await deps.ledger.append(
          {
            kind: 'request.expired',
            actor: 'sallyport',
            actorKind: 'system',
            subject: r.requester,
            targetId: r.target_id,
            requestId: r.id,
            data: { pendingSince: new Date(r.created_at).toISOString() },
          },
          trx,
        );
      }
      return expired;
    });
    for (const r of rows) {
      const request = await deps.access.viewOf(r);
      deps.notifier.toUser(r.requester, { event: 'request.expired', request });
      await deps.notifier.external({ event: 'request.expired', request });
    }
  }

  async function warnExpiring() {
    const horizon = new Date(now().getTime() + deps.config().expiryWarning * 1000);
    const rows = await db
      .updateTable('grants')
      .set({ warned_at: now() })
      .where('status', '=', 'active')
      .where('warned_at', 'is', null)
      .where('expires_at', '<=', horizon)
      .where('expires_at', '>', now())
      .returningAll()
      .execute();
    for (const g of rows) {
      const secondsLeft = Math.max(
        0,
        Math.round((new Date(g.expires_at).getTime() - now().getTime()) / 1000),
      );
      deps.notifier.toUser(g.holder, { event: 'grant.expiring', grant: toGrantView(g), secondsLeft });
    }
  }

  async function nextDue(): Promise<number> {
    const warn = deps.config().expiryWarning * 1000;
    const [grant, unwarned, request, retry] = await Promise.all([
      db
        .selectFrom('grants')
        .select((eb) => eb.fn.min('expires_at').as('t'))
        .where('status', '=', 'active')
        .executeTakeFirst(),
      db
        .selectFrom('grants')
        .select((eb) => eb.fn.min('expires_at').as('t'))
        .where('status', '=', 'active')
        .where('warned_at', 'is', null)
        .executeTakeFirst(),
      db
        .selectFrom('access_requests')
        .select((eb) => eb.fn.min('expires_at').as('t'))
        .where('status', '=', 'pending')
        .executeTakeFirst(),
      db
        .selectFrom('grants')
        .select((eb) => eb.fn.min('next_revocation_attempt_at').as('t'))
        .where('revocation_state', '=', 'failed')
        .executeTakeFirst(),
    ]);
    const times = [grant?.t, request?.t, retry?.t].filter(Boolean).map((t) => new Date(t as Date).getTime());
    if (unwarned?.t) times.push(new Date(unwarned.t as Date).getTime() - warn);
    return Math.min(...times, now().getTime() + maxSleep);
  }

  async function sweep() {
    try {
      await expireGrants();
      await deps.revoker.retryDue();
      await expireRequests();
      await warnExpiring();
    } catch (err) {
      // Store unreachable: nothing was granted by this failure; try again soon.
      deps.log.error({ err: (err as Error).message }, 'expiry sweep failed; retrying');
      schedule(now().getTime() + 1000);
      return;
    }
    try {
      schedule(await nextDue());
    } catch (err) {
      deps.log.error({ err: (err as Error).message }, 'could not compute the next expiry; retrying');
      schedule(now().getTime() + 1000);
    }
  }

  function run() {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = sweep().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        run();
      }
    });
  }

  function schedule(at: number) {
    if (stopped) return;
    if (timer && at >= wakeAt) return;
    clearTimeout(timer);
    wakeAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        wakeAt = Number.POSITIVE_INFINITY;
        run();
      },
      Math.max(0, at - now().getTime()),
    );
  }

  return {
    /** First sweep catches up with everything that fell due while the gateway was down. */
    async start() {
      stopped = false;
      run();
      await running;
    },
    /**
     * Something new is due at `at` (a grant's expiry, a pending request's timeout, a retry).
     * Wakes early enough for the expiry warning too; the sweep then reschedules precisely.
     */
    kick(at: Date) {
      const early = at.getTime() - deps.config().expiryWarning * 1000;
      schedule(Math.min(Math.max(early, now().getTime()), now().getTime() + maxSleep));
    },
    /** Runs a sweep now and waits for it (tests, and after revoke). */
    async sweepNow() {
      run();
      while (running) await running;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
