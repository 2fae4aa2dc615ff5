import pino, { type Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object. Credentials must
 * never reach a log line; these catch the obvious carriers, and the code never
 * logs a credential object on purpose (the leak test checks all output).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'accessToken',
  'refreshToken',
  'password',
  'privateKey',
  'passphrase',
  'credential',
  'clientSecret',
  '*.password',
  '*.privateKey',
  '*.passphrase',
  '*.credential',
  '*.token',
  '*.clientSecret',
];

export function createLogger(opts: {
  level: string;
  destination?: pino.DestinationStream;
  name?: string;
}): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name ?? 'sallyport',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

export type { Logger };
