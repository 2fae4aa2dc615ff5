import { StringDecoder } from 'node:string_decoder';
import {
  createGatewayClient,
  decodeBinaryOutput,
  type GrantView,
  type TerminalClientMessage,
  TerminalServerMessage,
} from '@sallyport/protocol';
import { type Command, CommanderError } from 'commander';
import WebSocket from 'ws';
import { CliError } from './main';
import { type Io, processIo } from './output';
import { resolveSession } from './session';
import { gatewayTlsHint } from './tls-hint';

/**
 * `sallyport ssh <target>` — an interactive shell through the gateway, with the
 * local terminal in raw mode — and `sallyport ssh <target> -- <command…>`,
 * which runs one command and exits with its exit code.
 *
 * Exit codes: the remote command's; 128+n when it was killed by signal n;
 * 3 when the gateway refused (no grant, exec-only, …); 8 when the shell guardrails
 * blocked the command or its review was not approved; 5 when the grant was
 * revoked or expired during the session; 255 when the gateway could not reach
 * or log in to the target (as `ssh` does).
 */
export const SSH_EXIT = { refused: 3, revoked: 5, guarded: 8, failed: 255 } as const;
/** The shell guardrails refused the command (blocked by a rule, or its review was not approved): exit 8. */
const GUARD_REFUSALS = new Set(['blocked', 'review_denied']);

const REFUSALS = new Set([
  'no_grant',
  'grant_revoked',
  'grant_expired',
  'exec_only',
  'level_mismatch',
  'not_ssh',
  'forbidden',
  'unauthenticated',
  'unauthorized',
]);
const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, PIPE: 13, TERM: 15 };
const HIGH_WATER_MARK = 1024 * 1024;

class Exit extends CommanderError {
  constructor(code: number) {
    super(code, 'sallyport.ssh', `exit ${code}`);
  }
}

/** One argument is a command line for the remote shell; several are an argv, quoted for it. */
export function remoteCommand(args: string[]): string {
  if (args.length === 1) return args[0]!;
  return args
    .map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(' ');
}

const requestHint = (target: string, level: 'shell' | 'exec-only') =>
  `request access with: sallyport request ${target} --level ${level} --duration 1h --reason "<why>" --wait`;

async function pickGrant(
  gateway: string,
  token: string,
  target: string,
  interactive: boolean,
): Promise<GrantView> {
  const grants = await createGatewayClient({ baseUrl: gateway, token: () => token }).grants({
    scope: 'mine',
    status: 'active',
  });
  const live = grants
    .filter((g) => g.targetId === target && Date.parse(g.expiresAt) > Date.now())
    .sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt));
  const fit = live.find((g) => g.level === 'shell' || (!interactive && g.level === 'exec-only'));
  if (fit) return fit;
  if (interactive && live.some((g) => g.level === 'exec-only')) {
    throw new CliError(
      `your grant on ${target} is exec-only: run one command with \`sallyport ssh ${target} -- <command>\`, or ${requestHint(target, 'shell')}`,
      SSH_EXIT.refused,
    );
  }
  throw new CliError(
    `you have no active grant on ${target}: ${requestHint(target, interactive ? 'shell' : 'exec-only')}`,
    SSH_EXIT.refused,
  );
}

export function registerSshCommand(program: Command, io: Io, env: NodeJS.ProcessEnv) {
  program
    .command('ssh')
    .description(
      'an interactive shell on an SSH target through the gateway, or one command: sallyport ssh <target> -- <command…>',
    )
    .argument('<target>', 'target id')
    .argument('[command...]', 'command to run, after --; without one, an interactive shell')
    .option('--grant <id>', 'grant to use (default: your active grant on the target)')
    .option('--stdin', 'with a command: forward local stdin to it (EOF ends it)')
    .option('-g, --gateway <url>', 'gateway URL')
    .action(
      async (
        target: string,
        command: string[],
        opts: { grant?: string; stdin?: boolean; gateway?: string },
      ) => {
        const session = resolveSession(env, opts.gateway);
        const interactive = command.length === 0;
        const grantId =
          opts.grant ?? (await pickGrant(session.gateway, session.token, target, interactive)).id;
        const code = await runTerminal({
          gateway: session.gateway,
          token: session.token,
          io,
          open: {
            type: 'open',
            targetId: target,
            grantId,
            mode: interactive ? 'shell' : 'exec',
            ...(interactive ? {} : { command: remoteCommand(command) }),
            cols: process.stdout.columns || 80,
            rows: process.stdout.rows || 24,
            binaryOutput: true,
          },
          forwardStdin: interactive || Boolean(opts.stdin),
        });
        if (code !== 0) throw new Exit(code);
      },
    );
}

interface RunOptions {
  gateway: string;
  token: string;
  io: Io;
  open: Extract<TerminalClientMessage, { type: 'open' }>;
  forwardStdin: boolean;
}

/** Runs one terminal session over `/api/terminal`; resolves with the exit code. */
export function runTerminal(o: RunOptions): Promise<number> {
  const real = o.io === processIo;
  const interactive = o.open.mode === 'shell';
  const stdin = process.stdin;
  const raw = real && interactive && stdin.isTTY;
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  const nl = raw ? '\r\n' : '\n';

  const url = `${o.gateway.replace(/\/$/, '').replace(/^http/, 'ws')}/api/terminal`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${o.token}` } });
  const sendMsg = (m: TerminalClientMessage, cb?: () => void) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m), cb);
  };

  const write = (stream: 'stdout' | 'stderr', data: Buffer) => {
    if (real) {
      const out = stream === 'stdout' ? process.stdout : process.stderr;
      if (!out.write(data)) {
        // Local backpressure: stop reading the gateway until the terminal has caught up.
        ws.pause();
        out.once('drain', () => ws.resume());
      }
      return;
    }
    const text = decoders[stream].write(data);
    if (text) (stream === 'stdout' ? o.io.out : o.io.err)(text);
  };
  const say = (text: string) => {
    if (real) process.stderr.write(`${nl}[sallyport] ${text}${nl}`);
    else o.io.err(`sallyport: ${text}`);
  };

  const cleanups: Array<() => void> = [];
  const startInput = () => {
    if (!real || !o.forwardStdin) return;
    if (raw) {
      stdin.setRawMode(true);
      cleanups.push(() => stdin.setRawMode(false));
    }
    const onData = (chunk: Buffer) => {
      sendMsg({ type: 'input', data: chunk.toString('base64') }, () => {
        if (stdin.isPaused() && ws.bufferedAmount < HIGH_WATER_MARK / 4) stdin.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER_MARK) stdin.pause();
    };
    const onEnd = () => sendMsg({ type: 'eof' });
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
    cleanups.push(() => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
    });
    if (interactive) {
      const onResize = () =>
        sendMsg({ type: 'resize', cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 });
      process.on('SIGWINCH', onResize);
      cleanups.push(() => process.off('SIGWINCH', onResize));
    } else {
      // Ctrl-C with a command running: the remote command gets SIGINT (a raw terminal sends ^C as input instead).
      const onSigint = () => sendMsg({ type: 'signal', name: 'INT' });
      process.on('SIGINT', onSigint);
      cleanups.push(() => process.off('SIGINT', onSigint));
    }
  };

  return new Promise<number>((resolve, reject) => {
    let exit: { code: number | null; signal?: string } | undefined;
    let closed: { code: string; reason: string } | undefined;
    let ready = false;
    let failure: Error | undefined;

    const finish = () => {
      for (const c of cleanups.splice(0).reverse()) c();
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = decoders[stream].end();
        if (rest && !real) (stream === 'stdout' ? o.io.out : o.io.err)(rest);
      }
      if (failure && !closed)
        return reject(
          new CliError(`terminal channel: ${failure.message}${gatewayTlsHint(failure)}`, SSH_EXIT.failed),
        );
      if (!closed)
        return reject(new CliError('the gateway closed the terminal channel unexpectedly', SSH_EXIT.failed));
      if (closed.code === 'exit') {
        if (exit?.signal) return resolve(128 + (SIGNALS[exit.signal] ?? 0));
        return resolve(exit?.code ?? SSH_EXIT.failed);
      }
      if (closed.code === 'client_closed') return resolve(exit?.code ?? 0);
      if (closed.code === 'revoked' || closed.code === 'expired') return resolve(SSH_EXIT.revoked);
      if (GUARD_REFUSALS.has(closed.code)) return resolve(SSH_EXIT.guarded);
      return resolve(REFUSALS.has(closed.code) ? SSH_EXIT.refused : SSH_EXIT.failed);
    };

    ws.on('open', () => sendMsg(o.open));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        // Output, when opened with binaryOutput: the stream byte, then the bytes.
        const frame = decodeBinaryOutput(data);
        if (frame)
          write(frame.stream, Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.length));
        return;
      }
      let parsed: ReturnType<typeof TerminalServerMessage.safeParse>;
      try {
        parsed = TerminalServerMessage.safeParse(JSON.parse(data.toString('utf8')));
      } catch {
        return;
      }
      if (!parsed.success) return;
      const m = parsed.data;
      switch (m.type) {
        case 'ready':
          ready = true;
          startInput();
          break;
        case 'output':
          write(m.stream, Buffer.from(m.data, 'base64'));
          break;
        case 'notice':
          // Revocation and expiry are also written into the terminal itself while a session runs.
          if (!(ready && (m.code === 'revoked' || m.code === 'expired'))) say(m.message);
          break;
        case 'exit':
          exit = { code: m.code, ...(m.signal ? { signal: m.signal } : {}) };
          break;
        case 'closed':
          closed = { code: m.code, reason: m.reason };
          break;
      }
    });
    ws.on('error', (err) => {
      failure = err;
    });
    ws.on('close', finish);
  });
}
