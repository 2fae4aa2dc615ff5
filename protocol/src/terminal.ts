import { z } from 'zod';
import { TargetId } from './common';

/**
 * The terminal channel (`/api/terminal`): one WebSocket per SSH session.
 *
 * Every frame is a JSON **text** frame; binary frames from the client are
 * refused. Terminal bytes travel base64-encoded in `data` (they are not
 * necessarily UTF-8, and a chunk may end mid-character), in both directions —
 * except when the client opens with `binaryOutput: true`: the gateway then
 * sends each output chunk as a **binary** frame (see `encodeBinaryOutput`), a
 * third of the size and no encoding work on either side. All other frames stay
 * JSON text frames, in order with the output.
 *
 * Order on the wire:
 * 1. Authentication: an `Authorization: Bearer …` header on the upgrade, or
 *    (browsers cannot set headers) a `{type:'auth', token}` frame first —
 *    the same as the event channel `/api/ws`.
 * 2. `open`, exactly once. The gateway checks the grant, connects to the
 *    target and answers `ready {sessionId}`, or a `notice` (level `error`,
 *    with the refusal's code) followed by `closed`.
 * 3. `input` / `resize` / `signal` / `eof` from the client; `output`,
 *    `notice`, and at the end `exit` (when the remote side reported one) and
 *    always `closed` from the gateway, which then closes the socket.
 *
 * `notice` frames are the gateway speaking, never the target: clients show
 * them distinctly (a banner, a coloured line on stderr). Codes are stable:
 * refusals reuse the access service's (`no_grant`, `grant_revoked`,
 * `grant_expired`), plus `exec_only`, `level_mismatch`, `host_key_mismatch`,
 * `auth_failed`, `target_unreachable`, `no_credential`, `bad_frame`, …
 * Later stages add `blocked` and `waiting_for_approval` (guardrails).
 */

/** Base64 text, bounded: 256 KiB of encoded data per frame. */
const Base64 = z
  .string()
  .max(256 * 1024)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

const Cols = z.number().int().min(1).max(1000);
const Rows = z.number().int().min(1).max(1000);

export const TerminalMode = z.enum(['shell', 'exec']);
export type TerminalMode = z.infer<typeof TerminalMode>;

export const TerminalOpen = z
  .object({
    type: z.literal('open'),
    targetId: TargetId,
    grantId: z.string().min(1).max(64),
    mode: TerminalMode,
    /** Required for `exec`, refused for `shell`. Run by the target's login shell. */
    command: z
      .string()
      .min(1)
      .max(32 * 1024)
      .optional(),
    cols: Cols,
    rows: Rows,
    /** Output as binary frames instead of JSON `output` frames (default false). */
    binaryOutput: z.boolean().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.mode === 'exec' && o.command === undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'exec needs a command' });
    }
    if (o.mode === 'shell' && o.command !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'a shell takes no command: use mode exec' });
    }
  });
export type TerminalOpen = z.infer<typeof TerminalOpen>;

export const TerminalClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) }).strict(),
  TerminalOpen,
  /** Keystrokes or piped stdin. */
  z.object({ type: z.literal('input'), data: Base64 }).strict(),
  z.object({ type: z.literal('resize'), cols: Cols, rows: Rows }).strict(),
  /** Ctrl-C: in a shell the gateway types ^C into the terminal; for an exec it sends SIGINT. */
  z.object({ type: z.literal('signal'), name: z.literal('INT') }).strict(),
  /** End of input (exec with piped stdin): the remote command sees EOF. */
  z.object({ type: z.literal('eof') }).strict(),
]);
export type TerminalClientMessage = z.infer<typeof TerminalClientMessage>;

export const NoticeLevel = z.enum(['info', 'warn', 'error']);
export type NoticeLevel = z.infer<typeof NoticeLevel>;

/** Why a terminal channel closed: an end reason of a running session, or the code of a refusal. */
export const TerminalEndReason = z.enum(['exit', 'revoked', 'expired', 'client_closed', 'error']);
export type TerminalEndReason = z.infer<typeof TerminalEndReason>;

export const TerminalServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), sessionId: z.string() }),
  z.object({ type: z.literal('output'), data: z.string(), stream: z.enum(['stdout', 'stderr']) }),
  z.object({ type: z.literal('notice'), level: NoticeLevel, code: z.string(), message: z.string() }),
  /** The remote command's exit status; `signal` (e.g. `INT`) when it was killed by one. */
  z.object({ type: z.literal('exit'), code: z.number().int().nullable(), signal: z.string().optional() }),
  /**
   * Always the last frame. `code` is stable: a `TerminalEndReason` for a session
   * that ran, or the refusal's code (`no_grant`, `host_key_mismatch`, …) for one
   * that never started. `reason` is for people.
   */
  z.object({ type: z.literal('closed'), code: z.string(), reason: z.string() }),
]);
export type TerminalServerMessage = z.infer<typeof TerminalServerMessage>;

/**
 * A binary output frame (`binaryOutput: true`): one byte for the stream (1 stdout, 2 stderr), then
 * the output bytes as they are.
 */
export const BINARY_OUTPUT_STREAMS = ['stdout', 'stderr'] as const;

export function encodeBinaryOutput(stream: 'stdout' | 'stderr', data: Uint8Array): Uint8Array {
  const frame = new Uint8Array(data.length + 1);
  frame[0] = stream === 'stdout' ? 1 : 2;
  frame.set(data, 1);
  return frame;
}

/** The stream and bytes of a binary output frame (a view, not a copy); null if it is not one. */
export function decodeBinaryOutput(
  frame: Uint8Array,
): { stream: 'stdout' | 'stderr'; data: Uint8Array } | null {
  const stream = BINARY_OUTPUT_STREAMS[frame[0]! - 1];
  return stream === undefined ? null : { stream, data: frame.subarray(1) };
}

/** WebSocket close codes of the terminal channel (besides the event channel's `WsClose`). */
export const TerminalClose = {
  normal: 1000,
  error: 1011,
  unauthorized: 4401,
  refused: 4403,
  /** The grant was revoked or expired under the session. */
  revoked: 4410,
  tooManyBadFrames: 4400,
  authTimeout: 4408,
} as const;

/** Errors of the SSH layer a client may want to tell apart (in `notice.code` and `closed.code`). */
export const SshErrorCode = z.enum([
  'host_key_mismatch',
  'auth_failed',
  'target_unreachable',
  'no_credential',
  'ssh_error',
]);
export type SshErrorCode = z.infer<typeof SshErrorCode>;
