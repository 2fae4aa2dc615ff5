import { z } from 'zod';
import { isLoopbackHost } from '../config/schema';

/**
 * Client-credentials sign-in for CI. Written with fetch rather than
 * openid-client because the only insecure case we accept (plain http) is a
 * loopback issuer in development, and this keeps that rule in one place
 * instead of a library-wide "allow insecure" switch.
 */
const Discovery = z.object({ issuer: z.string(), token_endpoint: z.string() });
const TokenResponse = z.object({
  access_token: z.string(),
  expires_in: z.number().optional(),
  token_type: z.string(),
});

function assertSecureUrl(raw: string, what: string): URL {
  const u = new URL(raw);
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname.replace(/^\[|\]$/g, ''))) return u;
  throw new Error(`${what} ${raw} is not https (plain http is accepted only on loopback)`);
}

export async function clientCredentialsToken(opts: {
  issuer: string;
  clientId: string;
  clientSecret: string;
  audience?: string;
}): Promise<{ accessToken: string; expiresAt?: Date }> {
  const issuer = assertSecureUrl(opts.issuer, 'issuer');
  const discoveryUrl = `${issuer.href.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const dres = await fetch(discoveryUrl).catch((e: Error) => {
    throw new Error(`cannot reach the identity provider at ${issuer.href}: ${e.message}`);
  });
  if (!dres.ok) throw new Error(`identity provider discovery failed: ${dres.status} from ${discoveryUrl}`);
  const meta = Discovery.parse(await dres.json());
  const tokenUrl = assertSecureUrl(meta.token_endpoint, 'token endpoint');
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(opts.clientId)}:${encodeURIComponent(opts.clientSecret)}`).toString('base64')}`,
    },
    body,
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const reason =
      typeof json.error_description === 'string'
        ? json.error_description
        : typeof json.error === 'string'
          ? json.error
          : res.statusText;
    throw new Error(`the identity provider refused the client credentials: ${reason}`);
  }
  const tok = TokenResponse.parse(json);
  return {
    accessToken: tok.access_token,
    ...(tok.expires_in ? { expiresAt: new Date(Date.now() + tok.expires_in * 1000) } : {}),
  };
}
