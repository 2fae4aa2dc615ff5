/**
 * Opens the gateway's own SSH connection to a target: the stored credential,
 * and the target's pinned host key as the only key accepted. Failures come out
 * as an `SshConnectError` with a stable code; none of them, nor any log line
 * or audit event written here, ever carries the credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';
import type { ActorKind, Ledger } from '../../audit';
import type { TargetCredential, TargetRecord } from '../../targets/repository';

export type SshConnectErrorCode =
  | 'host_key_mismatch'
  | 'auth_failed'
  | 'target_unreachable'
  | 'no_credential'
  | 'ssh_error'
  | 'aborted';

export class SshConnectError extends Error {
  constructor(
    readonly code: SshConnectErrorCode,
    message: string,
    readonly details: { presentedFingerprint?: string; expectedFingerprint?: string } = {},
  ) {
    super(message);
    this.name = 'SshConnectError';
  }
}

export type SshTarget = Pick<TargetRecord, 'id' | 'host' | 'port' | 'user_name' | 'host_key'>;

export interface ConnectSshOptions {
  target: SshTarget;
  credential: TargetCredential | undefined;
  ledger: Ledger;
  /** Who the connection is for: the audit events name them. */
  actor: { username: string; kind: ActorKind };
  /** Context for the audit events (grant, session). */
  context?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Aborting ends the attempt (the session was closed while connecting). */
  signal?: AbortSignal;
}

export const READY_TIMEOUT_MS = 10_000;

/** A pinned OpenSSH public key line `type base64 [comment]`, decoded. */
export interface PinnedKey {
  /** The key type inside the blob (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …). */
  type: string;
  blob: Buffer;
  fingerprint: string;
}

export const fingerprintOf = (blob: Buffer) =>
  `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

/** Parses a pinned host key line; throws on anything that is not a well-formed key. */
export function parsePinnedKey(line: string): PinnedKey {
  const [declared, b64] = line.trim().split(/\s+/);
  if (!declared || !b64 || !/^[A-Za-z0-9+/]+={0,3}$/.test(b64))
    throw new Error('not an OpenSSH public key line');
  const blob = Buffer.from(b64, 'base64');
  // The blob starts with its own type as an SSH string: uint32 length, then the name.
  if (blob.length < 4) throw new Error('public key blob too short');
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) throw new Error('public key blob is malformed');
  const type = blob.subarray(4, 4 + len).toString('latin1');
  const family = (t: string) => (t === 'ssh-rsa' || t.startsWith('rsa-sha2-') ? 'rsa' : t);
  if (family(type) !== family(declared)) throw new Error(`key line says ${declared} but the key is ${type}`);
  return { type, blob, fingerprint: fingerprintOf(blob) };
}

/** Host key algorithms to offer so the server presents the pinned key's type. */
function hostKeyAlgorithms(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [type];
}

/** Constant-time comparison of the presented key blob with the pinned one. */
export function sameKey(presented: Buffer, pinned: Buffer): boolean {
  if (presented.length !== pinned.length) {
    // Still spend the comparison, against itself, so timing says nothing about where they differ.
    timingSafeEqual(pinned, pinned);
    return false;
  }
  return timingSafeEqual(presented, pinned);
}

/** Removes any fragment of the credential from text (belt and braces: ssh2 messages never carry it). */
function scrub(text: string, credential: TargetCredential | undefined): string {
  let out = text;
  const parts = [
    credential?.password,
    credential?.passphrase,
    ...(credential?.privateKey?.split('\n') ?? []),
  ];
  for (const p of parts) {
    const s = p?.trim();
    if (s && s.length >= 6 && !s.startsWith('-----')) out = out.split(s).join('[redacted]');
  }
  return out;
}

export async function connectSsh(opts: ConnectSshOptions): Promise<Client> {
  const { target, credential, ledger, actor } = opts;
  const where = `${target.user_name}@${target.host}:${target.port}`;
  const audit = async (kind: string, data: Record<string, unknown>) => {
    await ledger
      .append({
        kind,
        actor: actor.username,
        actorKind: actor.kind,
        targetId: target.id,
        data: { ...opts.context, ...data },
      })
      .catch(() => {
        // The connection is refused either way; a ledger failure must not turn into a different error.
      });
  };
  const fail = async (err: SshConnectError) => {
    if (err.code === 'host_key_mismatch') {
      await audit('ssh.host_key_mismatch', {
        host: target.host,
        port: target.port,
        expectedFingerprint: err.details.expectedFingerprint,
        presentedFingerprint: err.details.presentedFingerprint,
      });
    } else if (err.code !== 'aborted') {
      await audit('ssh.connect_failed', {
        host: target.host,
        port: target.port,
        code: err.code,
        message: err.message,
      });
    }
    return err;
  };

  if (!target.host_key)
    throw await fail(new SshConnectError('ssh_error', `target ${target.id} has no pinned host key`));
  let pinned: PinnedKey;
  try {
    pinned = parsePinnedKey(target.host_key);
  } catch (err) {
    throw await fail(
      new SshConnectError(
        'ssh_error',
        `the pinned host key of ${target.id} is unusable: ${(err as Error).message}`,
      ),
    );
  }
  if (!credential || (!credential.privateKey && !credential.password)) {
    throw await fail(
      new SshConnectError('no_credential', `the gateway holds no credential for ${target.id}`),
    );
  }
  if (opts.signal?.aborted) throw new SshConnectError('aborted', 'the session was closed while connecting');

  let presented: string | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user_name,
    readyTimeout: opts.readyTimeoutMs ?? READY_TIMEOUT_MS,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 3,
    algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) as never },
    hostVerifier: (key: Buffer) => {
      if (sameKey(key, pinned.blob)) return true;
      presented = fingerprintOf(key);
      return false;
    },
    ...(credential.privateKey ? { privateKey: credential.privateKey } : {}),
    ...(credential.passphrase ? { passphrase: credential.passphrase } : {}),
    ...(credential.password ? { password: credential.password } : {}),
  };

  const client = new Client();
  const outcome = await new Promise<Client | SshConnectError>((resolve) => {
    let settled = false;
    const settle = (v: Client | SshConnectError) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (v instanceof SshConnectError) {
        client.removeAllListeners('ready');
        client.end();
      }
      resolve(v);
    };
    const onAbort = () => settle(new SshConnectError('aborted', 'the session was closed while connecting'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => settle(client));
    client.on('error', (err: Error & { level?: string }) => {
      if (presented !== undefined) {
        return settle(
          new SshConnectError(
            'host_key_mismatch',
            `the host key of ${target.id} (${target.host}:${target.port}) is ${presented}, not the pinned ${pinned.fingerprint}: refusing to connect (the target may have been reinstalled, or someone is in the middle)`,
            { presentedFingerprint: presented, expectedFingerprint: pinned.fingerprint },
          ),
        );
      }
      if (err.level === 'client-authentication') {
        return settle(
          new SshConnectError('auth_failed', `${where} refused the gateway's credential for ${target.id}`),
        );
      }
      if (err.level === 'client-socket' || err.level === 'client-timeout') {
        const why =
          err.level === 'client-timeout' ? 'no SSH handshake in time' : scrub(err.message, credential);
        return settle(
          new SshConnectError(
            'target_unreachable',
            `cannot reach ${target.id} at ${target.host}:${target.port} (${why})`,
          ),
        );
      }
      settle(
        new SshConnectError('ssh_error', `SSH to ${target.id} failed: ${scrub(err.message, credential)}`),
      );
    });
    client.once('close', () =>
      settle(
        new SshConnectError(
          'target_unreachable',
          `${target.host}:${target.port} closed the connection during the SSH handshake`,
        ),
      ),
    );
    try {
      client.connect(config);
    } catch {
      // ssh2 throws synchronously when the private key cannot be parsed (or the passphrase is wrong).
      settle(
        new SshConnectError(
          'auth_failed',
          `the stored credential for ${target.id} is not a usable private key (or its passphrase is wrong)`,
        ),
      );
    }
  });
  if (outcome instanceof SshConnectError) throw await fail(outcome);
  return outcome;
}
