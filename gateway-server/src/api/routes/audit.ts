import type { AuditEventView } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditEventRow } from '../../store/tables';
import { requireCaller, requireRole } from '../auth';
import type { ApiContext } from '../context';
import { parse } from './access';

const AuditQuery = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  kind: z.string().max(100).optional(),
  actor: z.string().max(200).optional(),
  target: z.string().max(100).optional(),
  afterSeq: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  format: z.enum(['json', 'jsonl']).default('json'),
});

export const toAuditView = (e: AuditEventRow): AuditEventView => ({
  seq: e.seq,
  id: e.id,
  at: new Date(e.at).toISOString(),
  kind: e.kind,
  actor: e.actor,
  actorKind: e.actor_kind,
  subject: e.subject,
  targetId: e.target_id,
  requestId: e.request_id,
  data: e.data,
  prevHash: e.prev_hash,
  hash: e.hash,
});

export function auditRoutes(app: FastifyInstance, ctx: ApiContext) {
  const admin = { preHandler: [requireCaller(ctx), requireRole('admin')] };

  app.get('/api/audit', admin, async (req, reply) => {
    const q = parse(AuditQuery, req.query, 'query');
    const rows = await ctx.ledger.list({
      ...(q.since ? { since: new Date(q.since) } : {}),
      ...(q.until ? { until: new Date(q.until) } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.target ? { targetId: q.target } : {}),
      ...(q.afterSeq !== undefined ? { afterSeq: q.afterSeq } : {}),
      limit: q.limit,
    });
    const events = rows.map(toAuditView);
    if (q.format === 'jsonl') {
      reply.header('content-type', 'application/x-ndjson');
      return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
    }
    return { events };
  });

  app.get('/api/audit/verify', admin, async () => ctx.ledger.verify());
}
