import type { TargetInput } from '@sallyport/protocol';
import type { GatewayConfig } from './config/schema';
import { findSshd, type RunningPostgres, type RunningSshd, startPostgres, startSshd } from './devstack';

export interface DemoTargets {
  targets: TargetInput[];
  skipped: Array<{ id: string; reason: string }>;
  stop(): Promise<void>;
}

/**
 * Starts the demo targets of `npm start`: a PostgreSQL seeded with customers
 * (names, e-mails, card numbers) and, where OpenSSH is installed, an sshd.
 * The gateway receives their credentials like any target's; users never do.
 */
export async function startDemoTargets(
  demo: GatewayConfig['demo'],
  opts: { dataDir: string; log: (line: string) => void },
): Promise<DemoTargets> {
  const targets: TargetInput[] = [];
  const skipped: DemoTargets['skipped'] = [];
  let pg: RunningPostgres | undefined;
  let sshd: RunningSshd | undefined;
  const stop = async () => {
    await Promise.allSettled([pg?.stop(), sshd?.stop()]);
  };
  try {
    if (demo.postgres) {
      pg = await startPostgres({ seedDemo: true, log: opts.log });
      targets.push({
        id: 'demo-postgres',
        kind: 'postgres',
        name: 'Customers DB (demo)',
        description: 'Embedded PostgreSQL with a seeded customers table',
        host: pg.host,
        port: pg.port,
        user: pg.user,
        database: pg.database,
        tls: 'disable',
        labels: { ...demo.labels, kind: 'postgres', demo: 'true' },
        credential: { password: pg.password },
      });
    }
    if (demo.ssh) {
      if (!findSshd()) {
        skipped.push({
          id: 'demo-ssh',
          reason: 'OpenSSH sshd is not installed (apt-get install -y openssh-server)',
        });
      } else {
        sshd = await startSshd({ log: opts.log });
        targets.push({
          id: 'demo-ssh',
          kind: 'ssh',
          name: 'App server (demo)',
          description: 'OpenSSH sshd started by the gateway',
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          hostKey: sshd.hostPublicKey,
          labels: { ...demo.labels, kind: 'ssh', demo: 'true' },
          credential: { privateKey: sshd.clientPrivateKey },
        });
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { targets, skipped, stop };
}
