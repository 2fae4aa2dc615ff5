import { randomUUID } from 'node:crypto';
import {
  AccessLevel,
  SqlClientMessage,
  type SqlServerMessage,
  SqlWsClose,
  WsClose,
} from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import type { ReviewService } from '../../access/reviews';
import { AccessError, type Actor } from '../../access/service';
import { createGuardrails, type Guardrails } from '../../policy/guardrails';
import type { SqlRule } from '../../protocols/postgres/guard';
import {
  catalogSqlRecorderFactory,
  type SqlRecorderFactory,
  SqlRecordingUnavailableError,
} from '../../protocols/postgres/recorder';
import {
  type SqlCloseCode,
  type SqlReviewHooks,
  SqlSession,
  SqlSessionError,
  sqlLevelReadOnly,
} from '../../protocols/postgres/session';
import { corkUntilCallbackEnd } from '../../protocols/ws-cork';
import type { GrantRow } from '../../store/tables';
import { tlsCaSha256 } from '../../targets/repository';
import { authenticate } from '../auth';
import type { ApiContext, Caller } from '../context';
import { HttpError } from '../errors';

const AUTH_TIMEOUT_MS = 10_000;
const MAX_BAD_FRAMES = 5;
/** A `run` frame carries at most SQL_MAX_TEXT characters of SQL (plus JSON escaping). */
const MAX_FRAME_BYTES = 1024 * 1024;
/** Above this many buffered bytes, the session waits for the socket before sending more rows. */
const HIGH_WATER_BYTES = 1024 * 1024;

export interface SqlRouteOptions {
  /**
   * Records every session. Default: JSON lines in the recording catalogue (`ctx.recordings`),
   * keeping `recording.sqlResultRows` masked rows per statement; no recording without a catalogue.
   */
  recorder?: SqlRecorderFactory;
  /** Guard rules and row cap per session (policy/guardrails.ts). Default: from `ctx.config.guardrails`. */
  guardrails?: Guardrails;
  /** Most rows one statement sends (tests; default `guardrails.sql.maxRows` of the config). */
  maxRows?: number;
  /** The same guard rules for every session, whatever the config says (tests). */
  rules?: SqlRule[];
}

/** Statement review for one session: the review service bound to its grant and requester. */
function reviewHooks(
  service: ReviewService,
  o: { sessionId: string; grant: GrantRow; requester: Actor },
): SqlReviewHooks {
  return {
    hold: (input) =>
      service.hold({ kind: 'sql', sessionId: o.sessionId, grant: o.grant, requester: o.requester, ...input }),
    consume: (reviewId, text) => service.consume(reviewId, text, o.requester),
    cancel: (reviewId, why) => service.cancel(reviewId, why),
  };
}

const wsCodeOf: Record<SqlCloseCode, number> = {
  grant_ended: SqlWsClose.grantEnded,
  connection_lost: SqlWsClose.connectionLost,
  client_closed: SqlWsClose.normal,
  shutdown: WsClose.shuttingDown,
  error: SqlWsClose.connectionLost,
};

/**
 * The SQL channel `/api/sql` (protocol/src/sql.ts): authenticate (header, console cookie or a
 * first `auth` frame), `open` a session under a grant, then `run` / `cancel`. The session itself
 * (guard, streaming, masking, ledger) lives in protocols/postgres/session.ts; this route checks
 * the grant, picks the guard rules for the target and level (config `guardrails`), wires the
 * socket and registers the session so revocation can close it. Every session has statement
 * review: `review` batches are held for an approver through `ctx.reviews` (the `reviews` flag of
 * `open` is accepted and ignored; only a gateway without a review service refuses them).
 */
export function sqlWsRoute(app: FastifyInstance, ctx: ApiContext, opts: SqlRouteOptions = {}) {
  const { recordings, masker: textMasker } = ctx;
  const guardrails = opts.guardrails ?? createGuardrails(ctx.config.guardrails);
  const maxRows = opts.maxRows ?? guardrails.sqlMaxRows;
  const recorder =
    opts.recorder ??
    (recordings
      ? catalogSqlRecorderFactory(recordings, {
          resultRows: ctx.config.recording.sqlResultRows,
          ...(textMasker ? { maskText: (text: string) => textMasker.maskText(text).text } : {}),
        })
      : undefined);
  app.get('/api/sql', { websocket: true }, (ws, req) => {
    let caller: Caller | undefined;
    let authing: Promise<void> | undefined;
    let session: SqlSession | undefined;
    let opening = false;
    let clientGone = false;
    let badFrames = 0;
    let chain: Promise<void> = Promise.resolve();

    /** Sends a frame; waits for the socket to drain when the client reads slower than we send. */
    const send = (frame: SqlServerMessage): void | Promise<void> => {
      if (ws.readyState !== ws.OPEN) return;
      const data = JSON.stringify(frame);
      corkUntilCallbackEnd(ws);
      if (ws.bufferedAmount < HIGH_WATER_BYTES) {
        ws.send(data);
        return;
      }
      return new Promise<void>((resolve) => {
        const onClose = () => resolve();
        ws.once('close', onClose);
        ws.send(data, () => {
          ws.off('close', onClose);
          resolve();
        });
      });
    };
    /** Ends the channel before a session exists. */
    const refuse = (code: string, message: string, wsCode: number) => {
      send({ type: 'error', code, message });
      if (ws.readyState === ws.OPEN) ws.close(wsCode, code.slice(0, 100));
    };
    const welcome = (c: Caller) => {
      caller = c;
      clearTimeout(timer);
    };
    const refuseAuth = (err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(401, 'unauthorized', 'unauthorized');
      refuse(e.code, e.message, WsClose.unauthorized);
    };
    const timer = setTimeout(() => {
      if (!caller) {
        refuse(
          'auth_timeout',
          'send an Authorization header or {"type":"auth","token":…} first',
          WsClose.authTimeout,
        );
      }
    }, AUTH_TIMEOUT_MS);

    if (req.headers.authorization) {
      authing = authenticate(ctx, req, req.headers.authorization).then(welcome, refuseAuth);
    }

    const bad = (code: string, message: string, id?: string) => {
      send({ type: 'error', code, message, ...(id ? { id } : {}) });
      if (++badFrames >= MAX_BAD_FRAMES) {
        if (session) void session.close('too many malformed frames', 'error');
        else refuse('too_many_bad_frames', 'too many malformed frames', WsClose.tooManyBadFrames);
      }
    };

    const open = async (c: Caller, targetId: string, grantId: string) => {
      const { access, sessions: registry, masker } = ctx;
      if (!access || !registry || !masker) {
        return refuse('unavailable', 'SQL sessions are not available on this gateway', SqlWsClose.refused);
      }
      let grant: Awaited<ReturnType<typeof access.checkGrantForUse>>;
      try {
        grant = await access.checkGrantForUse(c, grantId, targetId);
      } catch (err) {
        if (err instanceof AccessError || err instanceof HttpError) {
          return refuse(err.code, err.message, SqlWsClose.refused);
        }
        throw err;
      }
      const refuseGrant = async (code: string, message: string) => {
        await ctx.ledger.append({
          kind: 'access.refused',
          actor: c.username,
          actorKind: c.kind,
          targetId,
          requestId: grant.request_id,
          data: { code, message, grantId: grant.id, level: grant.level, channel: 'sql' },
        });
        refuse(code, message, SqlWsClose.refused);
      };
      const level = AccessLevel.safeParse(grant.level);
      const readOnly = level.success ? sqlLevelReadOnly(level.data) : undefined;
      if (!level.success || readOnly === undefined) {
        return refuseGrant(
          'level_mismatch',
          `grant ${grant.id} is for ${grant.level} access, not for SQL sessions`,
        );
      }
      const target = await ctx.targets.get(targetId);
      if (target?.kind !== 'postgres' || !target.database_name) {
        return refuseGrant('not_postgres', `${targetId} is not a PostgreSQL target`);
      }
      const credential = await ctx.targets.credential(targetId);
      if (clientGone) return;
      const sessionId = randomUUID();
      let unregister: (() => void) | undefined;
      // Fail closed: a session whose recording cannot be written does not go on.
      let recordingFailed: string | undefined;
      const onRecordingFailure = (reason: string) => {
        recordingFailed ??= reason;
        if (session) void session.close(reason, 'error');
      };
      try {
        // Read apart from the record (it can be large): if the target changed in between, the
        // bundle may not be the one the record names, so connect with neither.
        const tlsCa = target.tls_ca_sha256 ? await ctx.targets.tlsCa(target.id) : undefined;
        if (target.tls_ca_sha256 && (tlsCa === undefined || tlsCaSha256(tlsCa) !== target.tls_ca_sha256)) {
          throw new SqlSessionError(
            'connect_failed',
            `target ${target.id} changed while the session was opening: open it again`,
          );
        }
        session = await SqlSession.open({
          sessionId,
          target: {
            id: target.id,
            host: target.host,
            port: target.port,
            user: target.user_name,
            database: target.database_name,
            tls: (target.tls ?? 'disable') as 'disable' | 'require' | 'verify-full',
            ...(tlsCa ? { tlsCa } : {}),
          },
          password: credential?.password,
          grant: { id: grant.id, level: level.data },
          actor: { username: c.username, kind: c.kind },
          masker,
          ledger: ctx.ledger,
          send,
          maxRows,
          rules: opts.rules ?? guardrails.sqlRules(target, level.data),
          ...(ctx.reviews ? { review: reviewHooks(ctx.reviews, { sessionId, grant, requester: c }) } : {}),
          ...(recorder
            ? {
                recorder: recorder(
                  {
                    sessionId,
                    grantId: grant.id,
                    targetId,
                    username: c.username,
                    level: grant.level,
                    readOnly,
                    startedAt: new Date(),
                  },
                  { onFailure: onRecordingFailure },
                ),
              }
            : {}),
          log: req.log,
          onClosed: (code) => {
            unregister?.();
            if (ws.readyState === ws.OPEN) ws.close(wsCodeOf[code], code);
          },
        });
      } catch (err) {
        if (err instanceof SqlSessionError) return refuse(err.code, err.message, SqlWsClose.refused);
        if (err instanceof SqlRecordingUnavailableError) {
          await ctx.ledger
            .append({
              kind: 'sql.session.failed',
              actor: c.username,
              actorKind: c.kind,
              subject: c.username,
              targetId,
              data: { sessionId, grantId: grant.id, level: grant.level, code: err.code, error: err.message },
            })
            .catch((e: Error) => req.log.warn({ err: e.message }, 'could not record sql.session.failed'));
          return refuse(err.code, err.message, SqlWsClose.refused);
        }
        throw err;
      }
      unregister = registry.register(grant.id, {
        id: session.id,
        kind: 'sql',
        username: c.username,
        close: (reason) => (session ? session.close(reason, 'grant_ended') : Promise.resolve()),
      });
      if (session.isClosed) {
        unregister();
        return;
      }
      if (recordingFailed) {
        void session.close(recordingFailed, 'error');
        return;
      }
      // The socket may have gone, or the grant ended, while the connection opened.
      if (clientGone) {
        void session.close('the client disconnected', 'client_closed');
      } else if (!(await access.usableGrant(c.username, targetId, grant.id))) {
        void session.close(
          'Your access grant ended while the session opened; the session is closed.',
          'grant_ended',
        );
      }
    };

    const handle = async (raw: Buffer, isBinary: boolean) => {
      if (isBinary)
        return bad('bad_frame', 'binary frames are not accepted on this channel: send JSON text frames');
      if (raw.length > MAX_FRAME_BYTES) return bad('bad_frame', `frame larger than ${MAX_FRAME_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        return bad('bad_frame', 'frame is not valid JSON');
      }
      const parsed = SqlClientMessage.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const id =
          typeof (json as { id?: unknown })?.id === 'string' ? (json as { id: string }).id : undefined;
        return bad(
          'bad_frame',
          `frame does not match the protocol: ${issue?.path.join('.') || 'type'}: ${issue?.message ?? 'invalid'}`,
          id && id.length <= 64 ? id : undefined,
        );
      }
      const msg = parsed.data;
      if (msg.type === 'auth') {
        if (caller || authing) return bad('already_authenticated', 'this socket is already authenticated');
        authing = authenticate(ctx, req, `Bearer ${msg.token}`).then(welcome, refuseAuth);
        return authing;
      }
      if (authing) await authing;
      if (!caller) {
        if (ws.readyState === ws.OPEN) bad('unauthenticated', 'authenticate first');
        return;
      }
      if (msg.type === 'open') {
        if (opening || session)
          return bad('already_open', 'this socket already carries a session: open another socket');
        opening = true;
        return open(caller, msg.targetId, msg.grantId);
      }
      if (!session || session.isClosed) return bad('not_open', 'send {"type":"open",…} first', msg.id);
      // Not awaited: a run streams while later frames (cancel) are handled.
      if (msg.type === 'run') void session.run({ id: msg.id, sql: msg.sql, maxRows: msg.maxRows });
      else if (msg.type === 'cancel') void session.cancel(msg.id);
    };

    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      chain = chain
        .then(() => handle(raw, isBinary))
        .catch((err: Error) => {
          req.log.error({ err: err.message }, 'sql channel error');
          if (session) void session.close('the gateway hit an internal error', 'error');
          else refuse('internal_error', 'the gateway hit an internal error', SqlWsClose.connectionLost);
        });
    });
    ws.on('close', () => {
      clientGone = true;
      clearTimeout(timer);
      if (session) void session.close('the client disconnected', 'client_closed');
    });
    ws.on('error', (err) => req.log.warn({ err: err.message }, 'sql websocket error'));
  });
}
