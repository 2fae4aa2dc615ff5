import { createGatewayClient, GatewayError } from '@sallyport/protocol';

/**
 * The gateway client of the web console. The console is served by the gateway,
 * so every call is same-origin and authenticated by the HttpOnly session cookie
 * the gateway set at sign-in: the page never sees a token.
 */
const sameOriginFetch: typeof fetch = (input, init) => fetch(input, { ...init, credentials: 'same-origin' });

export const gateway = createGatewayClient({ baseUrl: window.location.origin, fetch: sameOriginFetch });

/** Where the sign-in link points: the gateway runs the OAuth flow and comes back to `/`. */
export const SIGN_IN_PATH = '/auth/login';

/** Ends the gateway session (the cookie is HttpOnly, so only the gateway can clear it). */
export async function signOut(): Promise<void> {
  const res = await sameOriginFetch('/auth/logout', { method: 'POST' });
  if (!res.ok && res.status !== 401) throw new GatewayError(res.status, 'sign_out_failed', 'sign-out failed');
}

export function messageOf(err: unknown): string {
  if (err instanceof GatewayError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A 401 means there is no (longer a) session: the console shows the sign-in screen. */
export const isUnauthenticated = (err: unknown): boolean => err instanceof GatewayError && err.status === 401;
