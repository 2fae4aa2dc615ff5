import { createHash } from 'node:crypto';

/** OpenSSH-style fingerprint (`SHA256:…`, unpadded base64) of a public key line `type base64 [comment]`. */
export function hostKeyFingerprint(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new Error('not an OpenSSH public key line');
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}
