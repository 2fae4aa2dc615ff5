import {
  CredentialInput,
  Labels,
  PostgresTargetSpec,
  SshTargetSpec,
  tlsCaProblem,
} from '@sallyport/protocol';
import { z } from 'zod';
import { DETECTOR_IDS, MaskingConfigSchema } from '../masking';
import { WebhookConfig } from '../notify/webhooks';
import { AccessConfig, TargetSelector } from '../policy/rules';
import { DEFAULT_SQL_RULES, SqlRuleSchema } from '../protocols/postgres/guard/rules';
import { sqlKindProblem, sqlTagProblem } from '../protocols/postgres/guard/vocabulary';
import { DEFAULT_SHELL_RULES, ShellRuleSchema } from '../protocols/ssh/guard/rules';

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
  PostgresTargetSpec.extend({
    credential: ConfigCredential.optional(),
    tlsCaFile: z
      .string()
      .min(1)
      .optional()
      .describe('Path of a PEM file holding `tlsCa` (relative to this file). Give one of tlsCa, tlsCaFile.'),
  }).strict(),
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

/**
 * Guardrail rules from the config: the rule shapes of the guards (protocols/…/guard/rules.ts),
 * strict (a misspelt key is an error, not a rule that silently matches more), plus a scope.
 * Which rules a session gets is decided in policy/guardrails.ts.
 */
const GuardRuleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63 characters')
  .describe(
    'Unique among the rules of its kind, built-in ones included. Named in verdicts, reviews and the ledger.',
  );

const guardScope = (levels: readonly [string, ...string[]]) => ({
  targets: TargetSelector.optional().describe(
    'Only these targets: `ids`, or `labels` (all must match, `*` matches any value). Default: every target of the kind.',
  ),
  levels: z
    .array(z.enum(levels))
    .min(1)
    .optional()
    .describe(`Only sessions at these access levels (${levels.join(', ')}). Default: every level.`),
});

/**
 * A word the guard would never see (a misspelt statement kind or tag) is an error at load, not a
 * rule that silently never matches. `problem` says why, with a suggestion.
 */
const known = (problem: (value: string) => string | undefined) => (value: string, ctx: z.RefinementCtx) => {
  const message = value === '' ? undefined : problem(value); // '' is min(1)'s to report
  if (message !== undefined) ctx.addIssue({ code: 'custom', message });
};

const sqlMatch = SqlRuleSchema.shape.match.shape;
const SqlGuardRule = z
  .object({
    name: GuardRuleName,
    action: SqlRuleSchema.shape.action.describe(
      '`block`: nothing in the batch runs. `review`: the batch waits for an approver, then runs exactly as held.',
    ),
    message: z.string().min(1).optional().describe('Shown to the user and to approvers.'),
    explain: z
      .boolean()
      .optional()
      .describe('Show approvers PostgreSQL’s EXPLAIN row estimate for the batch’s DML statements.'),
    match: z
      .object({
        kinds: z
          .array(z.string().min(1).superRefine(known(sqlKindProblem)))
          .optional()
          .describe(
            'Statement node names (`DeleteStmt`, `UpdateStmt`, …), also when nested (a DELETE in a CTE). Checked at load: an unknown kind is an error.',
          ),
        tags: z
          .array(z.string().min(1).superRefine(known(sqlTagProblem)))
          .optional()
          .describe(
            'Derived tags, `*` wildcard: `delete-without-where`, `do-block`, `language:*`, … (docs/guardrails-sql.md). Checked at load: an unknown tag, or a pattern no tag can match, is an error.',
          ),
        functions: z
          .array(z.string().min(1))
          .optional()
          .describe('Called functions, `*` wildcard, schema optional: `pg_read_file`, `dblink*`.'),
        relations: z
          .array(z.string().min(1))
          .optional()
          .describe('Tables touched: `schema.table`, `table`, `schema.*`.'),
      } satisfies { [K in keyof typeof sqlMatch]: z.ZodType })
      .strict()
      .describe(
        'Every criterion given must match (any value within one); no criterion matches every statement.',
      ),
    ...guardScope(['read', 'write', 'admin']),
  })
  .strict();

const shellMatch = ShellRuleSchema.shape.match.shape;
const ShellGuardRule = z
  .object({
    name: GuardRuleName,
    action: ShellRuleSchema.shape.action.describe(
      '`block`: the line or command never reaches the target. `review`: it waits for an approver.',
    ),
    message: z.string().min(1).optional().describe('Shown to the user and to approvers.'),
    match: z
      .object({
        commands: shellMatch.commands.describe(
          'Command names, `*` wildcard; matched on the basename unless the pattern has a `/`.',
        ),
        args: shellMatch.args.describe(
          'One regular expression, tested on the arguments joined by spaces after quote removal (checked at load: at most 512 characters, no nested unbounded quantifiers).',
        ),
        constructs: shellMatch.constructs.describe(
          'Constructs, `*` wildcard: `pipe-to-shell`, `shell-c`, `eval`, `sudo`, `redirect-to-file:/etc/*`, … (docs/guardrails-shell.md).',
        ),
      } satisfies { [K in keyof typeof shellMatch]: z.ZodType })
      .strict()
      .describe(
        'Every criterion given must match (any value within a list); no criterion matches every command.',
      ),
    ...guardScope(['shell', 'exec-only']),
  })
  .strict();

/** The row cap when the config names none (the same as the session's own default). */
const DEFAULT_SQL_MAX_ROWS = 10_000;

const Guardrails = z
  .object({
    sql: z
      .object({
        builtins: z
          .boolean()
          .default(true)
          .describe(
            'The built-in SQL rules (docs/guardrails-sql.md) apply to every PostgreSQL target. `false` leaves only the rules below (and the read-level enforcement).',
          ),
        rules: z
          .array(SqlGuardRule)
          .default([])
          .describe(
            'Extra SQL rules, after the built-in ones. A batch gets the strictest action of any rule in effect.',
          ),
        maxRows: z
          .number()
          .int()
          .min(1)
          .max(10_000_000)
          .default(DEFAULT_SQL_MAX_ROWS)
          .describe('Most rows one statement sends to the client; the rest is not read (`done.truncated`).'),
      })
      .strict()
      .default({ builtins: true, rules: [], maxRows: DEFAULT_SQL_MAX_ROWS }),
    shell: z
      .object({
        builtins: z
          .boolean()
          .default(true)
          .describe(
            'The built-in shell rules (docs/guardrails-shell.md) apply to every SSH target. `false` leaves only the rules below; a session with no rule in effect is not filtered at all.',
          ),
        rules: z
          .array(ShellGuardRule)
          .default([])
          .describe('Extra shell rules, after the built-in ones, for exec commands and interactive lines.'),
      })
      .strict()
      .default({ builtins: true, rules: [] }),
  })
  .strict()
  .describe(
    'Guardrails: rules that block or hold for review SQL batches and shell commands before they reach a target. Rules apply per target (ids or labels) and access level; see docs/guardrails-sql.md and docs/guardrails-shell.md.',
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
    guardrails: Guardrails.default({
      sql: { builtins: true, rules: [], maxRows: DEFAULT_SQL_MAX_ROWS },
      shell: { builtins: true, rules: [] },
    }),
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
      if (t.kind === 'postgres') {
        if (t.tlsCa !== undefined && t.tlsCaFile !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'tlsCaFile'],
            message: 'give only one of tlsCa, tlsCaFile',
          });
        }
        const given =
          t.tlsCaFile !== undefined
            ? ({ field: 'tlsCaFile', value: t.tlsCaFile } as const)
            : ({ field: 'tlsCa', value: t.tlsCa } as const);
        const problem = tlsCaProblem(t, given);
        if (problem) ctx.addIssue({ code: 'custom', path: ['targets', i, given.field], message: problem });
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
    // Rule names identify a rule in verdicts, reviews and the ledger: one name, one rule.
    const guardKinds = [
      ['sql', cfg.guardrails.sql, DEFAULT_SQL_RULES],
      ['shell', cfg.guardrails.shell, DEFAULT_SHELL_RULES],
    ] as const;
    for (const [kind, section, builtins] of guardKinds) {
      const builtinNames = new Set(section.builtins ? builtins.map((r) => r.name) : []);
      const names = new Map<string, number>();
      section.rules.forEach((r, i) => {
        const first = names.get(r.name);
        const path = ['guardrails', kind, 'rules', i, 'name'];
        if (first !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path,
            message: `duplicate rule name "${r.name}" (also guardrails.${kind}.rules[${first}])`,
          });
        } else if (builtinNames.has(r.name)) {
          ctx.addIssue({
            code: 'custom',
            path,
            message: `"${r.name}" is the name of a built-in ${kind} rule: choose another name (or set guardrails.${kind}.builtins: false)`,
          });
        } else names.set(r.name, i);
      });
    }
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
