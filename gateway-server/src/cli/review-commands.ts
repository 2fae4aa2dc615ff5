import { createGatewayClient } from '@sallyport/protocol';
import type { Command } from 'commander';
import { type Io, table } from './output';
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
}
