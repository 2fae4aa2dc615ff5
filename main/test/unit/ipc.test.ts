import { describe, expect, it, vi } from 'vitest';
import { capabilityArg, ipcChannels, parseCapabilityArgs } from '../../src/common/ipc-contract';
import { createIpcRegistry, IpcError, type IpcSender } from '../../src/node/ipc';

const ORIGIN = 'https://gateway.example.com';
const app: IpcSender = { url: `${ORIGIN}/inbox`, isMainFrame: true, webContentsId: 1 };

function registry() {
  const refused: Array<[string, string]> = [];
  const r = createIpcRegistry({
    allowedOrigin: ORIGIN,
    isOwnWebContents: (id) => id === 1,
    onRefused: (channel, err) => refused.push([channel, err.code]),
  });
  const shown: Array<{ title: string; body: string }> = [];
  r.handle('notifications:show', (n) => {
    shown.push(n);
    return { shown: true };
  });
  r.handle('auth:status', () => ({ signedIn: false, persistence: 'keychain' as const }));
  r.handle('auth:sign-in', () => {
    throw new Error('sign-in timed out after 300 s');
  });
  r.handle('auth:sign-out', () => ({ signedIn: 'no' }) as never); // a handler bug
  r.handle('inbox:refresh', () => ({ badge: 3 }));
  return { r, shown, refused };
}

async function refusal(p: Promise<unknown>): Promise<IpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IpcError);
  return err as IpcError;
}

describe('IPC registry: sender validation', () => {
  it('runs the handler for the app window on the app origin', async () => {
    const { r, shown } = registry();
    await expect(r.dispatch('notifications:show', app, { title: 'Hi', body: 'there' })).resolves.toEqual({
      shown: true,
    });
    expect(shown).toEqual([{ title: 'Hi', body: 'there' }]);
  });

  it('refuses another origin, naming both origins, without calling the handler', async () => {
    const { r, shown, refused } = registry();
    const err = await refusal(
      r.dispatch(
        'notifications:show',
        { ...app, url: 'https://evil.example/page' },
        { title: 'x', body: '' },
      ),
    );
    expect(err.code).toBe('forbidden_sender');
    expect(err.message).toContain(
      "origin (https://evil.example) is not the app's (https://gateway.example.com)",
    );
    expect(shown).toEqual([]);
    expect(refused).toEqual([['notifications:show', 'forbidden_sender']]);
  });

  it('refuses look-alike origins: other port, other scheme, userinfo tricks, file:, about:blank, garbage', async () => {
    const { r } = registry();
    for (const url of [
      'https://gateway.example.com:8443/',
      'http://gateway.example.com/',
      'https://gateway.example.com.evil.example/',
      'https://gateway.example.com@evil.example/',
      'file:///etc/passwd',
      'about:blank',
      'data:text/html,<script>1</script>',
      '',
      'not a url',
    ]) {
      const err = await refusal(r.dispatch('auth:status', { ...app, url }, {}));
      expect(err.code, url).toBe('forbidden_sender');
    }
  });

  it('refuses embedded frames even on the app origin', async () => {
    const { r } = registry();
    const err = await refusal(r.dispatch('auth:status', { ...app, isMainFrame: false }, {}));
    expect(err.message).toContain('embedded frames');
  });

  it('refuses a webContents that is not one of the app windows', async () => {
    const { r } = registry();
    const err = await refusal(r.dispatch('auth:status', { ...app, webContentsId: 7 }, {}));
    expect(err.message).toContain('not a Sallyport window');
  });
});

describe('IPC registry: schema validation', () => {
  it('refuses a bad payload and names the path of every problem', async () => {
    const { r, shown } = registry();
    const err = await refusal(r.dispatch('notifications:show', app, { title: '', body: 42 }));
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/^IPC 'notifications:show' refused: bad request: /);
    expect(err.message).toContain('title:');
    expect(err.message).toContain('body:');
    expect(shown).toEqual([]);
  });

  it('refuses unknown keys (no smuggling extra fields to a handler)', async () => {
    const { r } = registry();
    const err = await refusal(
      r.dispatch('notifications:show', app, { title: 'a', body: 'b', html: '<img>' }),
    );
    expect(err.message).toContain('html');
  });

  it('refuses oversized text', async () => {
    const { r } = registry();
    const err = await refusal(r.dispatch('notifications:show', app, { title: 'x'.repeat(121), body: '' }));
    expect(err.message).toContain('title:');
  });

  it('refuses non-object payloads at the root', async () => {
    const { r } = registry();
    const err = await refusal(r.dispatch('auth:status', app, 'hello'));
    expect(err.message).toContain('(root):');
  });

  it('refuses channels outside the contract (and prototype names)', async () => {
    const { r } = registry();
    for (const channel of ['shell:exec', '__proto__', 'constructor', 'toString']) {
      const err = await refusal(r.dispatch(channel, app, {}));
      expect(err.code).toBe('unknown_channel');
    }
  });

  it('reports a handler failure with its message, and a handler answer outside the contract', async () => {
    const { r } = registry();
    const failed = await refusal(r.dispatch('auth:sign-in', app, {}));
    expect(failed.code).toBe('handler_failed');
    expect(failed.message).toContain('sign-in timed out after 300 s');
    const bad = await refusal(r.dispatch('auth:sign-out', app, {}));
    expect(bad.message).toContain('outside the contract');
  });

  it('checks the sender before the payload (a foreign page learns nothing about the schema)', async () => {
    const { r } = registry();
    const err = await refusal(r.dispatch('notifications:show', { ...app, url: 'https://evil.example/' }, 5));
    expect(err.code).toBe('forbidden_sender');
  });
});

describe('IPC registry: wiring', () => {
  it('knows which contract channels lack a handler and refuses handlers for unknown channels', () => {
    const r = createIpcRegistry({ allowedOrigin: ORIGIN });
    expect(r.missing()).toEqual(ipcChannels);
    r.handle('inbox:refresh', () => ({ badge: 0 }));
    expect(r.missing()).not.toContain('inbox:refresh');
    expect(() => r.handle('inbox:refresh', () => ({ badge: 0 }))).toThrow(/already has a handler/);
    expect(() => r.handle('nope' as never, vi.fn())).toThrow(/not in the IPC contract/);
  });

  it('every contract channel is handled by the full registry', () => {
    expect(registry().r.missing()).toEqual([]);
  });

  it('passes capabilities to the sandboxed preload through argv, and fails closed on garbage', () => {
    const caps = {
      notifications: { available: true },
      keychain: { available: false, unavailableReason: 'no keyring' },
    };
    expect(parseCapabilityArgs(['electron', capabilityArg(caps)])).toEqual(caps);
    const none = parseCapabilityArgs(['--sallyport-capabilities=%7Bnot json']);
    expect(none.notifications.available).toBe(false);
    expect(none.keychain.available).toBe(false);
    expect(parseCapabilityArgs([]).keychain.available).toBe(false);
  });
});
