import { describe, expect, it } from 'vitest';
import { DEFAULT_GATEWAY, resolveAppConfig } from '../../src/node/app-config';
import { checkGatewayUrl } from '../../src/node/desktop-session';

describe('desktop app configuration', () => {
  it('takes the gateway from argv, then env, then config.json, then the local default', () => {
    const file = JSON.stringify({ gateway: 'https://file.example.com' });
    expect(
      resolveAppConfig({
        argv: ['--gateway=https://arg.example.com'],
        env: { SALLYPORT_GATEWAY: 'https://env.example.com' },
        fileText: file,
      }),
    ).toMatchObject({ gatewayUrl: 'https://arg.example.com', source: 'argv' });
    expect(
      resolveAppConfig({ argv: [], env: { SALLYPORT_GATEWAY: 'https://env.example.com' }, fileText: file }),
    ).toMatchObject({ gatewayUrl: 'https://env.example.com', source: 'env' });
    expect(resolveAppConfig({ argv: [], env: {}, fileText: file })).toMatchObject({ source: 'file' });
    expect(resolveAppConfig({ argv: [], env: {} })).toEqual({
      gatewayUrl: DEFAULT_GATEWAY,
      allowLoopbackHttp: false,
      source: 'default',
    });
    expect(() => resolveAppConfig({ argv: [], env: {}, fileText: '{' })).toThrow(/not valid JSON/);
  });

  it('turns on loopback http only when asked explicitly', () => {
    expect(
      resolveAppConfig({ argv: [], env: { SALLYPORT_ALLOW_LOOPBACK_HTTP: '1' } }).allowLoopbackHttp,
    ).toBe(true);
    expect(resolveAppConfig({ argv: ['--allow-loopback-http'], env: {} }).allowLoopbackHttp).toBe(true);
    expect(
      resolveAppConfig({ argv: [], env: { SALLYPORT_ALLOW_LOOPBACK_HTTP: 'true' } }).allowLoopbackHttp,
    ).toBe(false);
  });

  it('accepts an https gateway, and plain http only on loopback with the development flag', () => {
    expect(checkGatewayUrl('https://gw.example.com/some/path', false).origin).toBe('https://gw.example.com');
    expect(checkGatewayUrl('http://127.0.0.1:8080', true).origin).toBe('http://127.0.0.1:8080');
    expect(() => checkGatewayUrl('http://127.0.0.1:8080', false)).toThrow(/SALLYPORT_ALLOW_LOOPBACK_HTTP=1/);
    expect(() => checkGatewayUrl('http://gw.example.com', true)).toThrow(/must be https/);
    expect(() => checkGatewayUrl('ftp://gw.example.com', true)).toThrow(/must be https/);
    expect(() => checkGatewayUrl('nope', true)).toThrow(/not a URL/);
  });
});
