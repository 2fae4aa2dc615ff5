// Bearer token validation against an OIDC provider's JWKS (jose).
// Fails closed: until discovery succeeded every token is rejected with `provider_unavailable`.

import { isIP } from 'node:net';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';

/** True for 127.0.0.0/8, ::1 (and its IPv4-mapped forms) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped?.[1]?.startsWith('127.') === true;
  }
  return false;
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  /** Default ['RS256', 'ES256', 'PS256', 'EdDSA']; 'none' and HS* are never accepted. */
  algorithms?: string[];
  /** Default 'groups'; dotted paths allowed, e.g. 'realm_access.roles'. */
  groupsClaim?: string;
  /** Default 30. */
  clockToleranceSeconds?: number;
  /** Default: `jwks_uri` from discovery. */
  jwksUri?: string;
  /** Allow `http:` issuer / JWKS URLs on non-loopback hosts. */
  allowInsecureHttp?: boolean;
  /** Discovery retry backoff: first delay (default 500 ms), doubling up to maxMs (default 30 000 ms). */
  retry?: { initialMs?: number; maxMs?: number };
}

export type TokenRejection =
  | 'missing'
  | 'malformed'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'bad_algorithm'
  | 'bad_signature'
  | 'unknown_key'
  | 'provider_unavailable';

export class TokenError extends Error {
  readonly code: TokenRejection;
  constructor(code: TokenRejection, message?: string, options?: { cause?: unknown }) {
    super(message ?? code, options);
    this.name = 'TokenError';
    this.code = code;
  }
}

export interface Principal {
  subject: string;
  username: string;
  name?: string;
  email?: string;
  groups: string[];
  kind: 'user' | 'service';
  tokenExpiresAt: Date;
}

export interface TokenVerifier {
  verify(authorizationHeader: string | undefined): Promise<Principal>;
  ready(): Promise<void>;
}

export interface VerifierLog {
  warn(o: object, m: string): void;
  info?(o: object, m: string): void;
}

export const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'];

const defaultLog: VerifierLog = {
  warn: (o, m) => console.warn(m, o),
};

/** Marks a failure to fetch the JWKS (network, HTTP status, bad JSON) inside the key resolver. */
class JwksFetchError extends Error {
  constructor(cause: unknown) {
    super(`JWKS unavailable: ${describe(cause)}`, { cause });
    this.name = 'JwksFetchError';
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const inner = cause instanceof Error ? ` (${cause.message})` : '';
    return `${err.message}${inner}`;
  }
  return String(err);
}

function assertTransportAllowed(what: string, raw: string, allowInsecureHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${what} '${raw}' is not a valid URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:') {
    if (allowInsecureHttp || isLoopbackHost(url.hostname)) return url;
    throw new Error(
      `${what} '${raw}' uses plain http on a non-loopback host; use https or set allowInsecureHttp explicitly`,
    );
  }
  throw new Error(`${what} '${raw}' must be an https URL`);
}

function claimAt(payload: JWTPayload, path: string): unknown {
  if (path in payload) return payload[path];
  let cur: unknown = payload;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function groupsFrom(value: unknown): string[] {
  if (typeof value === 'string') return value ? [value] : [];
  if (!Array.isArray(value)) return [];
  return value.filter((g): g is string => typeof g === 'string' && g.length > 0);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Maps any error thrown by jwtVerify (or our key resolver) to a rejection code. */
export function rejectionFor(err: unknown): TokenRejection {
  if (err instanceof TokenError) return err.code;
  if (err instanceof JwksFetchError) return 'provider_unavailable';
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: unknown }).claim;
      if (claim === 'nbf') return 'not_yet_valid';
      if (claim === 'iat') return 'not_yet_valid';
      if (claim === 'iss') return 'wrong_issuer';
      if (claim === 'aud') return 'wrong_audience';
      return 'malformed';
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'bad_algorithm';
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'bad_algorithm';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown_key';
    case 'ERR_JWKS_TIMEOUT':
      return 'provider_unavailable';
    default:
      return 'malformed';
  }
}

interface Discovered {
  jwks: JWTVerifyGetKey;
}

export async function createTokenVerifier(
  opts: VerifierOptions,
  log: VerifierLog = defaultLog,
): Promise<TokenVerifier> {
  const allowInsecureHttp = opts.allowInsecureHttp ?? false;
  assertTransportAllowed('issuer', opts.issuer, allowInsecureHttp);
  if (!opts.audience) throw new Error('audience is required');
  const algorithms = opts.algorithms ?? DEFAULT_ALGORITHMS;
  const forbidden = algorithms.filter((a) => a.toLowerCase() === 'none' || a.toUpperCase().startsWith('HS'));
  if (forbidden.length > 0) throw new Error(`algorithms ${forbidden.join(', ')} are never accepted`);
  if (algorithms.length === 0) throw new Error('at least one algorithm must be allowed');
  const groupsClaim = opts.groupsClaim ?? 'groups';
  const clockTolerance = opts.clockToleranceSeconds ?? 30;
  const initialDelay = opts.retry?.initialMs ?? 500;
  const maxDelay = opts.retry?.maxMs ?? 30_000;
  const issuer = opts.issuer;

  const makeKeyResolver = (jwksUrl: URL): JWTVerifyGetKey => {
    const remote = createRemoteJWKSet(jwksUrl, { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    return async (header, token) => {
      try {
        return await remote(header, token);
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        if (
          code === 'ERR_JWKS_NO_MATCHING_KEY' ||
          code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' ||
          code === 'ERR_JOSE_NOT_SUPPORTED' ||
          code === 'ERR_JOSE_ALG_NOT_ALLOWED'
        ) {
          throw err;
        }
        // Network failure, timeout, non-200 or unparsable JWKS: the provider is not usable right now.
        throw new JwksFetchError(err);
      }
    };
  };

  async function discover(): Promise<Discovered> {
    if (opts.jwksUri) {
      return { jwks: makeKeyResolver(assertTransportAllowed('jwksUri', opts.jwksUri, allowInsecureHttp)) };
    }
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 200) throw new Error(`discovery returned HTTP ${res.status}`);
    const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (meta.issuer !== issuer) {
      throw new Error(
        `discovery document issuer '${String(meta.issuer)}' does not match configured '${issuer}'`,
      );
    }
    if (typeof meta.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    return { jwks: makeKeyResolver(assertTransportAllowed('jwks_uri', meta.jwks_uri, allowInsecureHttp)) };
  }

  let discovered: Discovered | undefined;
  let resolveReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });

  let delay = initialDelay;
  let failures = 0;
  const attempt = async (): Promise<void> => {
    try {
      discovered = await discover();
      if (failures > 0)
        log.info?.({ issuer, attempts: failures + 1 }, `identity provider ${issuer} reachable`);
      resolveReady();
    } catch (err) {
      failures += 1;
      const reason = describe(err);
      log.warn(
        { issuer, attempt: failures, retryInMs: delay, reason },
        `identity provider ${issuer} unreachable: ${reason}; retrying`,
      );
      const timer = setTimeout(() => void attempt(), delay);
      timer.unref();
      delay = Math.min(delay * 2, maxDelay);
    }
  };
  await attempt();

  async function verify(authorizationHeader: string | undefined): Promise<Principal> {
    const header = authorizationHeader?.trim();
    if (!header) throw new TokenError('missing', 'no Authorization header');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw new TokenError('malformed', 'Authorization header is not a Bearer token');
    const token = match[1];
    if (!discovered)
      throw new TokenError('provider_unavailable', `identity provider ${issuer} not reachable yet`);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, discovered.jwks, {
        issuer,
        audience: opts.audience,
        algorithms,
        clockTolerance,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      const code = rejectionFor(err);
      throw new TokenError(code, `token rejected (${code}): ${describe(err)}`, { cause: err });
    }

    const subject = str(payload.sub);
    if (!subject || typeof payload.exp !== 'number')
      throw new TokenError('malformed', 'token lacks sub or exp');
    const clientId = str(payload.client_id) ?? str(payload.azp);
    const preferred = str(payload.preferred_username);
    const kind: Principal['kind'] = clientId !== undefined && subject === clientId ? 'service' : 'user';
    const name = str(payload.name);
    const email = str(payload.email);
    const principal: Principal = {
      subject,
      username: preferred ?? (kind === 'service' ? (clientId ?? subject) : (email ?? subject)),
      groups: groupsFrom(claimAt(payload, groupsClaim)),
      kind,
      tokenExpiresAt: new Date(payload.exp * 1000),
    };
    if (name) principal.name = name;
    if (email) principal.email = email;
    return principal;
  }

  return {
    verify,
    ready: () => readyPromise,
  };
}
