import { TargetId, TargetInput, type TargetList, type TargetView } from '@sallyport/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { principalMatches, targetMatches } from '../../policy';
import { changedFacts, targetFacts } from '../../targets/audit-facts';
import { type TargetRecord, toTargetView } from '../../targets/repository';
import { callerOf, requireCaller, requireRole } from '../auth';
import type { ApiContext, Caller } from '../context';
import { forbidden, HttpError, notFound, validationError } from '../errors';

const IdParams = z.object({ id: TargetId });

function parse<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'params' | 'query'): T {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}

export function targetRoutes(app: FastifyInstance, ctx: ApiContext) {
  const authed = { preHandler: requireCaller(ctx) };
  const admin = { preHandler: [requireCaller(ctx), requireRole('admin')] };

  // Deny by default reaches the catalogue too: a caller sees the targets some rule lets them
  // request (or approve), and admins see all. Each comes with the caller's access state.
  const visible = (caller: Caller, t: TargetRecord) =>
    caller.roles.includes('admin') ||
    ctx.config.access.rules.some(
      (r) =>
        targetMatches(r.targets, t) &&
        (principalMatches(r.requesters, caller) ||
          (r.approval !== 'auto' && principalMatches(r.approval.approvers, caller))),
    );
  const withAccess = async (caller: Caller, rows: TargetRecord[]) => {
    const states = (await ctx.access?.accessStates(caller.username)) ?? new Map();
    return rows.map((t) => toTargetView(t, states.get(t.id) ?? { state: 'none' }));
  };

  app.get('/api/targets', authed, async (req): Promise<TargetList> => {
    const caller = callerOf(req);
    const rows = (await ctx.targets.list()).filter((t) => visible(caller, t));
    return { targets: await withAccess(caller, rows) };
  });

  app.get('/api/targets/:id', authed, async (req): Promise<TargetView> => {
    const { id } = parse(IdParams, req.params, 'params');
    const caller = callerOf(req);
    const t = await ctx.targets.get(id);
    if (!t || !visible(caller, t)) throw notFound(`target "${id}"`);
    return (await withAccess(caller, [t]))[0]!;
  });

  app.post('/api/admin/targets', admin, async (req, reply) => {
    const input = parse(TargetInput, req.body, 'body');
    if (await ctx.targets.get(input.id)) {
      throw new HttpError(
        409,
        'conflict',
        `target "${input.id}" exists; use PUT /api/admin/targets/${input.id} to replace it`,
      );
    }
    const saved = await ctx.targets.upsert(input, 'api');
    await audit(ctx, req, 'target.created', saved.id, {
      ...targetFacts(saved),
      credentialSet: Boolean(input.credential),
    });
    return reply.status(201).send(toTargetView(saved));
  });

  app.put('/api/admin/targets/:id', admin, async (req) => {
    const { id } = parse(IdParams, req.params, 'params');
    const input = parse(TargetInput, req.body, 'body');
    if (input.id !== id)
      throw new HttpError(400, 'invalid_request', `body id "${input.id}" does not match the URL id "${id}"`);
    const existing = await ctx.targets.get(id);
    if (existing && existing.source !== 'api') {
      throw forbidden(
        `target "${id}" is defined in ${existing.source === 'config' ? 'the config file' : 'the demo set-up'}; change it there`,
      );
    }
    const saved = await ctx.targets.upsert(input, 'api');
    const facts = targetFacts(saved);
    await audit(ctx, req, existing ? 'target.updated' : 'target.created', id, {
      ...facts,
      ...(existing ? { changed: changedFacts(targetFacts(existing), facts) } : {}),
      credentialSet: Boolean(input.credential),
    });
    return toTargetView(saved);
  });

  app.delete('/api/admin/targets/:id', admin, async (req, reply) => {
    const { id } = parse(IdParams, req.params, 'params');
    const existing = await ctx.targets.get(id);
    if (!existing) throw notFound(`target "${id}"`);
    if (existing.source !== 'api')
      throw forbidden(
        `target "${id}" is defined in the ${existing.source === 'config' ? 'config file' : 'demo set-up'}; remove it there`,
      );
    await ctx.targets.remove(id);
    await audit(ctx, req, 'target.deleted', id, {});
    return reply.status(204).send();
  });
}

async function audit(
  ctx: ApiContext,
  req: Parameters<typeof callerOf>[0],
  kind: string,
  targetId: string,
  data: Record<string, unknown>,
) {
  const c = callerOf(req);
  await ctx.ledger.append({
    kind,
    actor: c.username,
    actorKind: c.kind,
    subject: targetId,
    targetId,
    data: { ...data, requestId: req.id },
  });
}
