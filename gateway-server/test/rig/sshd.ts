// Vitest helper: one real OpenSSH sshd per describe block / file.
import { afterAll, beforeAll } from 'vitest';
import { findSshd, type RunningSshd, type StartSshdOptions, startSshd } from '../../src/devstack/sshd';

export interface SshdFixture {
  /** The running server; throws when read outside the beforeAll/afterAll window. */
  readonly server: RunningSshd;
}

/** True when an sshd binary exists (use with `describe.skipIf(!hasSshd)`). */
export const hasSshd = findSshd() !== null;

/** Starts sshd in beforeAll and stops it in afterAll. */
export function useSshd(opts: StartSshdOptions = {}): SshdFixture {
  let server: RunningSshd | undefined;
  beforeAll(async () => {
    server = await startSshd(opts);
  });
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  });
  return {
    get server() {
      if (!server) throw new Error('useSshd: server not running (use it inside tests or hooks)');
      return server;
    },
  };
}
