import { describe, expect, it } from 'vitest';
import { AppPath } from '../../src/common/ipc-contract';
import { deepLinkFromArgv, parseDeepLink } from '../../src/node/deep-link';

const UUID = '0b7c2f1e-5a4d-4c3b-9e8f-1a2b3c4d5e6f';

describe('deep links: the three good shapes', () => {
  it.each([
    ['sallyport://targets/orders-db', 'target', 'orders-db', '/targets/orders-db'],
    [`sallyport://requests/${UUID}`, 'request', UUID, `/requests/${UUID}`],
    [`sallyport://recordings/${UUID}`, 'recording', UUID, `/recordings/${UUID}`],
    ['sallyport://targets/db1/', 'target', 'db1', '/targets/db1'], // Windows appends a slash
    ['SALLYPORT://targets/db1', 'target', 'db1', '/targets/db1'], // schemes are case-insensitive
  ])('%s', (raw, kind, id, path) => {
    const r = parseDeepLink(raw);
    expect(r).toEqual({ ok: true, link: { kind, id, path } });
    // What the window is sent to is always a valid in-app path.
    if (r.ok) expect(AppPath.safeParse(r.link.path).success).toBe(true);
  });
});

describe('deep links: hostile and malformed input is refused with a reason', () => {
  it.each([
    ['https://targets/orders-db', /not a sallyport:\/\/ link/],
    ['sallyport:targets/orders-db', /not a sallyport:\/\/ link/],
    ['javascript:alert(1)//sallyport://targets/x', /not a sallyport/],
    ['sallyport://targets/../../etc/passwd', /expected sallyport/],
    ['sallyport://targets/..', /is not a target id/],
    ['sallyport://targets/%2e%2e', /escapes/],
    ['sallyport://targets/orders-db?next=https://evil.example', /no query/],
    ['sallyport://targets/orders-db#x', /no query or fragment/],
    ['sallyport://user:pw@targets/orders-db', /credentials/],
    ['sallyport://targets:443/orders-db', /port/],
    ['sallyport://targets\\orders-db', /backslash/],
    ['sallyport://targets/Orders-DB', /is not a target id/],
    ['sallyport://targets/-leading-dash', /is not a target id/],
    ['sallyport://targets/orders db', /printable ASCII/],
    ['sallyport://targets/orders\u202edb', /printable ASCII/],
    ['sallyport://targets/orders\ndb', /printable ASCII/],
    ['sallyport://targets/ordérs', /printable ASCII/],
    ['sallyport://targets/', /expected sallyport/],
    ['sallyport://targets', /expected sallyport/],
    ['sallyport://targets/a/b', /expected sallyport/],
    ['sallyport://targets//a', /expected sallyport|is not a target id/],
    ['sallyport://requests/not-a-uuid', /is not a request id \(UUID\)/],
    [`sallyport://requests/${UUID.toUpperCase()}`, /is not a request id/],
    ['sallyport://recordings/orders-db', /is not a recording id/],
    ['sallyport://grants/x', /unknown deep link 'grants'/],
    ['sallyport://__proto__/x', /unknown deep link '__proto__'/],
    ['sallyport://constructor/x', /unknown deep link/],
    ['sallyport://settings/open', /unknown deep link/],
    [`sallyport://targets/${'a'.repeat(300)}`, /at most 256/],
    [`sallyport://targets/${'a'.repeat(64)}`, /is not a target id/],
    ['', /not a sallyport/],
  ])('%j', (raw, reason) => {
    const r = parseDeepLink(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 42, {}, ['sallyport://targets/x']]) {
      expect(parseDeepLink(v).ok).toBe(false);
    }
  });
});

describe('deep links from a second instance command line', () => {
  it('finds the link among the arguments', () => {
    const r = deepLinkFromArgv([
      '/opt/Sallyport/sallyport-desktop',
      '--no-sandbox',
      'sallyport://targets/web-1',
    ]);
    expect(r).toEqual({ ok: true, link: { kind: 'target', id: 'web-1', path: '/targets/web-1' } });
  });

  it('reports an invalid link instead of ignoring it silently, and nothing when there is none', () => {
    expect(deepLinkFromArgv(['app', 'sallyport://targets/../x'])?.ok).toBe(false);
    expect(deepLinkFromArgv(['app', '--flag', '/tmp/file'])).toBeUndefined();
  });
});
