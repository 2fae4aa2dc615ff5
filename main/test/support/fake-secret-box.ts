// A stand-in for Electron's safeStorage (the OS keychain): real AES-256-GCM with a key
// that lives only in this process, so what lands on disk is really ciphertext.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SecretBox } from '../../src/node/token-store';

export interface FakeSecretBox extends SecretBox {
  calls: { encrypt: number; decrypt: number };
}

export function fakeSecretBox(opts: { available?: boolean; key?: Buffer } = {}): FakeSecretBox {
  const key = opts.key ?? randomBytes(32);
  const calls = { encrypt: 0, decrypt: 0 };
  return {
    calls,
    isEncryptionAvailable: () => opts.available ?? true,
    encryptString(plain) {
      if (opts.available === false) throw new Error('Encryption is not available.');
      calls.encrypt++;
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]);
    },
    decryptString(buf) {
      calls.decrypt++;
      const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(12, 28));
      return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
    },
  };
}
