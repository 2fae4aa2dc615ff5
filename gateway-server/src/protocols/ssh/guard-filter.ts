/**
 * Shell guardrails as an `InputFilter` (docs/guardrails-shell.md, "Using it from the session layer").
 *
 * - **exec**: the command string is evaluated before the channel opens (exact): allow runs it,
 *   block refuses the session (`blocked`, nothing reaches the target), review holds it until an
 *   approver decides; an approval is consumed for exactly that text.
 * - **shell**: keys are forwarded as they come; each Enter is held until the submitted line is
 *   decided (line editor, screen fallback for uncertain lines). Block → no Enter, Ctrl-E Ctrl-U to
 *   the target. Review → the Enter waits; on approval it is sent if the screen line still equals
 *   the approved text. Ctrl-X Ctrl-E (edit-and-execute, no Enter follows) is refused.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ReviewService } from '../../access/reviews';
import type { Actor } from '../../access/service';
import type { Ledger } from '../../audit';
import type { GrantRow } from '../../store/tables';
import type { CommandDecision, FilterContext, InputDecision, InputFilter, SessionObserver } from './filters';
import {
  analyzeCommandLine,
  createLineEditor,
  createScreenLineReader,
  DEFAULT_SHELL_RULES,
  evaluateCommandLine,
  initShellParser,
  type ShellRule,
  type ShellVerdict,
} from './guard';

let parserReady: Promise<void> | undefined;
const ensureParser = () => {
  parserReady ??= initShellParser().then(() => undefined);
  return parserReady;
};

/** End of line, then kill to its start: clears the remote readline buffer. */
const CLEAR_LINE = '\x05\x15';
/** Abort a pending Ctrl-X prefix, then clear the line. */
const ABORT_AND_CLEAR = `\x07${CLEAR_LINE}`;

export interface ShellGuardOptions {
  ctx: FilterContext;
  ledger: Ledger;
  reviews?: ReviewService | undefined;
  grant: GrantRow;
  requester: Actor;
  rules?: ShellRule[];
  /**
   * Re-enters the session's input path with `marker` (an empty buffer the guard recognises), so a
   * decision that arrives later (a review) can release the held Enter without a key from the user.
   */
  kick: (marker: Buffer) => void;
  /**
   * Releases output the masker still holds (the echo of a line's trailing digits waits for more
   * text, as it could be the start of a card number). Called at Enter before the screen is read:
   * without it the line on the screen lacks those characters, and a reviewed line ending in a
   * digit could never match its approval (nor would a block rule see them).
   */
  releaseHeldOutput?: () => void;
}

export interface ShellGuard {
  input: InputFilter;
  observer: SessionObserver;
}

const short = (text: string, max = 200) => (text.length > max ? `${text.slice(0, max)}…` : text);

export async function createShellGuard(o: ShellGuardOptions): Promise<ShellGuard> {
  await ensureParser();
  const rules = o.rules ?? DEFAULT_SHELL_RULES;
  const { info } = o.ctx;
  const interactive = info.mode === 'shell';

  const verdictOf = (line: string, isInteractive: boolean): ShellVerdict =>
    evaluateCommandLine(analyzeCommandLine(line, { interactive: isInteractive }), rules);

  const logBlocked = (text: string, v: ShellVerdict) =>
    o.ledger.append({
      kind: 'ssh.blocked',
      actor: o.requester.username,
      actorKind: o.requester.kind,
      subject: o.requester.username,
      targetId: info.targetId,
      requestId: o.grant.request_id,
      data: {
        sessionId: info.sessionId,
        grantId: info.grantId,
        mode: info.mode,
        text: short(text, 4096),
        rule: v.rule ?? null,
        message: v.message,
      },
    });

  const blockedMessage = (text: string, v: ShellVerdict) =>
    `blocked by rule ${v.rule ?? 'guard'}: ${v.message} — not run: ${short(text)}`;

  /** Holds `text` for review; resolves true when approved and consumed for exactly that text. */
  async function review(
    text: string,
    v: ShellVerdict,
  ): Promise<{ ok: true; id: string } | { ok: false; message: string }> {
    if (!o.reviews)
      return { ok: false, message: `rule ${v.rule} needs a review, and reviews are not available` };
    const { review: r, outcome } = await o.reviews.hold({
      kind: 'command',
      sessionId: info.sessionId,
      grant: o.grant,
      requester: o.requester,
      text,
      rule: v.rule ?? 'review',
      message: v.message,
      details: {
        mode: info.mode,
        targetId: info.targetId,
        ...(v.command ? { command: v.command.name } : {}),
      },
    });
    pendingReview = r.id;
    o.ctx.notice(
      'info',
      'waiting_for_approval',
      `rule ${v.rule}: ${v.message} — waiting for approval (review ${r.id}): ${short(text)}`,
    );
    const result = await outcome;
    pendingReview = undefined;
    if (result.status !== 'approved') {
      const why = result.review.decisionReason ? `: ${result.review.decisionReason}` : '';
      return { ok: false, message: `review ${r.id} ${result.status}${why} — not run: ${short(text)}` };
    }
    return { ok: true, id: r.id };
  }

  let pendingReview: string | undefined;

  // ---------- exec ----------

  async function command(cmd: string): Promise<CommandDecision> {
    const v = verdictOf(cmd, false);
    if (v.action === 'allow') return { action: 'allow' };
    if (v.action === 'block') {
      await logBlocked(cmd, v);
      return { action: 'block', code: 'blocked', message: blockedMessage(cmd, v) };
    }
    const r = await review(cmd, v);
    if (!r.ok) return { action: 'block', code: 'review_denied', message: r.message };
    if (!(await o.reviews!.consume(r.id, cmd, o.requester)))
      return {
        action: 'block',
        code: 'review_denied',
        message: 'the approval could not be used for this command',
      };
    o.ctx.notice('info', 'approved', `approved: ${short(cmd)}`);
    return { action: 'allow' };
  }

  // ---------- shell ----------

  const screen = interactive ? createScreenLineReader({ cols: info.cols, rows: info.rows }) : undefined;
  const editor = createLineEditor({ onLineStart: () => screen?.markLineStart() });
  const decoder = new StringDecoder('utf8');
  let lastOutputAt = 0;
  /** Bytes the next input() call sends first (a released Enter, a Ctrl-U). */
  let prefix = '';
  /** Input not yet processed because a review was pending when it arrived. */
  let held = '';
  let waiting: Promise<void> | undefined;
  const markers = new WeakSet<Buffer>();

  const kick = () => {
    const m = Buffer.alloc(0);
    markers.add(m);
    o.kick(m);
  };

  /** Waits until the output has been quiet a moment (the echo of the last keys), then reads the line. */
  async function screenLine(): Promise<string> {
    o.releaseHeldOutput?.();
    const until = Date.now() + 400;
    while (Date.now() < until && Date.now() - lastOutputAt < 40) await new Promise((r) => setTimeout(r, 20));
    return (await screen?.readLine()) ?? '';
  }

  const refuse = (code: string, message: string) => o.ctx.notice('warn', code, message);

  /**
   * Processes text: returns the bytes to send now. Stops at a line under review: the rest is
   * kept in `held` and processed after the decision.
   */
  async function process(text: string): Promise<string> {
    let out = '';
    let line = ''; // keys of the current line in this chunk, not yet in `out`
    let first = true;
    const chars = [...text];
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i]!;
      const submitted = editor.feed(ch);
      if (editor.uncertainReasons.includes('editor')) {
        editor.reset();
        out += line + ABORT_AND_CLEAR;
        line = '';
        refuse(
          'editor_refused',
          'Ctrl-X Ctrl-E (edit and run in $EDITOR) is not allowed through the gateway',
        );
        continue;
      }
      if (submitted.length === 0) {
        line += ch;
        continue;
      }
      const s = submitted[0]!;
      const typedHere = line.length > 0;
      out += line;
      line = '';
      let text = s.line;
      if (s.uncertain) {
        if (!first || typedHere) {
          refuse(
            'uncertain_line',
            `the gateway cannot tell what this line is (${s.reasons.join(', ')}); type it out and press Enter on its own`,
          );
          out += CLEAR_LINE;
          first = false;
          continue;
        }
        if (screen?.isAlternateScreen()) {
          refuse('uncertain_line', 'the gateway cannot read the command line from the screen');
          out += CLEAR_LINE;
          continue;
        }
        text = await screenLine();
      }
      first = false;
      const v = verdictOf(text, true);
      if (v.action === 'allow') {
        out += ch;
        continue;
      }
      if (v.action === 'block') {
        await logBlocked(text, v);
        refuse('blocked', blockedMessage(text, v));
        out += CLEAR_LINE;
        continue;
      }
      // Review: what is typed goes out now; the Enter waits for the decision.
      held = chars.slice(i + 1).join('');
      const enter = ch;
      waiting = (async () => {
        let release = CLEAR_LINE;
        try {
          const r = await review(text, v);
          if (!r.ok) refuse('review_denied', r.message);
          else {
            const onScreen = await screenLine();
            if (onScreen !== text) {
              refuse('line_changed', 'the line on the screen is no longer the approved text; not run');
            } else if (!(await o.reviews!.consume(r.id, text, o.requester))) {
              refuse('review_denied', 'the approval could not be used for this line');
            } else {
              o.ctx.notice('info', 'approved', `approved: ${short(text)}`);
              release = enter;
            }
          }
        } catch (err) {
          refuse('review_failed', `the review failed: ${(err as Error).message}`);
        }
        prefix += release;
        kick();
      })();
      return out;
    }
    return out + line;
  }

  async function input(data: Buffer): Promise<InputDecision> {
    if (!interactive) return { action: 'allow', data };
    const isMarker = markers.has(data);
    if (waiting) {
      await waiting;
      waiting = undefined;
    }
    let text = held + (isMarker ? '' : decoder.write(data));
    held = '';
    let out = prefix;
    prefix = '';
    if (screen?.isAlternateScreen()) {
      // A full-screen program owns the terminal: there is no command line to check.
      editor.reset();
      out += text;
      text = '';
    }
    if (text) out += await process(text);
    return { action: 'allow', data: Buffer.from(out, 'utf8') };
  }

  return {
    input: { name: 'shell-guard', command, input },
    observer: {
      name: 'shell-guard',
      output(data) {
        lastOutputAt = Date.now();
        void screen?.feedOutput(data);
      },
      resize(cols, rows) {
        screen?.resize(cols, rows);
      },
      async ended() {
        const id = pendingReview;
        if (id && o.reviews) await o.reviews.cancel(id, 'the session ended').catch(() => undefined);
        screen?.dispose();
      },
    },
  };
}
