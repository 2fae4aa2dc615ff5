import { CredentialInput, Labels, PostgresTargetSpec, SshTargetSpec } from '@sallyport/protocol';
import { z } from 'zod';
import { DETECTOR_IDS, MaskingConfigSchema } from '../masking';
import { WebhookConfig } from '../notify/webhooks';
import { AccessConfig } from '../policy/rules';

/**
 * The one definition of the gateway's configuration. Validation errors, the
 * defaults and the reference in docs/config.md all come from this file
 * (`npm run docs:config` regenerates the reference; a test fails when it is stale).
 */

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '::1']);
export const isLoopbackHost = (host: string): boolean => loopbackHosts.has(host) || host.startsWith('127.');

const ConfigCredential = CredentialInput.extend({
  privateKeyFile: z.string().min(1).optional().describe('Path of a file holding the private key.'),
})
  .strict()
  .describe(
    'Exactly one of password, privateKey or privateKeyFile. Stored encrypted (AES-256-GCM). ' +
      'Can be set from the environment: SALLYPORT_TARGET_<ID>_PASSWORD / _PRIVATE_KEY (ID upper-cased, dashes as underscores).',
  );

export const TargetConfig = z.discriminatedUnion('kind', [
  SshTargetSpec.extend({ credential: ConfigCredential.optional() }).strict(),
  PostgresTargetSpec.extend({ credential: ConfigCredential.optional() }).strict(),
]);
export type TargetConfig = z.infer<typeof TargetConfig>;

const RoleMapping = z
  .object({
    admin: z.array(z.string()).default(['admins']),
    approver: z.array(z.string()).default(['approvers']),
    developer: z.array(z.string()).default(['developers']),
  })
  .strict()
  .describe('Which identity-provider groups map to which Sallyport role.');

const DevProvider = z
  .object({
    enabled: z.boolean().default(false),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(0).describe('0 picks a free port.'),
    allowNonLoopback: z
      .boolean()
      .default(false)
      .describe(
        'The development provider has demo users with known passwords: it refuses non-loopback addresses unless this is true.',
      ),
  })
  .strict()
  .describe(
    'Built-in development identity provider (oidc-provider) with demo users alice, bob, carol, dave.',
  );

const Identity = z
  .object({
    issuer: z.url().optional().describe('OIDC issuer URL. Required unless devProvider.enabled.'),
    audience: z.string().min(1).default('sallyport').describe('Expected `aud` of access tokens.'),
    algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .default(['RS256', 'ES256', 'PS256', 'EdDSA'])
      .describe('Accepted signing algorithms. `none` and HMAC are never accepted.'),
    groupsClaim: z.string().default('groups').describe('Claim holding the groups; dotted paths allowed.'),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    roles: RoleMapping.default({ admin: ['admins'], approver: ['approvers'], developer: ['developers'] }),
    devProvider: DevProvider.default({ enabled: false, host: '127.0.0.1', port: 0, allowNonLoopback: false }),
    console: z
      .object({
        clientId: z
          .string()
          .min(1)
          .describe('Client id registered at the identity provider for the web console.'),
        clientSecret: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Its client secret (client_secret_basic). Env SALLYPORT_CONSOLE_CLIENT_SECRET takes precedence.',
          ),
      })
      .strict()
      .optional()
      .describe(
        'The web console signs in as this confidential client (authorization code + PKCE, redirect URI ' +
          '`<publicUrl>/auth/callback`). Without it only the development provider enables console sign-in.',
      ),
  })
  .strict();

const Server = z
  .object({
    host: z.string().default('127.0.0.1').describe('Address to listen on.'),
    port: z.number().int().min(0).max(65535).default(8080).describe('0 picks a free port.'),
    publicUrl: z.url().optional().describe('URL users reach the gateway at, if different from host:port.'),
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().optional() })
      .strict()
      .optional()
      .describe('PEM files for HTTPS/WSS. Required on non-loopback addresses unless behindTlsProxy.'),
    behindTlsProxy: z
      .boolean()
      .default(false)
      .describe('Say so explicitly when a load balancer terminates TLS in front of the gateway.'),
  })
  .strict();

const Database = z
  .object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .optional()
      .describe(
        'PostgreSQL server for the store. Without it the embedded PGlite store in dataDir is used. Env: SALLYPORT_DATABASE_URL.',
      ),
    dataDir: z
      .string()
      .default('.sallyport/data')
      .describe('PGlite data directory (relative to the config file).'),
  })
  .strict();

const Secrets = z
  .object({
    masterKeyFile: z
      .string()
      .optional()
      .describe(
        'File holding the 32-byte master key (base64 or hex). Env SALLYPORT_MASTER_KEY takes precedence.',
      ),
  })
  .strict();

const Demo = z
  .object({
    postgres: z
      .boolean()
      .default(false)
      .describe('Start an embedded PostgreSQL with a seeded `customers` table as target `demo-postgres`.'),
    ssh: z.boolean().default(false).describe('Start an OpenSSH sshd (when installed) as target `demo-ssh`.'),
    labels: Labels.default({ env: 'prod' }).describe('Labels of the demo targets.'),
  })
  .strict()
  .describe('Demo targets the gateway starts itself (for `npm start` and trying things out).');

const Notify = z
  .object({
    webhooks: z
      .array(WebhookConfig)
      .default([])
      .describe(
        'Webhooks that receive access notifications (chat, ticketing, SIEM). Deliveries are kept in the store ' +
          'and retried with backoff until they succeed; see docs/webhooks.md.',
      ),
  })
  .strict()
  .describe('Notifications beyond the live push to connected users.');

const Masking = MaskingConfigSchema.extend({
  detectors: MaskingConfigSchema.shape.detectors.describe(
    'Value detectors run on every value, whatever its column (default: all of them).',
  ),
  detectorStrategy: MaskingConfigSchema.shape.detectorStrategy.describe(
    '`partial` keeps the last 4 characters, `full` a fixed marker, `hash` a keyed HMAC (stable, key derived from the master key), `null` SQL NULL.',
  ),
  columns: MaskingConfigSchema.shape.columns.describe(
    "Column rules, first match wins: pattern 'schema.table.column', 'table.column' or 'column' (`*` wildcard) and a strategy. Applied before the detectors.",
  ),
})
  .strict()
  .describe(
    'Masking of values before they leave the gateway (SQL results, and later recordings and terminal output).',
  );

export const GatewayConfig = z
  .object({
    server: Server.default({ host: '127.0.0.1', port: 8080, behindTlsProxy: false }),
    database: Database.default({ dataDir: '.sallyport/data' }),
    secrets: Secrets.default({}),
    identity: Identity,
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    access: AccessConfig.default(() => AccessConfig.parse({})).describe(
      'Access rules and lifecycle timings. Deny by default: without a matching rule nobody gets access.',
    ),
    recording: z
      .object({
        dir: z
          .string()
          .default('.sallyport/recordings')
          .describe('Where session recordings are written (relative to the config file).'),
        flushMs: z
          .number()
          .int()
          .min(50)
          .max(10_000)
          .default(1000)
          .describe('Recordings are flushed to disk at least this often: a crash loses at most this much.'),
        sqlResultRows: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(20)
          .describe('How many (masked) result rows of each SQL statement a recording keeps.'),
      })
      .strict()
      .default({ dir: '.sallyport/recordings', flushMs: 1000, sqlResultRows: 20 })
      .describe(
        'Session recordings: SSH as asciicast v2, SQL as JSON lines; hashed at close, hash in the ledger.',
      ),
    targets: z
      .array(TargetConfig)
      .default([])
      .describe('Targets defined in config (admins can add more through the API).'),
    demo: Demo.default({ postgres: false, ssh: false, labels: { env: 'prod' } }),
    notify: Notify.default({ webhooks: [] }),
    masking: Masking.default({ detectors: [...DETECTOR_IDS], detectorStrategy: 'partial', columns: [] }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.targets.forEach((t, i) => {
      const first = seen.get(t.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'id'],
          message: `duplicate target id "${t.id}" (also targets[${first}])`,
        });
      } else seen.set(t.id, i);
      const c = t.credential;
      if (c) {
        const given = [c.password, c.privateKey, c.privateKeyFile].filter((v) => v !== undefined).length;
        if (given > 1) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'credential'],
            message: 'give only one of password, privateKey, privateKeyFile',
          });
        }
        if (t.kind === 'postgres' && (c.privateKey || c.privateKeyFile)) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'credential'],
            message: 'postgres targets take a password, not a private key',
          });
        }
      }
      if (cfg.demo.postgres && t.id === 'demo-postgres') {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'id'],
          message: '"demo-postgres" is reserved while demo.postgres is on',
        });
      }
      if (cfg.demo.ssh && t.id === 'demo-ssh') {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'id'],
          message: '"demo-ssh" is reserved while demo.ssh is on',
        });
      }
    });
    const ruleNames = new Map<string, number>();
    cfg.access.rules.forEach((r, i) => {
      const first = ruleNames.get(r.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['access', 'rules', i, 'name'],
          message: `duplicate rule name "${r.name}" (also access.rules[${first}])`,
        });
      } else ruleNames.set(r.name, i);
      if (
        r.approval !== 'auto' &&
        r.approval.approvers.users.length === 0 &&
        r.approval.approvers.groups.length === 0
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['access', 'rules', i, 'approval', 'approvers'],
          message: 'name at least one approver user or group',
        });
      }
    });
    const hookNames = new Map<string, number>();
    cfg.notify.webhooks.forEach((w, i) => {
      const first = hookNames.get(w.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['notify', 'webhooks', i, 'name'],
          message: `duplicate webhook name "${w.name}" (also notify.webhooks[${first}])`,
        });
      } else hookNames.set(w.name, i);
    });
    const idp = cfg.identity;
    if (idp.devProvider.enabled && idp.issuer) {
      ctx.addIssue({
        code: 'custom',
        path: ['identity', 'issuer'],
        message: 'set either identity.issuer or identity.devProvider.enabled, not both',
      });
    }
    if (!idp.devProvider.enabled && !idp.issuer) {
      ctx.addIssue({
        code: 'custom',
        path: ['identity', 'issuer'],
        message: 'required (or enable identity.devProvider for development)',
      });
    }
    if (
      idp.devProvider.enabled &&
      !idp.devProvider.allowNonLoopback &&
      !isLoopbackHost(idp.devProvider.host)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['identity', 'devProvider', 'host'],
        message: 'the development provider only binds to loopback unless allowNonLoopback is true',
      });
    }
    const srv = cfg.server;
    if (srv.tls && srv.behindTlsProxy) {
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'behindTlsProxy'],
        message: 'either serve TLS (server.tls) or sit behind a TLS proxy, not both',
      });
    }
    if (!srv.tls && !srv.behindTlsProxy && !isLoopbackHost(srv.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'host'],
        message: 'plain HTTP is only served on loopback: configure server.tls or set server.behindTlsProxy',
      });
    }
  });

export type GatewayConfig = z.infer<typeof GatewayConfig>;
export type GatewayConfigInput = z.input<typeof GatewayConfig>;
