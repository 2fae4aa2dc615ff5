import { createGatewayClient } from '@sallyport/protocol';
import type { Command } from 'commander';
import { type Io, printable, table } from './output';
import { resolveSession } from './session';

/** `sallyport reviews`: held SQL statements and command lines, for approvers. */
export function registerReviewCommands(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  const client = (gateway?: string) => {
    const s = resolveSession(env, gateway);
    return createGatewayClient({ baseUrl: s.gateway, token: () => s.token });
  };
  const reviews = program.command('reviews').description('statements and commands waiting for an approver');

  reviews
    .command('list', { isDefault: true })
    .description('list reviews (default: those you may decide)')
    .option('--mine', 'the ones you are waiting on')
    .option('--all', 'all (admin)')
    .option('--status <status>', 'pending, approved, denied, expired, used, cancelled')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(
      async (o: { mine?: boolean; all?: boolean; status?: string; gateway?: string; json?: boolean }) => {
        const list = await client(o.gateway).reviews({
          scope: o.all ? 'all' : o.mine ? 'mine' : 'inbox',
          ...(o.status ? { status: o.status } : {}),
        });
        io.out(
          o.json
            ? JSON.stringify(list, null, 2)
            : table(
                list.map((r) => ({
                  id: r.id,
                  kind: r.kind,
                  requester: r.requester,
                  target: r.targetId,
                  status: r.status,
                  rule: r.rule,
                  text: r.text.replace(/\s+/g, ' ').slice(0, 60),
                })),
                ['id', 'kind', 'requester', 'target', 'status', 'rule', 'text'],
              ),
        );
      },
    );

  reviews
    .command('approve <id>')
    .description('let the held statement or command run, exactly as shown, once')
    .option('--reason <text>', 'why')
    .option('-g, --gateway <url>', 'gateway URL')
    .action(async (id: string, o: { reason?: string; gateway?: string }) => {
      const r = await client(o.gateway).approveReview(id, o.reason);
      io.out(`approved ${r.kind} ${r.id} by ${r.requester} on ${r.targetId}:\n  ${r.text}`);
    });

  reviews
    .command('deny <id>')
    .description('refuse the held statement or command')
    .requiredOption('--reason <text>', 'why (the requester sees it)')
    .option('-g, --gateway <url>', 'gateway URL')
    .action(async (id: string, o: { reason: string; gateway?: string }) => {
      const r = await client(o.gateway).denyReview(id, o.reason);
      io.out(`denied ${r.kind} ${r.id} by ${r.requester} on ${r.targetId}`);
    });

  // Break-glass access is granted first and looked at afterwards, by an approver.
  const breakGlass = program
    .command('break-glass')
    .description('break-glass grants taken without approval, waiting for your review after the fact');

  breakGlass
    .command('list', { isDefault: true })
    .description('list the break-glass grants you may review')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (o: { gateway?: string; json?: boolean }) => {
      const items = await client(o.gateway).grantsToReview();
      io.out(
        o.json
          ? JSON.stringify(items, null, 2)
          : table(
              items.map(({ grant: g, request: r }) => ({
                grant: g.id,
                holder: g.holder,
                target: g.targetId,
                level: g.level,
                taken: g.createdAt,
                status: g.status === 'active' && Date.parse(g.expiresAt) <= Date.now() ? 'expired' : g.status,
                why: printable(r.reason.replace(/\s+/g, ' ').slice(0, 60)),
              })),
              ['grant', 'holder', 'target', 'level', 'taken', 'status', 'why'],
            ),
      );
    });

  breakGlass
    .command('review <grantId>')
    .description('mark a break-glass grant reviewed, with what you found (recorded in the ledger)')
    .requiredOption('--note <text>', 'what you found: its sessions, whether the access was justified')
    .option('-g, --gateway <url>', 'gateway URL')
    .action(async (id: string, o: { note: string; gateway?: string }) => {
      const g = await client(o.gateway).reviewGrant(id, o.note);
      io.out(
        `reviewed break-glass grant ${g.id} (${g.holder} on ${g.targetId}, ${g.level}):\n  ${printable(g.reviewNote ?? '')}`,
      );
    });
}
