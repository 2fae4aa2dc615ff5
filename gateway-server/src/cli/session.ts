import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * The CLI's saved sign-in: gateway URL and access token, in a 0600 file.
 * CI can skip the file entirely with SALLYPORT_GATEWAY and SALLYPORT_TOKEN.
 */
const Saved = z.object({
  gateway: z.string(),
  token: z.string(),
  expiresAt: z.string().optional(),
  username: z.string().optional(),
});
export type SavedSession = z.infer<typeof Saved>;

export const sessionFile = (env: NodeJS.ProcessEnv) =>
  path.join(env.SALLYPORT_HOME ?? path.join(homedir(), '.sallyport'), 'session.json');

export function readSession(env: NodeJS.ProcessEnv): SavedSession | undefined {
  try {
    return Saved.parse(JSON.parse(readFileSync(sessionFile(env), 'utf8')));
  } catch {
    return undefined;
  }
}

export function writeSession(env: NodeJS.ProcessEnv, s: SavedSession): void {
  const file = sessionFile(env);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function clearSession(env: NodeJS.ProcessEnv): void {
  rmSync(sessionFile(env), { force: true });
}

export class NotSignedIn extends Error {
  constructor() {
    super(
      'not signed in: run `sallyport login --gateway <url>` (or set SALLYPORT_GATEWAY and SALLYPORT_TOKEN)',
    );
  }
}

export function resolveSession(
  env: NodeJS.ProcessEnv,
  gatewayFlag?: string,
): { gateway: string; token: string } {
  const saved = readSession(env);
  const gateway = gatewayFlag ?? env.SALLYPORT_GATEWAY ?? saved?.gateway;
  const token = env.SALLYPORT_TOKEN ?? saved?.token;
  if (!gateway || !token) throw new NotSignedIn();
  return { gateway, token };
}
