import { createGatewayClient, type GatewayClient } from '@sallyport/protocol';
import type { Command } from 'commander';
import { clientCredentialsToken } from './oidc-client';
import { type Io, table } from './output';
import { clearSession, readSession, resolveSession, writeSession } from './session';

export function registerClientCommands(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  const client = (gatewayFlag?: string): GatewayClient => {
    const s = resolveSession(env, gatewayFlag);
    return createGatewayClient({ baseUrl: s.gateway, token: () => s.token });
  };
  const print = (json: boolean, value: unknown, human: () => string) =>
    io.out(json ? JSON.stringify(value, null, 2) : human());

  program
    .command('login')
    .description('sign in to a gateway (non-interactive: client credentials, or a token you already have)')
    .requiredOption('-g, --gateway <url>', 'gateway URL', env.SALLYPORT_GATEWAY)
    .option('--client-id <id>', 'service client id (client-credentials grant)', env.SALLYPORT_CLIENT_ID)
    .option(
      '--client-secret <secret>',
      'service client secret (prefer SALLYPORT_CLIENT_SECRET)',
      env.SALLYPORT_CLIENT_SECRET,
    )
    .option('--token <jwt>', 'use an access token you already have (prefer SALLYPORT_TOKEN)')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        gateway: string;
        clientId?: string;
        clientSecret?: string;
        token?: string;
        json?: boolean;
      }) => {
        const gateway = opts.gateway.replace(/\/$/, '');
        let token = opts.token ?? env.SALLYPORT_TOKEN;
        let expiresAt: Date | undefined;
        if (!token) {
          if (!opts.clientId || !opts.clientSecret) {
            throw new Error(
              'give --client-id and --client-secret (or SALLYPORT_CLIENT_ID/SALLYPORT_CLIENT_SECRET), or --token; interactive sign-in is in the desktop app',
            );
          }
          const info = await createGatewayClient({ baseUrl: gateway }).info();
          const t = await clientCredentialsToken({
            issuer: info.issuer,
            clientId: opts.clientId,
            clientSecret: opts.clientSecret,
          });
          token = t.accessToken;
          expiresAt = t.expiresAt;
        }
        const me = await createGatewayClient({ baseUrl: gateway, token: () => token }).me();
        writeSession(env, {
          gateway,
          token,
          username: me.username,
          ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
        });
        print(
          Boolean(opts.json),
          { gateway, username: me.username, roles: me.roles, expiresAt: expiresAt?.toISOString() },
          () => `signed in to ${gateway} as ${me.username} (${me.roles.join(', ') || 'no roles'})`,
        );
      },
    );

  program
    .command('logout')
    .description('forget the saved sign-in')
    .action(() => {
      const had = readSession(env);
      clearSession(env);
      io.out(had ? `signed out of ${had.gateway}` : 'not signed in');
    });

  program
    .command('whoami')
    .description('show who the gateway thinks you are')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('--json', 'machine-readable output')
    .action(async (opts: { gateway?: string; json?: boolean }) => {
      const me = await client(opts.gateway).me();
      print(Boolean(opts.json), me, () =>
        [
          `user:    ${me.username}${me.name ? ` (${me.name})` : ''}`,
          `kind:    ${me.kind}`,
          `groups:  ${me.groups.join(', ')}`,
          `roles:   ${me.roles.join(', ')}`,
          `expires: ${me.tokenExpiresAt}`,
        ].join('\n'),
      );
    });

  program
    .command('targets')
    .description('list the targets you can see, with your access state')
    .option('-g, --gateway <url>', 'gateway URL')
    .option('-l, --label <key=value...>', 'only targets with these labels')
    .option('--json', 'machine-readable output')
    .action(async (opts: { gateway?: string; label?: string[]; json?: boolean }) => {
      const wanted = (opts.label ?? []).map((l) => {
        const i = l.indexOf('=');
        if (i < 1) throw new Error(`--label ${l}: expected key=value`);
        return [l.slice(0, i), l.slice(i + 1)] as const;
      });
      const list = (await client(opts.gateway).targets()).filter((t) =>
        wanted.every(([k, v]) => t.labels[k] === v),
      );
      print(Boolean(opts.json), list, () =>
        table(
          list.map((t) => ({
            id: t.id,
            kind: t.kind,
            name: t.name,
            labels: Object.entries(t.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
            access: t.access.state + (t.access.expiresAt ? ` until ${t.access.expiresAt}` : ''),
          })),
          ['id', 'kind', 'name', 'labels', 'access'],
        ),
      );
    });
}
