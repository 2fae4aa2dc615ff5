/**
 * Where the desktop window may go. Pure logic, tested under Node; the Electron
 * layer only wires it to `will-navigate` and `setWindowOpenHandler`.
 */
export function isSameOrigin(url: string, allowedOrigin: string): boolean {
  try {
    return new URL(url).origin === new URL(allowedOrigin).origin;
  } catch {
    return false;
  }
}

/** Links the user clicks that leave the app open in the system browser, but only http(s). */
export function externalOpenable(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Chromium switches for the BrowserWindow: the renderer gets no Node, no Electron, no remote content. */
export const secureWebPreferences = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  webviewTag: false,
  spellcheck: false,
} as const;

/** `ws:`/`wss:` URLs belong to the `http:`/`https:` origin of the same host and port. */
function httpOrigin(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol === 'ws:') u.protocol = 'http:';
    else if (u.protocol === 'wss:') u.protocol = 'https:';
    else if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/**
 * Every network request the window's session makes: only the app's own origin
 * (HTTP and WebSocket). No remote content, no third-party fonts, no beacons.
 */
export function requestAllowed(url: string, appOrigin: string): boolean {
  if (url.startsWith('data:') || url.startsWith('blob:') || url.startsWith('devtools:')) return true;
  const o = httpOrigin(url);
  return o !== undefined && o === new URL(appOrigin).origin;
}

export type NavigationDecision = 'allow' | 'sign-in' | 'deny';

/**
 * Where the top-level document may navigate. The console's own "Sign in" link
 * (`/auth/login`, the web console's server-side flow) becomes the desktop sign-in in
 * the system browser instead; every other `/auth/` page and every other origin is
 * refused.
 */
export function navigationDecision(url: string, appOrigin: string): NavigationDecision {
  if (!isSameOrigin(url, appOrigin)) return 'deny';
  const { pathname } = new URL(url);
  if (pathname === '/auth/login') return 'sign-in';
  if (pathname === '/auth' || pathname.startsWith('/auth/')) return 'deny';
  return 'allow';
}

/**
 * The Content-Security-Policy the desktop window enforces on the app's own pages
 * (set on the response headers by the session, replacing the gateway's). Scripts
 * and styles from the app only, no inline script, no eval, no frames, no objects,
 * network access to the app's own origin (and its WebSocket) only.
 */
export function desktopCsp(appOrigin: string): string {
  const u = new URL(appOrigin);
  const ws = `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}`;
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ${ws}`,
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "frame-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

/** Replaces any Content-Security-Policy header (whatever its case) with the desktop one. */
export function withDesktopCsp(
  headers: Record<string, string[] | string> | undefined,
  appOrigin: string,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k.toLowerCase() === 'content-security-policy') continue;
    out[k] = Array.isArray(v) ? v : [v];
  }
  out['Content-Security-Policy'] = [desktopCsp(appOrigin)];
  return out;
}

/** The window's API calls and event socket carry the main process's access token; nothing else does. */
export function wantsBearer(url: string, appOrigin: string): boolean {
  if (!requestAllowed(url, appOrigin) || !/^(https?|wss?):/.test(url)) return false;
  const { pathname } = new URL(url);
  return pathname === '/api' || pathname.startsWith('/api/');
}

/** Browser permissions the app's own pages may use: copying (request ids, terminal text) and fullscreen. */
const GRANTABLE = new Set(['clipboard-sanitized-write', 'fullscreen']);

export function permissionAllowed(permission: string, requestingUrl: string, appOrigin: string): boolean {
  return GRANTABLE.has(permission) && isSameOrigin(requestingUrl, appOrigin);
}
