import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSealer, decodeMasterKey, loadMasterKey, MasterKeyError, UnsealError } from '../../src/secrets';

describe('sealer (AES-256-GCM)', () => {
  const key = randomBytes(32);
  const sealer = createSealer(key);

  it('round-trips and never repeats a ciphertext', () => {
    const a = sealer.seal('hunter2-password', 'target:db');
    const b = sealer.seal('hunter2-password', 'target:db');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(a).not.toContain('hunter2');
    expect(sealer.open(a, 'target:db')).toBe('hunter2-password');
  });

  it('refuses another key, another owner, and any flipped byte', () => {
    const sealed = sealer.seal('s3cret', 'target:a');
    expect(() => createSealer(randomBytes(32)).open(sealed, 'target:a')).toThrow(UnsealError);
    expect(() => sealer.open(sealed, 'target:b')).toThrow(UnsealError);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = (ct[0] ?? 0) ^ 1;
    expect(() => sealer.open([...parts.slice(0, 3), ct.toString('base64url')].join('.'), 'target:a')).toThrow(
      UnsealError,
    );
    expect(() => sealer.open('plaintext', 'target:a')).toThrow(/not a sealed value/);
  });

  it('says nothing about the key or plaintext when it fails', () => {
    const sealed = sealer.seal('visible-if-leaked', 'x');
    try {
      createSealer(randomBytes(32)).open(sealed, 'x');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe('cannot decrypt: wrong master key or tampered value');
    }
  });
});

describe('master key', () => {
  it('accepts 32 bytes as base64 or hex', () => {
    const k = randomBytes(32);
    expect(decodeMasterKey(k.toString('base64'), 'env').equals(k)).toBe(true);
    expect(decodeMasterKey(`${k.toString('hex')}\n`, 'file').equals(k)).toBe(true);
  });

  it('refuses short, long and non-key values with the source named', () => {
    for (const bad of [
      randomBytes(16).toString('base64'),
      randomBytes(48).toString('base64'),
      'password123',
      '',
    ]) {
      expect(() => decodeMasterKey(bad, 'SALLYPORT_MASTER_KEY')).toThrow(
        /SALLYPORT_MASTER_KEY: the master key must be 32 bytes/,
      );
    }
  });

  it('refuses to start without a key, and prefers the environment over the file', () => {
    expect(() => loadMasterKey({ env: {} })).toThrow(MasterKeyError);
    expect(() => loadMasterKey({ env: {}, file: '/nonexistent/key' })).toThrow(
      /secrets.masterKeyFile \/nonexistent\/key/,
    );
    const k = randomBytes(32);
    expect(
      loadMasterKey({ env: { SALLYPORT_MASTER_KEY: k.toString('base64') }, file: '/nonexistent' }).equals(k),
    ).toBe(true);
  });
});
