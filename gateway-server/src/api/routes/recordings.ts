import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RecordingError } from '../../recording';
import type { RecordingRow } from '../../store/tables';
import { callerOf, requireCaller } from '../auth';
import type { ApiContext, Caller } from '../context';
import { HttpError, notFound } from '../errors';
import { parse } from './access';

const ListQuery = z.object({
  target: z.string().max(100).optional(),
  user: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});
const IdParams = z.object({ sessionId: z.string().uuid() });

const view = (r: RecordingRow) => ({
  sessionId: r.session_id,
  kind: r.kind,
  targetId: r.target_id,
  grantId: r.grant_id,
  username: r.username,
  startedAt: new Date(r.started_at).toISOString(),
  endedAt: r.ended_at ? new Date(r.ended_at).toISOString() : null,
  sha256: r.sha256,
  bytes: r.bytes,
  status: r.status,
});

/** People replay their own sessions; admins and approvers replay anyone's. */
const mayReplay = (c: Caller, r: RecordingRow) =>
  r.username === c.username || c.roles.includes('admin') || c.roles.includes('approver');

export function recordingRoutes(app: FastifyInstance, ctx: ApiContext) {
  const authed = { preHandler: requireCaller(ctx) };
  const catalog = () => {
    if (!ctx.recordings) throw new HttpError(503, 'unavailable', 'recordings are not available');
    return ctx.recordings;
  };

  app.get('/api/recordings', authed, async (req) => {
    const q = parse(ListQuery, req.query, 'query');
    const c = callerOf(req);
    const privileged = c.roles.includes('admin') || c.roles.includes('approver');
    const rows = await catalog().list({
      ...(q.target ? { targetId: q.target } : {}),
      username: privileged ? q.user : c.username,
      limit: q.limit,
    });
    return { recordings: rows.map(view) };
  });

  app.get('/api/recordings/:sessionId', authed, async (req) => {
    const { sessionId } = parse(IdParams, req.params, 'params');
    const row = await catalog().get(sessionId);
    if (!row || !mayReplay(callerOf(req), row)) throw notFound(`recording ${sessionId}`);
    return view(row);
  });

  app.get('/api/recordings/:sessionId/content', authed, async (req, reply) => {
    const { sessionId } = parse(IdParams, req.params, 'params');
    const row = await catalog().get(sessionId);
    if (!row || !mayReplay(callerOf(req), row)) throw notFound(`recording ${sessionId}`);
    try {
      const { stream } = await catalog().open(sessionId);
      await ctx.ledger.append({
        kind: 'recording.viewed',
        actor: callerOf(req).username,
        actorKind: callerOf(req).kind,
        subject: row.username,
        targetId: row.target_id,
        data: { sessionId },
      });
      reply.header('content-type', row.kind === 'ssh' ? 'application/x-asciicast' : 'application/x-ndjson');
      reply.header('x-sallyport-sha256', row.sha256 ?? '');
      return reply.send(stream);
    } catch (err) {
      if (err instanceof RecordingError) {
        throw new HttpError(err.code === 'not_found' ? 404 : 409, `recording_${err.code}`, err.message);
      }
      throw err;
    }
  });
}
