/**
 * One terminal session: a WebSocket on one side, an SSH channel (PTY shell or
 * exec) on the other, the filters of filters.ts in between.
 *
 * Backpressure both ways:
 * - target → client: when the socket's `bufferedAmount` passes `highWaterMark`
 *   the SSH channel (stdout and stderr) is paused; ssh2 then stops granting
 *   window, so the target itself blocks. It resumes once the socket has
 *   drained below `lowWaterMark` (checked on every send completion and by a
 *   short poll while paused). An observer that falls behind (the recording, on
 *   a slow disk: `congested()`) pauses the channel the same way.
 * - Output chunks that arrive in one go leave in one socket write (the socket
 *   is corked until the end of the current callback); a lone chunk, such as a
 *   keystroke echo, is never held back.
 * - client → target: when the channel's `write` returns false, the socket
 *   stops being read (`ws.pause()`) until the channel drains; also while too
 *   many (async) input-filter decisions are pending.
 *
 * The session registers with the session registry under its grant, so
 * revocation and expiry close it: a visible line in the terminal, a `notice`
 * frame, `closed`, then channel, connection and socket are closed.
 */
import { randomUUID } from 'node:crypto';
import {
  BINARY_OUTPUT_STREAMS,
  TerminalClose,
  type TerminalEndReason,
  type TerminalMode,
  type TerminalServerMessage,
} from '@sallyport/protocol';
import type { Client, ClientChannel } from 'ssh2';
import type { WebSocket } from 'ws';
import type { LiveSession } from '../../access/sessions';
import type { ActorKind, Ledger } from '../../audit';
import type { TargetCredential } from '../../targets/repository';
import { corkUntilCallbackEnd } from '../ws-cork';
import { connectSsh, type SshConnectError, type SshTarget } from './connect';
import {
  type FilterFactory,
  identityFilters,
  type OutputStream,
  type SessionFilters,
  type SessionInfo,
  type SessionSummary,
} from './filters';
import { binaryFrame } from './output-buffers';

export const HIGH_WATER_MARK = 1024 * 1024;
export const LOW_WATER_MARK = 256 * 1024;
/** Input-filter decisions in flight before the client stops being read. */
const MAX_PENDING_INPUT = 32;
const SSH_CLOSE_GRACE_MS = 3000;
/** How long a gateway-initiated close waits for the client's close handshake. */
const SOCKET_CLOSE_GRACE_MS = 2000;
/** How long a slow client may take to read the last output after a normal end. */
const SOCKET_DRAIN_MS = 60_000;

export interface SessionRegistryLike {
  register(grantId: string, session: LiveSession): () => void;
}

export interface SessionLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}

export interface TerminalSessionOptions {
  ws: WebSocket;
  actor: { username: string; kind: ActorKind };
  target: SshTarget;
  credential: () => Promise<TargetCredential | undefined>;
  grant: { id: string; requestId: string };
  mode: TerminalMode;
  command?: string;
  cols: number;
  rows: number;
  /** The client asked for output as binary frames (protocol/src/terminal.ts). */
  binaryOutput?: boolean;
  ledger: Ledger;
  registry: SessionRegistryLike;
  /** Maps the registry's close message to an end reason (expiry or revocation). */
  closeReasonOf?: (message: string) => 'revoked' | 'expired';
  filters?: FilterFactory;
  log?: SessionLog;
  /** Resolves true while the grant is still usable: checked once registered, closing the revoke race. */
  stillGranted?: () => Promise<boolean>;
  readyTimeoutMs?: number;
  highWaterMark?: number;
  lowWaterMark?: number;
}

const noLog: SessionLog = { info() {}, warn() {} };

export class TerminalSession {
  readonly id = randomUUID();
  private readonly o: TerminalSessionOptions;
  private readonly log: SessionLog;
  private readonly hwm: number;
  private readonly lwm: number;
  private readonly startedAt = Date.now();
  private client: Client | undefined;
  private sshClosed: Promise<void> = Promise.resolve();
  private channel: ClientChannel | undefined;
  private filters: SessionFilters = { input: [], output: [], observers: [] };
  /** Set once the gateway's closing line is out: later target output is dropped. */
  private outputClosed = false;
  private readonly abort = new AbortController();
  private unregister: () => void = () => {};
  private startedLogged = false;
  private ended: SessionSummary | undefined;
  private ending: Promise<void> | undefined;
  private exit: { code: number | null; signal?: string } | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private remotePaused = false;
  private drainPoll: NodeJS.Timeout | undefined;
  private readonly inputPauses = new Set<'drain' | 'queue'>();
  private inputChain: Promise<void> = Promise.resolve();
  private pendingInput = 0;
  private resolveDone!: (s: SessionSummary) => void;
  /** Resolves with the summary once the session has ended and been recorded. */
  readonly done = new Promise<SessionSummary>((r) => {
    this.resolveDone = r;
  });

  constructor(opts: TerminalSessionOptions) {
    this.o = opts;
    this.log = opts.log ?? noLog;
    this.hwm = opts.highWaterMark ?? HIGH_WATER_MARK;
    this.lwm = opts.lowWaterMark ?? LOW_WATER_MARK;
  }

  get info(): SessionInfo {
    return {
      sessionId: this.id,
      targetId: this.o.target.id,
      grantId: this.o.grant.id,
      username: this.o.actor.username,
      mode: this.o.mode,
      ...(this.o.command !== undefined ? { command: this.o.command } : {}),
      cols: this.o.cols,
      rows: this.o.rows,
    };
  }

  get isEnded(): boolean {
    return this.ending !== undefined;
  }

  /** Connects, opens the channel and starts relaying. Refusals and failures are sent to the client; never throws. */
  async start(): Promise<void> {
    const { o } = this;
    this.unregister = o.registry.register(o.grant.id, {
      id: this.id,
      kind: o.mode === 'shell' ? 'ssh' : 'exec',
      username: o.actor.username,
      close: (message) => this.close(o.closeReasonOf?.(message) ?? 'revoked', message),
    });
    try {
      // A revocation between the grant check and the registration above would have missed us.
      if (o.stillGranted && !(await o.stillGranted())) {
        return await this.close('revoked', 'Your access grant is no longer active; the session is closed.');
      }
      this.filters = await (o.filters ?? identityFilters)({
        info: this.info,
        notice: (level, code, message) => this.send({ type: 'notice', level, code, message }),
      });
      if (o.mode === 'exec' && o.command !== undefined) {
        for (const f of this.filters.input) {
          const d = await f.command?.(o.command);
          if (d && d.action === 'block') return await this.refuse(d.code, d.message, TerminalClose.refused);
        }
      }
      if (this.isEnded) return;
      const client = await connectSsh({
        target: o.target,
        credential: await o.credential(),
        ledger: o.ledger,
        actor: o.actor,
        context: { grantId: o.grant.id, sessionId: this.id },
        signal: this.abort.signal,
        ...(o.readyTimeoutMs !== undefined ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
      });
      this.client = client;
      this.sshClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.on('error', (err) => this.fail(`the connection to ${o.target.id} failed: ${err.message}`));
      client.on('close', () => this.fail(`${o.target.id} closed the connection`));
      if (this.isEnded) {
        client.end();
        return;
      }

      // Recorded before anything runs on the target: no ledger entry, no session.
      await o.ledger.append({
        kind: 'session.started',
        actor: o.actor.username,
        actorKind: o.actor.kind,
        subject: o.actor.username,
        targetId: o.target.id,
        requestId: o.grant.requestId,
        data: {
          sessionId: this.id,
          targetId: o.target.id,
          grantId: o.grant.id,
          mode: o.mode,
          ...(o.command !== undefined ? { command: o.command } : {}),
          cols: o.cols,
          rows: o.rows,
        },
      });
      this.startedLogged = true;
      for (const ob of this.filters.observers) await ob.started?.(this.info);
      if (this.isEnded) return;

      const channel = await new Promise<ClientChannel>((resolve, reject) => {
        const cb = (err: Error | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch));
        if (o.mode === 'shell') client.shell({ term: 'xterm-256color', cols: o.cols, rows: o.rows }, cb);
        else client.exec(o.command ?? '', cb);
      });
      this.channel = channel;
      if (this.isEnded) {
        channel.close();
        return;
      }
      this.send({ type: 'ready', sessionId: this.id });
      this.relay(channel);
      this.log.info(
        { sessionId: this.id, targetId: o.target.id, grantId: o.grant.id, mode: o.mode },
        'terminal session started',
      );
    } catch (err) {
      if (this.isEnded) return;
      const e = err as SshConnectError;
      if (e.name === 'SshConnectError') {
        if (e.code === 'aborted') return;
        return await this.refuse(e.code, e.message, TerminalClose.error);
      }
      this.log.warn({ sessionId: this.id, err: (err as Error).message }, 'terminal session failed to start');
      await this.fail(`the session could not start: ${(err as Error).message}`);
    }
  }

  // ---------- client → target ----------

  input(data: Buffer): void {
    if (!this.channel || this.isEnded) return;
    this.pendingInput++;
    if (this.pendingInput > MAX_PENDING_INPUT) this.pauseInput('queue');
    this.inputChain = this.inputChain.then(async () => {
      try {
        let out: Buffer | undefined = data;
        for (const f of this.filters.input) {
          const d = await f.input(out);
          if (d.action === 'block') {
            this.send({ type: 'notice', level: 'warn', code: d.code, message: d.message });
            out = undefined;
            break;
          }
          out = d.data;
        }
        if (out && out.length > 0) this.write(out);
      } catch (err) {
        await this.fail(`an input filter failed: ${(err as Error).message}`);
      } finally {
        this.pendingInput--;
        if (this.pendingInput <= MAX_PENDING_INPUT / 2) this.resumeInput('queue');
      }
    });
  }

  private write(data: Buffer): void {
    const ch = this.channel;
    if (!ch || this.isEnded || !ch.writable) return;
    this.bytesIn += data.length;
    for (const ob of this.filters.observers) ob.input?.(data);
    if (!ch.write(data)) {
      this.pauseInput('drain');
      ch.once('drain', () => this.resumeInput('drain'));
    }
  }

  resize(cols: number, rows: number): void {
    if (!this.channel || this.isEnded) return;
    this.channel.setWindow(rows, cols, 0, 0);
    for (const ob of this.filters.observers) ob.resize?.(cols, rows);
  }

  /** Ctrl-C: typed into a shell's terminal (the PTY turns it into SIGINT), sent as a signal to an exec. */
  interrupt(): void {
    if (!this.channel || this.isEnded) return;
    if (this.o.mode === 'shell') this.input(Buffer.from([0x03]));
    else this.channel.signal('INT');
  }

  /** The client has no more input (exec with piped stdin). */
  eof(): void {
    if (!this.channel || this.isEnded) return;
    this.inputChain = this.inputChain.then(() => {
      this.channel?.end();
    });
  }

  private pauseInput(why: 'drain' | 'queue') {
    if (this.inputPauses.size === 0) this.o.ws.pause();
    this.inputPauses.add(why);
  }

  private resumeInput(why: 'drain' | 'queue') {
    if (!this.inputPauses.delete(why) || this.inputPauses.size > 0) return;
    if (this.o.ws.readyState === this.o.ws.OPEN) this.o.ws.resume();
  }

  // ---------- target → client ----------

  private relay(channel: ClientChannel) {
    const onData = (stream: OutputStream) => (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      this.emitOutput(chunk, stream);
    };
    channel.on('data', onData('stdout'));
    channel.stderr.on('data', onData('stderr'));
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exit = { code: typeof code === 'number' ? code : null, ...(signal ? { signal } : {}) };
    });
    channel.on('close', () => {
      if (this.isEnded) return;
      void this.finish('exit');
    });
    channel.on('error', (err: Error) => this.fail(`the SSH channel failed: ${err.message}`));
  }

  private emitOutput(chunk: Buffer, stream: OutputStream) {
    // After the gateway's closing line the user sees nothing more, so neither does the recording.
    if (this.outputClosed) return;
    let out = chunk;
    for (const f of this.filters.output) out = f.output(out, stream);
    if (out.length === 0) return;
    for (const ob of this.filters.observers) ob.output?.(out, stream);
    this.sendOutput(out, stream, true);
    if (!this.remotePaused && this.observersCongested()) this.pauseRemote();
  }

  /** An observer (the recording) cannot keep up: the target waits for it, like for the socket. */
  private observersCongested(): boolean {
    for (const ob of this.filters.observers) if (ob.congested?.()) return true;
    return false;
  }

  /**
   * Output to the client, in the framing it asked for (a binary frame, or a JSON `output` frame
   * with base64 data). `flow`: the target's own output, subject to backpressure.
   */
  sendOutput(data: Buffer, stream: OutputStream, flow = false): void {
    if (this.o.binaryOutput) {
      // encodeBinaryOutput's format, in place when the masking filter left room for the stream byte.
      this.sendFrame(binaryFrame(BINARY_OUTPUT_STREAMS.indexOf(stream) + 1, data), flow);
    } else this.send({ type: 'output', data: data.toString('base64'), stream }, flow);
  }

  private send(msg: TerminalServerMessage, flow = false) {
    this.sendFrame(JSON.stringify(msg), flow);
  }

  private sendFrame(frame: string | Uint8Array, flow: boolean) {
    const { ws } = this.o;
    if (ws.readyState !== ws.OPEN) return;
    if (flow) corkUntilCallbackEnd(ws);
    ws.send(frame, flow ? this.onSent : undefined);
    if (flow && !this.remotePaused && ws.bufferedAmount > this.hwm) this.pauseRemote();
  }

  private readonly onSent = () => this.checkDrain();

  private pauseRemote() {
    this.remotePaused = true;
    this.channel?.pause();
    this.channel?.stderr.pause();
    // Send completions drive resumption; the poll covers a socket that drains without one.
    this.drainPoll = setInterval(() => this.checkDrain(), 25);
  }

  private checkDrain() {
    if (!this.remotePaused) return;
    const { ws } = this.o;
    if (ws.readyState === ws.OPEN && ws.bufferedAmount > this.lwm) return;
    if (ws.readyState === ws.OPEN && this.observersCongested()) return;
    this.remotePaused = false;
    clearInterval(this.drainPoll);
    if (this.isEnded) return;
    this.channel?.resume();
    this.channel?.stderr.resume();
  }

  // ---------- ending ----------

  /** Gateway-initiated close (revocation, expiry): a visible line, a notice, then everything is closed. */
  close(reason: 'revoked' | 'expired' | 'error', message: string): Promise<void> {
    if (this.ending) return this.ending;
    const line =
      this.o.mode === 'shell'
        ? `\r\n\x1b[1;31m[sallyport] ${message}\x1b[0m\r\n`
        : `\n[sallyport] ${message}\n`;
    this.abort.abort();
    if (this.channel) {
      this.flushOutput();
      // The recording gets the line too, so a replay ends on the same screen the user saw.
      this.deliver(Buffer.from(line), this.o.mode === 'shell' ? 'stdout' : 'stderr');
      this.outputClosed = true;
    }
    this.send({ type: 'notice', level: reason === 'error' ? 'error' : 'warn', code: reason, message });
    return this.finish(reason, message);
  }

  /** The client went away (socket closed). */
  clientClosed(): void {
    if (this.ending) return;
    this.abort.abort();
    void this.finish('client_closed');
  }

  private fail(message: string): Promise<void> {
    if (this.ending) return this.ending;
    this.log.warn({ sessionId: this.id, targetId: this.o.target.id, message }, 'terminal session failed');
    return this.close('error', message);
  }

  /** A session that never started: notice + closed with the refusal's code. */
  private refuse(code: string, message: string, wsCode: number): Promise<void> {
    if (this.ending) return this.ending;
    this.abort.abort();
    this.send({ type: 'notice', level: 'error', code, message });
    this.send({ type: 'closed', code, reason: message });
    this.ending = this.teardown(wsCode, code, true).then(() => this.record('error'));
    return this.ending;
  }

  /** Output that skips the filters (already masked, or the gateway's own): to the observers and the client. */
  private deliver(data: Buffer, stream: OutputStream) {
    for (const ob of this.filters.observers) ob.output?.(data, stream);
    this.sendOutput(data, stream);
  }

  /**
   * Releases the output the filters still hold (the masker keeps a line's trailing digits back)
   * to the observers and the client: the shell guard calls it at Enter, before it reads the line.
   */
  releaseHeldOutput(): void {
    if (!this.outputClosed) this.flushOutput();
  }

  private flushOutput() {
    for (const stream of ['stdout', 'stderr'] as const) {
      for (const f of this.filters.output) {
        const rest = f.flush?.(stream);
        if (rest && rest.length > 0) this.deliver(rest, stream);
      }
    }
  }

  private finish(reason: TerminalEndReason, message?: string): Promise<void> {
    if (this.ending) return this.ending;
    if (reason === 'exit') {
      this.flushOutput();
      const exit = this.exit ?? { code: null };
      this.send({ type: 'exit', code: exit.code, ...(exit.signal ? { signal: exit.signal } : {}) });
    }
    const text =
      message ??
      (reason === 'exit'
        ? this.exit?.signal
          ? `the remote command was killed by SIG${this.exit.signal}`
          : `the remote ${this.o.mode === 'shell' ? 'shell' : 'command'} exited with code ${this.exit?.code ?? 'unknown'}`
        : 'the client closed the session');
    this.send({ type: 'closed', code: reason, reason: text });
    const wsCode =
      reason === 'exit' || reason === 'client_closed'
        ? TerminalClose.normal
        : reason === 'error'
          ? TerminalClose.error
          : TerminalClose.revoked;
    this.ending = this.teardown(wsCode, reason, reason !== 'exit' && reason !== 'client_closed').then(() =>
      this.record(reason),
    );
    return this.ending;
  }

  /**
   * Closes channel, connection and socket. Resolves once the SSH connection is
   * gone and, for a close the gateway decided (revocation, expiry, error,
   * refusal), the socket too: a client that does not finish the close
   * handshake within the grace period is cut off. After a normal end the
   * socket gets all the time it needs to deliver the last output (the close
   * frame queues behind it), bounded by `SOCKET_DRAIN_MS`.
   */
  private async teardown(wsCode: number, wsReason: string, awaitSocket: boolean): Promise<void> {
    clearInterval(this.drainPoll);
    const { ws } = this.o;
    const client = this.client;
    const sshGone = Promise.race([
      this.sshClosed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), SSH_CLOSE_GRACE_MS).unref()),
    ]).then((closed) => {
      if (!closed) client?.destroy();
    });
    try {
      this.channel?.close();
    } catch {
      // already closed
    }
    client?.end();
    const wsGone = new Promise<void>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      const t = setTimeout(
        () => {
          ws.terminate();
          resolve();
        },
        awaitSocket ? SOCKET_CLOSE_GRACE_MS : SOCKET_DRAIN_MS,
      );
      t.unref();
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === ws.OPEN) ws.resume();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)
        ws.close(wsCode, wsReason.slice(0, 100));
    });
    await Promise.all([sshGone, awaitSocket ? wsGone : undefined]);
  }

  private async record(reason: TerminalEndReason) {
    this.unregister();
    const summary: SessionSummary = {
      reason,
      exitCode: this.exit?.code ?? null,
      ...(this.exit?.signal ? { exitSignal: this.exit.signal } : {}),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Date.now() - this.startedAt,
    };
    this.ended = summary;
    if (this.startedLogged) {
      for (const ob of this.filters.observers) {
        await Promise.resolve(ob.ended?.(summary)).catch((err: Error) =>
          this.log.warn(
            { sessionId: this.id, observer: ob.name, err: err.message },
            'session observer failed at end',
          ),
        );
      }
      await this.o.ledger
        .append({
          kind: 'session.ended',
          actor: this.o.actor.username,
          actorKind: this.o.actor.kind,
          subject: this.o.actor.username,
          targetId: this.o.target.id,
          requestId: this.o.grant.requestId,
          data: { sessionId: this.id, grantId: this.o.grant.id, mode: this.o.mode, ...summary },
        })
        .catch((err: Error) =>
          this.log.warn({ sessionId: this.id, err: err.message }, 'could not record session.ended'),
        );
      this.log.info({ sessionId: this.id, ...summary }, 'terminal session ended');
    }
    this.resolveDone(summary);
  }
}
