// The development identity provider runs on a thread of its own (identity/dev-provider-thread.ts),
// so oidc-provider's AsyncLocalStorage never turns on promise hooks on the gateway's thread.
import { connect } from 'node:net';
import { threadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevProviderThread } from '../../src/identity/dev-provider-thread';
import { startTestGateway, type TestGateway } from '../rig';

/** oidc-provider's request-context store, the one whose first use turns the hooks on. */
async function oidcContextStore(): Promise<{ enabled?: boolean; disable(): void }> {
  // @ts-expect-error oidc-provider ships no type declarations
  const m = (await import('oidc-provider/lib/helpers/als.js')) as {
    default: { enabled?: boolean; disable(): void };
  };
  return m.default;
}

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

describe('development identity provider thread', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // Another test file in this worker may have run a provider in-process: start from hooks off.
    (await oidcContextStore()).disable();
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("serves sign-in from another thread, leaving the gateway's thread without oidc-provider's hooks", async () => {
    const provider = t.gw.devProvider;
    expect(provider?.threadId).toBeTypeOf('number');
    expect(provider?.threadId).not.toBe(threadId);

    const token = await t.token('alice');
    expect((await t.client(token).me()).username).toBe('alice');
    // Node 20 marks an AsyncLocalStorage enabled once it has run anything on this thread.
    expect((await oidcContextStore()).enabled).toBe(false);
  });

  it('stops: the port is closed afterwards', async () => {
    const p = await startDevProviderThread({ host: '127.0.0.1', port: 0, audience: 'sallyport' });
    expect(await refused(p.port)).toBe('connected');
    await p.stop();
    expect(await refused(p.port)).toBe('ECONNREFUSED');
    await p.stop(); // twice is harmless
  });

  it("reports the provider's own refusal", async () => {
    await expect(startDevProviderThread({ host: '0.0.0.0', port: 0, audience: 'sallyport' })).rejects.toThrow(
      /refusing to start the development identity provider on non-loopback address '0\.0\.0\.0'/,
    );

    const taken = await startDevProviderThread({ host: '127.0.0.1', port: 0, audience: 'sallyport' });
    try {
      await expect(
        startDevProviderThread({ host: '127.0.0.1', port: taken.port, audience: 'sallyport' }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await taken.stop();
    }
  });
});
