import {
  TerminalClientMessage,
  TerminalClose,
  type TerminalOpen,
  type TerminalServerMessage,
} from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { userMessage } from '../../access/revocation';
import { AccessError } from '../../access/service';
import { createGuardrails, type Guardrails } from '../../policy/guardrails';
import { type FilterFactory, identityFilters, type SessionObserver } from '../../protocols/ssh/filters';
import { createShellGuard } from '../../protocols/ssh/guard-filter';
import { createMaskingFilter } from '../../protocols/ssh/masking-filter';
import { openSshRecording, type RecordingObserver } from '../../protocols/ssh/recording-observer';
import { TerminalSession } from '../../protocols/ssh/session';
import { authenticate } from '../auth';
import type { ApiContext, Caller } from '../context';
import { HttpError } from '../errors';

const AUTH_TIMEOUT_MS = 10_000;
const MAX_BAD_FRAMES = 5;
/** An `input` frame carries at most 256 KiB of base64; anything much larger is not ours. */
const MAX_FRAME_BYTES = 300 * 1024;

const send = (ws: WebSocket, msg: TerminalServerMessage) => {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
};

export interface TerminalRouteOptions {
  /**
   * Extra filters per session (filters.ts), identity when absent. The shell guard (first input
   * filter), masking (last output filter) and recording (last observer) are added by the route.
   */
  filters?: FilterFactory;
  /** Shell guard rules per target and level (policy/guardrails.ts). Default: from `ctx.config.guardrails`. */
  guardrails?: Guardrails;
}

/**
 * The terminal channel `/api/terminal` (protocol/src/terminal.ts): authenticate
 * (header or first frame), `open` under a grant, then relay. Refusals are a
 * `notice` + `closed`; malformed frames get an error notice naming the problem,
 * and a client that keeps sending them is disconnected. Exec commands and interactive lines pass
 * the shell guard with the rules in effect for the target and the grant's level.
 */
export function terminalWsRoute(app: FastifyInstance, ctx: ApiContext, opts: TerminalRouteOptions = {}) {
  const guardrails = opts.guardrails ?? createGuardrails(ctx.config.guardrails);
  app.get('/api/terminal', { websocket: true }, (ws, req) => {
    let caller: Caller | undefined;
    let authing: Promise<void> | undefined;
    let session: TerminalSession | undefined;
    let opened = false;
    let badFrames = 0;
    let chain: Promise<void> = Promise.resolve();

    /** Ends the channel before a session exists: notice, closed, close. */
    const end = (code: string, message: string, wsCode: number) => {
      send(ws, { type: 'notice', level: 'error', code, message });
      send(ws, { type: 'closed', code, reason: message });
      if (ws.readyState === ws.OPEN) ws.close(wsCode, code.slice(0, 100));
    };
    const welcome = (c: Caller) => {
      caller = c;
    };
    const refuseAuth = (err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(401, 'unauthorized', 'unauthorized');
      end(e.code, e.message, TerminalClose.unauthorized);
    };
    // A socket must authenticate and open its session promptly, or it is closed.
    const timer = setTimeout(() => {
      if (opened) return;
      if (!caller) {
        end(
          'auth_timeout',
          'send an Authorization header or {"type":"auth","token":…} first',
          TerminalClose.authTimeout,
        );
      } else {
        end('open_timeout', 'send {"type":"open",…} within 10 s of connecting', TerminalClose.authTimeout);
      }
    }, AUTH_TIMEOUT_MS);

    if (req.headers.authorization)
      authing = authenticate(ctx, req, req.headers.authorization).then(welcome, refuseAuth);

    const bad = (code: string, message: string) => {
      send(ws, { type: 'notice', level: 'error', code, message });
      if (++badFrames >= MAX_BAD_FRAMES) {
        if (session) void session.close('error', 'too many malformed frames');
        else end('too_many_bad_frames', 'too many malformed frames', TerminalClose.tooManyBadFrames);
      }
    };

    const open = async (c: Caller, msg: TerminalOpen) => {
      const { access, sessions: registry, masker } = ctx;
      if (!access || !registry || !masker) {
        return end('unavailable', 'terminal sessions are not available on this gateway', TerminalClose.error);
      }
      let grant: Awaited<ReturnType<typeof access.checkGrantForUse>>;
      try {
        grant = await access.checkGrantForUse(c, msg.grantId, msg.targetId);
      } catch (err) {
        if (err instanceof AccessError) return end(err.code, err.message, TerminalClose.refused);
        throw err;
      }
      const refuse = async (code: string, message: string) => {
        await ctx.ledger.append({
          kind: 'access.refused',
          actor: c.username,
          actorKind: c.kind,
          targetId: msg.targetId,
          requestId: grant.request_id,
          data: { code, message, grantId: grant.id, level: grant.level, mode: msg.mode },
        });
        end(code, message, TerminalClose.refused);
      };
      if (grant.level === 'exec-only' && msg.mode === 'shell') {
        return refuse(
          'exec_only',
          `grant ${grant.id} is exec-only: run single commands (sallyport ssh ${msg.targetId} -- <command>); an interactive shell needs the shell level`,
        );
      }
      if (grant.level !== 'shell' && grant.level !== 'exec-only') {
        return refuse(
          'level_mismatch',
          `grant ${grant.id} is for ${grant.level} access, not for SSH sessions`,
        );
      }
      const target = await ctx.targets.get(msg.targetId);
      if (target?.kind !== 'ssh') {
        return refuse('not_ssh', `${msg.targetId} is not an SSH target`);
      }
      if (ws.readyState !== ws.OPEN) return;
      // Decided before the session starts: exec commands are checked before the channel opens.
      const shellRules = guardrails.shellRules(target, grant.level);
      session = new TerminalSession({
        ws,
        actor: { username: c.username, kind: c.kind },
        target,
        credential: () => ctx.targets.credential(target.id),
        grant: { id: grant.id, requestId: grant.request_id },
        mode: msg.mode,
        ...(msg.command !== undefined ? { command: msg.command } : {}),
        cols: msg.cols,
        rows: msg.rows,
        binaryOutput: msg.binaryOutput === true,
        ledger: ctx.ledger,
        registry,
        closeReasonOf: (m) => (m === userMessage('expired') ? 'expired' : 'revoked'),
        stillGranted: async () => Boolean(await access.usableGrant(c.username, msg.targetId, grant.id)),
        log: req.log,
        filters: async (fctx) => {
          const base = await (opts.filters ?? identityFilters)(fctx);
          const live = session;
          // Shell guardrails (guard-filter.ts) on every SSH target, unless no rule is in effect for
          // this target and level (the config turned the built-in rules off and scoped none here).
          if (shellRules.length > 0) {
            const guard = await createShellGuard({
              ctx: fctx,
              ledger: ctx.ledger,
              reviews: ctx.reviews,
              grant,
              requester: c,
              rules: shellRules,
              kick: (m) => live?.input(m),
              releaseHeldOutput: () => live?.releaseHeldOutput(),
            });
            base.input.unshift(guard.input);
            base.observers.push(guard.observer);
          }
          const masking = createMaskingFilter({
            masker,
            interactive: msg.mode === 'shell',
            // Output the masker releases by itself (idle drain, end of session): to the observers,
            // and to the client while the session runs.
            emit: (data, stream) => {
              for (const ob of observers) ob.output?.(data, stream);
              if (live && !live.isEnded) live.sendOutput(data, stream);
            },
          });
          const observers: SessionObserver[] = [
            ...base.observers,
            { name: 'masking-close', ended: () => masking.close() },
            ...(recorder ? [recorder] : []),
          ];
          return { input: base.input, output: [...base.output, masking], observers };
        },
      });
      // The recording is opened before anything else: a session that cannot be recorded does not start.
      let recorder: RecordingObserver | undefined;
      if (ctx.recordings) {
        const live = session;
        try {
          recorder = await openSshRecording(ctx.recordings, live.info, masker, (err) => {
            req.log.error({ sessionId: live.id, err: err.message }, 'session recording failed');
            send(ws, {
              type: 'notice',
              level: 'error',
              code: 'recording_failed',
              message: 'the session recording could not be written',
            });
            void live.close('error', 'The session recording could not be written; the session is closed.');
          });
        } catch (err) {
          req.log.error(
            { sessionId: live.id, err: (err as Error).message },
            'cannot open the session recording',
          );
          await ctx.ledger.append({
            kind: 'access.refused',
            actor: c.username,
            actorKind: c.kind,
            targetId: msg.targetId,
            requestId: grant.request_id,
            data: { code: 'recording_unavailable', grantId: grant.id, level: grant.level, mode: msg.mode },
          });
          return end(
            'recording_unavailable',
            'the gateway cannot record this session right now, so it does not start; tell the gateway operator',
            TerminalClose.error,
          );
        }
      }
      await session.start();
      const rec = recorder;
      if (rec) {
        // Sessions that never started (refused, unreachable target) still close their recording.
        void session.done
          .then(() => rec.finish())
          .catch((err: Error) => req.log.warn({ err: err.message }, 'could not close the session recording'));
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
      const parsed = TerminalClientMessage.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return bad(
          'bad_frame',
          `frame does not match the protocol: ${issue?.path.join('.') || 'type'}: ${issue?.message ?? 'invalid'}`,
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
        if (opened) return bad('already_open', 'this socket already carries a session: open another socket');
        opened = true;
        clearTimeout(timer);
        return open(caller, msg);
      }
      if (!session || session.isEnded) return bad('not_open', 'send {"type":"open",…} first');
      if (msg.type === 'input') session.input(Buffer.from(msg.data, 'base64'));
      else if (msg.type === 'resize') session.resize(msg.cols, msg.rows);
      else if (msg.type === 'signal') session.interrupt();
      else if (msg.type === 'eof') session.eof();
    };

    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      chain = chain
        .then(() => handle(raw, isBinary))
        .catch((err: Error) => {
          req.log.error({ err: err.message }, 'terminal channel error');
          if (session) void session.close('error', 'the gateway hit an internal error');
          else end('internal_error', 'the gateway hit an internal error', TerminalClose.error);
        });
    });
    ws.on('close', () => {
      clearTimeout(timer);
      session?.clientClosed();
    });
    ws.on('error', (err) => req.log.warn({ err: err.message }, 'terminal websocket error'));
  });
}
