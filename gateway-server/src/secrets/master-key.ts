import { readFileSync } from 'node:fs';

export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}

/** Accepts 32 bytes as base64 (44 chars) or hex (64 chars); anything else is refused with the reason. */
export function decodeMasterKey(text: string, source: string): Buffer {
  const value = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(value)) key = Buffer.from(value, 'base64');
  if (key?.length !== 32) {
    throw new MasterKeyError(
      `${source}: the master key must be 32 bytes, written as 64 hex characters or base64 ` +
        `(generate one with: openssl rand -base64 32)`,
    );
  }
  return key;
}

/**
 * The key comes from SALLYPORT_MASTER_KEY, else from the configured file.
 * There is deliberately no fallback: without a key the gateway does not start.
 */
export function loadMasterKey(opts: { env: NodeJS.ProcessEnv; file?: string }): Buffer {
  const fromEnv = opts.env.SALLYPORT_MASTER_KEY;
  if (fromEnv) return decodeMasterKey(fromEnv, 'SALLYPORT_MASTER_KEY');
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new MasterKeyError(`secrets.masterKeyFile ${opts.file}: ${(err as Error).message}`);
    }
    return decodeMasterKey(text, opts.file);
  }
  throw new MasterKeyError(
    'no master key: set SALLYPORT_MASTER_KEY or secrets.masterKeyFile (target credentials are encrypted with it)',
  );
}
