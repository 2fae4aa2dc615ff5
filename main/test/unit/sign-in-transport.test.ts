import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoopbackHostname, issuerTransport, SignInError } from '../../src/node/sign-in';

describe('identity provider transport', () => {
  it('uses https as is', () => {
    expect(issuerTransport('https://login.example.com/realms/x', {})).toEqual({ insecure: false });
  });

  it('refuses plain http on loopback without the explicit development flag, saying how to enable it', () => {
    const err = (() => {
      try {
        issuerTransport('http://127.0.0.1:9000', {});
      } catch (e) {
        return e as SignInError;
      }
    })();
    expect(err).toBeInstanceOf(SignInError);
    expect(err?.code).toBe('insecure_issuer');
    expect(err?.message).toMatch(/over plain http.*local development only.*SALLYPORT_ALLOW_LOOPBACK_HTTP=1/);
    expect(issuerTransport('http://127.0.0.1:9000', { allowLoopbackHttp: true })).toEqual({ insecure: true });
    expect(issuerTransport('http://[::1]:9000', { allowLoopbackHttp: true })).toEqual({ insecure: true });
  });

  it('never accepts plain http to a non-loopback provider, flag or not', () => {
    for (const issuer of ['http://login.example.com', 'http://10.0.0.5:8080', 'http://127.0.0.1.nip.io']) {
      expect(() => issuerTransport(issuer, { allowLoopbackHttp: true }), issuer).toThrow(
        /never accepted for a non-loopback/,
      );
    }
    expect(() => issuerTransport('ftp://x', {})).toThrow(/must be an https URL/);
    expect(() => issuerTransport('nope', {})).toThrow(/not a URL/);
  });

  it('recognises loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '::1'].every(isLoopbackHostname)).toBe(true);
    expect(['128.0.0.1', '127.0.0.1.evil.example', '0.0.0.0', 'example.com'].some(isLoopbackHostname)).toBe(
      false,
    );
  });

  it('the app never uses the test-only switch (only tests may turn TLS checks off)', () => {
    const src = path.resolve(import.meta.dirname, '../../src');
    for (const file of ['electron-main/index.ts', 'node/desktop-session.ts', 'preload/index.ts']) {
      const text = readFileSync(path.join(src, file), 'utf8');
      expect(text, file).not.toMatch(/allowInsecureRequests\s*:/);
      expect(text, file).not.toMatch(/testOnly\s*:\s*\{/);
    }
  });
});
