/**
 * `sallyport://` links (from chat messages, e-mails, the CLI): three shapes, parsed
 * strictly. A deep link arrives from anywhere on the machine, so it is matched
 * against an exact grammar on the raw string (no URL parser leniency: no
 * percent-decoding, no backslashes, no credentials, ports, queries or fragments)
 * and only ever becomes an in-app path; it never reaches a shell, a file or a URL
 * the window loads as-is.
 *
 *   sallyport://targets/<target id>      a target slug (`orders-db`)
 *   sallyport://requests/<request id>    a UUID
 *   sallyport://recordings/<session id>  a UUID
 */
export const DEEP_LINK_SCHEME = 'sallyport';

export type DeepLinkKind = 'target' | 'request' | 'recording';

export interface DeepLink {
  kind: DeepLinkKind;
  id: string;
  /** The in-app path the window shows for it, e.g. `/targets/orders-db`. */
  path: string;
}

export type DeepLinkResult = { ok: true; link: DeepLink } | { ok: false; reason: string };

const MAX_LENGTH = 256;
const TARGET_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const KINDS: Record<string, { kind: DeepLinkKind; id: RegExp; what: string }> = {
  targets: { kind: 'target', id: TARGET_ID, what: 'a target id (lowercase letters, digits, dashes)' },
  requests: { kind: 'request', id: UUID, what: 'a request id (UUID)' },
  recordings: { kind: 'recording', id: UUID, what: 'a recording id (UUID)' },
};

const fail = (reason: string): DeepLinkResult => ({ ok: false, reason });

export function parseDeepLink(raw: unknown): DeepLinkResult {
  if (typeof raw !== 'string') return fail('a deep link must be a string');
  if (raw.length > MAX_LENGTH) return fail(`a deep link is at most ${MAX_LENGTH} characters`);
  // Printable ASCII only: no spaces, controls, or look-alike Unicode.
  if (!/^[\x21-\x7e]*$/.test(raw)) return fail('a deep link may contain printable ASCII only');
  const prefix = `${DEEP_LINK_SCHEME}://`;
  if (raw.slice(0, prefix.length).toLowerCase() !== prefix) return fail(`not a ${DEEP_LINK_SCHEME}:// link`);
  const rest = raw.slice(prefix.length);
  if (/[?#]/.test(rest)) return fail('a deep link has no query or fragment');
  if (/[@:\\%]/.test(rest)) return fail('a deep link has no credentials, port, backslash or escapes');
  // Some platforms append a slash (`sallyport://targets/x/`); one is tolerated.
  const parts = rest.replace(/\/$/, '').split('/');
  if (parts.length !== 2) return fail('expected sallyport://<targets|requests|recordings>/<id>');
  const [section = '', id = ''] = parts;
  const spec = Object.hasOwn(KINDS, section) ? KINDS[section] : undefined;
  if (!spec) return fail(`unknown deep link '${section}': expected targets, requests or recordings`);
  if (!spec.id.test(id)) return fail(`'${id}' is not ${spec.what}`);
  return { ok: true, link: { kind: spec.kind, id, path: `/${section}/${id}` } };
}

/**
 * On Windows and Linux a link opened while the app runs arrives as a command-line
 * argument of the second instance. Returns the first argument that is a
 * `sallyport:` link (valid or not: the caller reports an invalid one).
 */
export function deepLinkFromArgv(argv: readonly string[]): DeepLinkResult | undefined {
  const arg = argv.find(
    (a) => a.slice(0, DEEP_LINK_SCHEME.length + 1).toLowerCase() === `${DEEP_LINK_SCHEME}:`,
  );
  return arg === undefined ? undefined : parseDeepLink(arg);
}
