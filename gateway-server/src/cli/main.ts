import { GatewayError } from '@sallyport/protocol';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load';
import { MasterKeyError } from '../secrets';
import { registerAccessCommands } from './access-commands';
import { registerClientCommands } from './client-commands';
import { registerGatewayCommands } from './gateway-commands';
import { type Io, processIo } from './output';
import { registerReplayCommand } from './replay-command';
import { registerReviewCommands } from './review-commands';
import { registerSqlCommand } from './sql-command';
import { registerSshCommand } from './ssh-command';
import { gatewayTlsHint, networkErrorText } from './tls-hint';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Runs the `sallyport` command. Returns the exit code instead of exiting, so tests can call it. */
export async function main(
  argv: string[],
  io: Io = processIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const program = new Command('sallyport')
    .description('Just-in-time access to SSH and PostgreSQL through the Sallyport gateway')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();
  registerGatewayCommands(program, io, env);
  registerClientCommands(program, io, env);
  registerAccessCommands(program, io, env);
  registerReviewCommands(program, io, env);
  registerSshCommand(program, io, env);
  registerSqlCommand(program, io, env);
  registerReplayCommand(program, io, env);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      io.err(`sallyport: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof ConfigError || err instanceof MasterKeyError) {
      io.err(`sallyport: ${err.message}`);
      return 2;
    }
    if (err instanceof GatewayError) {
      io.err(
        `sallyport: ${err.message}${err.requestId ? ` (request ${err.requestId})` : ''}${gatewayTlsHint(err)}`,
      );
      return err.status === 401 || err.status === 403 ? 3 : 1;
    }
    io.err(`sallyport: ${networkErrorText(err as Error)}${gatewayTlsHint(err)}`);
    return 1;
  }
}
