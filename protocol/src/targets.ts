import { z } from 'zod';
import { Labels, TargetId, TargetKind } from './common';

/**
 * A target's definition, shared by the config file and the admin API.
 * Credentials are write-only: they are accepted here and never sent back.
 */
export const CredentialInput = z
  .object({
    password: z.string().min(1).optional().describe('Password the gateway uses to log in to the target.'),
    privateKey: z
      .string()
      .min(1)
      .optional()
      .describe('Private key (OpenSSH or PEM text) the gateway uses to log in to an SSH target.'),
    passphrase: z.string().optional().describe('Passphrase of the private key, if it has one.'),
  })
  .strict();
export type CredentialInput = z.infer<typeof CredentialInput>;

/**
 * One or more PEM certificates (a CA bundle): public material, stored and shown as given. Checked
 * in linear time (a bundle may be 1 MB, and a backtracking pattern over it would stall the
 * gateway): every block must be a certificate, and nothing but whitespace may lie between them.
 */
export const PemCertificates = z
  .string()
  .max(1_000_000, { message: 'at most 1 MB of PEM', abort: true })
  .refine(
    (s) => isPemCertificates(s),
    'PEM certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----), nothing else',
  );

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*)-----END CERTIFICATE-----/g;

function isPemCertificates(s: string): boolean {
  let blocks = 0;
  const rest = s.replace(PEM_BLOCK, (_, body: string) => {
    if (/[A-Za-z0-9+/]/.test(body)) blocks++;
    return '';
  });
  return blocks > 0 && rest.trim() === '';
}

const targetCommon = {
  id: TargetId.describe('Stable id used in URLs, the CLI and policy rules.'),
  name: z.string().min(1).max(200).optional().describe('Display name; defaults to the id.'),
  description: z.string().max(2000).optional(),
  host: z.string().min(1).max(253).describe('Host name or address the gateway connects to.'),
  labels: Labels.default({}).describe(
    'Free-form labels, e.g. `env: prod`, matched by access and guardrail rules.',
  ),
};

export const SshTargetSpec = z.object({
  ...targetCommon,
  kind: z.literal('ssh'),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1).max(64).describe('Login user on the target.'),
  hostKey: z
    .string()
    .regex(
      /^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa|rsa-sha2-\d+) [A-Za-z0-9+/]+={0,3}( .*)?$/,
      'an OpenSSH public key line',
    )
    .describe('Pinned host public key (`ssh-ed25519 AAAA…`). A mismatch refuses the connection.'),
});

export const PostgresTargetSpec = z.object({
  ...targetCommon,
  kind: z.literal('postgres'),
  port: z.number().int().min(1).max(65535).default(5432),
  user: z.string().min(1).max(63).describe('Database role the gateway logs in as.'),
  database: z.string().min(1).max(63).describe('Database name.'),
  tls: z
    .enum(['disable', 'require', 'verify-full'])
    .default('disable')
    .describe(
      'TLS to the database server: `require` encrypts without checking who answers; `verify-full` also checks the certificate chain (against `tlsCa`, or else the CAs Node trusts: its bundled roots plus NODE_EXTRA_CA_CERTS) and that it names `host`.',
    ),
  tlsCa: PemCertificates.optional().describe(
    "PEM certificate(s) of the CA that signs the database server's certificate (a private CA, such as a cloud provider's database CA bundle). Used with `tls: verify-full` only, instead of the CAs Node trusts.",
  ),
});

/**
 * A CA given for a connection that would not use it is a mistake worth saying: with `require` the
 * certificate is not checked at all, so the CA would look like protection it is not.
 */
export function tlsCaProblem(
  t: { kind: string; tls?: string },
  given: { field: 'tlsCa' | 'tlsCaFile'; value: string | undefined },
): string | undefined {
  if (t.kind !== 'postgres' || given.value === undefined || t.tls === 'verify-full') return undefined;
  return `${given.field} is only used with tls: verify-full (this target has tls: ${t.tls ?? 'disable'}, which does not check the server's certificate)`;
}

/** Admin API body for creating or replacing a target. */
export const TargetInput = z
  .discriminatedUnion('kind', [
    SshTargetSpec.extend({ credential: CredentialInput.optional() }).strict(),
    PostgresTargetSpec.extend({ credential: CredentialInput.optional() }).strict(),
  ])
  .superRefine((t, ctx) => {
    const problem = tlsCaProblem(t, { field: 'tlsCa', value: t.kind === 'postgres' ? t.tlsCa : undefined });
    if (problem) ctx.addIssue({ code: 'custom', path: ['tlsCa'], message: problem });
  });
export type TargetInput = z.infer<typeof TargetInput>;

export const AccessState = z.enum(['none', 'pending', 'active', 'expiring']);
export type AccessState = z.infer<typeof AccessState>;

/** What a caller sees of a target: never the credential. */
export const TargetView = z.object({
  id: TargetId,
  kind: TargetKind,
  name: z.string(),
  description: z.string().nullable(),
  host: z.string(),
  port: z.number(),
  user: z.string(),
  database: z.string().nullable(),
  labels: Labels,
  hostKeyFingerprint: z.string().nullable(),
  hasCredential: z.boolean(),
  source: z.enum(['config', 'api', 'demo']),
  access: z.object({
    state: AccessState,
    expiresAt: z.string().optional(),
    requestId: z.string().optional(),
    grantId: z.string().optional(),
  }),
});
export type TargetView = z.infer<typeof TargetView>;

export const TargetList = z.object({ targets: z.array(TargetView) });
export type TargetList = z.infer<typeof TargetList>;
