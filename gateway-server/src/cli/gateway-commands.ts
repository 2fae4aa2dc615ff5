import type { Command } from 'commander';
import { loadConfigFile } from '../config/load';
import type { Io } from './output';

export function registerGatewayCommands(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  program
    .command('gateway')
    .description('run the gateway server')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .option('--console <dir>', 'serve the built web console from this directory')
    .action(async (opts: { config: string; console?: string }) => {
      const config = loadConfigFile(opts.config, env);
      // Loaded on demand: client commands must not pay for (or print warnings from) the server's modules.
      const { startGateway } = await import('../gateway');
      const gw = await startGateway(config, { env, ...(opts.console ? { consoleDir: opts.console } : {}) });
      io.out(`sallyport gateway listening on ${gw.url} (identity: ${gw.issuer})`);
      await new Promise<void>((resolve) => {
        const stop = async (signal: string) => {
          gw.log.info({ signal }, 'shutting down');
          await gw.stop();
          gw.log.info({ signal }, 'stopped');
          resolve();
        };
        process.once('SIGINT', () => void stop('SIGINT'));
        process.once('SIGTERM', () => void stop('SIGTERM'));
      });
    });

  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description('validate a configuration file and print the problems, if any')
    .requiredOption('-c, --config <file>', 'configuration file (YAML)')
    .action((opts: { config: string }) => {
      const cfg = loadConfigFile(opts.config, env);
      io.out(
        `${opts.config}: valid (${cfg.targets.length} targets, store: ${cfg.database.url ? 'postgresql' : 'pglite'})`,
      );
    });
}
