// Shell guardrail rules and their evaluation over an analysed command line (see analyze.ts).
//
// A rule matches a simple command when EVERY criterion it gives matches; inside one list, ANY
// value may match. An empty or missing criterion is "not given"; a rule with none matches every
// command (a catch-all "review everything").
//
// - commands: names with `*` wildcards, case-sensitive (Unix command names are). A pattern without
//   `/` is matched against the basename (`rm` matches `rm`, `/bin/rm`, `\rm`, `r''m`); a pattern
//   with `/` against the path as written. `<dynamic>` matches commands whose name is not a literal
//   word. A globbed name (`/bin/r?`) matches every pattern its glob could expand to (`r?` ~ `rm`).
// - args: ONE regular expression, tested (unanchored) against the arguments joined by single
//   spaces, after quote removal (`rm "-rf" '/'` → `-rf /`); dynamic parts are kept as written
//   (`$HOME`, `$(pwd)`). Checked when the configuration is loaded: invalid syntax, more than
//   MAX_ARGS_PATTERN characters and nested unbounded quantifiers (`(a+)+`, the classic
//   catastrophic-backtracking shape) are refused.
// - constructs: construct names with `*` wildcards, tested against the command's constructs
//   (`pipe-to-shell`, `redirect-to-file:/dev/sd*`, …; see docs/guardrails-shell.md).
//
// Verdict: the strictest action on the line wins (block > review > allow); the first command with
// that action is named, with the first rule (in list order) that gave it. A line that does not
// parse is blocked: the gateway never sends a line it could not read.

import { z } from 'zod';
import { DYNAMIC_COMMAND, type ShellAnalysis, type SimpleCommand } from './analyze';

/** Longest accepted `args` pattern. */
export const MAX_ARGS_PATTERN = 512;

/** Why a pattern is refused, or undefined when it is acceptable. */
export function unsafePatternReason(source: string): string | undefined {
  if (source.length > MAX_ARGS_PATTERN) return `longer than ${MAX_ARGS_PATTERN} characters`;
  try {
    new RegExp(source);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (hasNestedQuantifier(source)) {
    return 'a quantified group contains an unbounded quantifier (catastrophic backtracking)';
  }
  return undefined;
}

/** True for `(…x+…)+`, `(…x*…)*`, `(…x{2,}…){1,}` and the like, at any depth. */
function hasNestedQuantifier(source: string): boolean {
  const stack: boolean[] = []; // per open group: contains an unbounded quantifier
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source.charAt(i);
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push(false);
    else if (c === ')') {
      const inner = stack.pop() ?? false;
      const unboundedAfter = unboundedQuantifierAt(source, i + 1);
      if (inner && unboundedAfter) return true;
      if ((inner || unboundedAfter) && stack.length > 0) stack[stack.length - 1] = true;
    } else if (unboundedQuantifierAt(source, i) && stack.length > 0) {
      stack[stack.length - 1] = true;
    }
  }
  return false;
}

function unboundedQuantifierAt(source: string, i: number): boolean {
  const c = source.charAt(i);
  return c === '*' || c === '+' || (c === '{' && /^\{[0-9]*,\}/.test(source.slice(i)));
}

export const ShellRuleSchema = z.object({
  name: z.string().min(1),
  action: z.enum(['block', 'review']),
  message: z.string().optional(),
  match: z.object({
    /** Command names (basename, or path when the pattern has a `/`), `*` wildcard, `<dynamic>`. */
    commands: z.array(z.string().min(1)).optional(),
    /** A regular expression tested against the arguments joined by spaces. */
    args: z
      .string()
      .min(1)
      .superRefine((source, ctx) => {
        const reason = unsafePatternReason(source);
        if (reason) ctx.addIssue({ code: 'custom', message: `invalid args pattern: ${reason}` });
      })
      .optional(),
    /** Construct names, `*` wildcard: 'pipe-to-shell', 'redirect-to-file:/etc/*', … */
    constructs: z.array(z.string().min(1)).optional(),
  }),
});
export type ShellRule = z.infer<typeof ShellRuleSchema>;

export interface ShellVerdict {
  action: 'allow' | 'block' | 'review';
  rule?: string;
  message: string;
  /** The command that decided the verdict (absent for allow and parse errors). */
  command?: SimpleCommand;
  /** Parse errors only: 1-based character position reported by the parser. */
  position?: number;
  /** Parse errors only: the line is incomplete (open quote, `if` without `fi`, here-document). */
  incomplete?: boolean;
}

/** Rule name used in the verdict when the line does not parse. */
export const SHELL_SYNTAX_ERROR_RULE = 'syntax-error';

const SYSTEM_DIRS = 'bin|boot|dev|etc|home|lib|lib32|lib64|libx32|opt|proc|root|run|sbin|srv|sys|usr|var';
/** `/`, `//`, `/.`, `/*`, `/etc`, `/usr/*` … as a whole argument. */
const ROOT = `(?:/[/.]*\\*?|/+(?:${SYSTEM_DIRS})/*\\*?)`;
/** ROOT, plus the home directory: `~`, `~/`, `~/*`, `~user`, `$HOME`, `${HOME}/*`. */
const ROOT_OR_HOME = `(?:${ROOT}|~[A-Za-z0-9._-]*/*\\*?|\\$\\{?HOME\\}?/*\\*?)`;
const ARG_END = '(?:\\s|$)';
const hasArg = (alternatives: string) => `(?=(?:.*\\s)?(?:${alternatives})${ARG_END})`;
const RECURSIVE_OR_FORCE = '-[A-Za-z]*[rRf][A-Za-z]*|--recursive|--force';
const BLOCK_DEVICE = '/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|md|dm-|mapper/|disk/|nbd|loop)';

/** Files a shell reads at start-up: what they define (functions, aliases, PATH) the guard never sees. */
const STARTUP_FILES = [
  '*.bashrc',
  '*.bash_profile',
  '*.bash_login',
  '*.profile',
  '*.zshrc',
  '*.zshenv',
  '*.zprofile',
  '*.inputrc',
  '/etc/profile*',
  '/etc/bash.bashrc',
  '/etc/environment',
];

export const DEFAULT_SHELL_RULES: ShellRule[] = [
  // ---- block: destroys the machine, its disks, its access control, or runs unseen code ------
  {
    name: 'rm-root',
    action: 'block',
    message: 'rm -r/-f on /, a top-level system directory or a home directory is not allowed.',
    match: { commands: ['rm'], args: `^${hasArg(RECURSIVE_OR_FORCE)}${hasArg(ROOT_OR_HOME)}` },
  },
  {
    name: 'mkfs',
    action: 'block',
    message: 'Creating or wiping file systems is not allowed through the gateway.',
    match: { commands: ['mkfs', 'mkfs.*', 'mke2fs', 'mkdosfs', 'wipefs'] },
  },
  {
    name: 'dd-to-device',
    action: 'block',
    message: 'dd onto a block device is not allowed.',
    match: { commands: ['dd'], args: `(?:^|\\s)of=${BLOCK_DEVICE}` },
  },
  {
    name: 'write-to-device',
    action: 'block',
    message: 'Writing to a block device is not allowed.',
    match: {
      constructs: ['sd', 'hd', 'vd', 'xvd', 'nvme', 'mmcblk', 'md', 'dm-', 'mapper/', 'disk/'].map(
        (d) => `redirect-to-file:/dev/${d}*`,
      ),
    },
  },
  {
    name: 'wipe-device',
    action: 'block',
    message: 'Shredding or discarding a block device is not allowed.',
    match: { commands: ['shred', 'blkdiscard'], args: `(?:^|\\s)${BLOCK_DEVICE}` },
  },
  {
    name: 'shutdown',
    action: 'block',
    message: 'Shutting down or rebooting the target is not allowed.',
    match: { commands: ['shutdown', 'reboot', 'halt', 'poweroff', 'kexec'] },
  },
  {
    name: 'shutdown-systemctl',
    action: 'block',
    message: 'Shutting down or rebooting the target is not allowed.',
    match: {
      commands: ['systemctl'],
      args: `(?:^|\\s)(?:poweroff|reboot|halt|kexec|soft-reboot|rescue|emergency)${ARG_END}`,
    },
  },
  {
    name: 'shutdown-init',
    action: 'block',
    message: 'Changing the run level (init 0/1/6) is not allowed.',
    match: { commands: ['init', 'telinit'], args: `^[016sS]$` },
  },
  {
    name: 'fork-bomb',
    action: 'block',
    message: 'A function that starts copies of itself in a pipeline or in the background is a fork bomb.',
    match: { constructs: ['fork-bomb'] },
  },
  {
    name: 'pipe-to-shell',
    action: 'block',
    message:
      'Feeding a shell or interpreter code it reads from a pipe, a process substitution or an unseen here-document is not allowed: the gateway cannot see that code. Download the script, read it, then run it.',
    match: { constructs: ['pipe-to-shell'] },
  },
  {
    name: 'chmod-777-root',
    action: 'block',
    message: 'chmod 777 on / or a top-level system directory is not allowed.',
    match: { commands: ['chmod'], args: `^${hasArg('0?777|[augo]*[+=]rwx[st]*')}${hasArg(ROOT_OR_HOME)}` },
  },
  {
    name: 'recursive-permissions-root',
    action: 'block',
    message: 'Recursive chmod/chown/chgrp on / or a top-level system directory is not allowed.',
    match: {
      commands: ['chmod', 'chown', 'chgrp'],
      args: `^${hasArg('-[A-Za-z]*R[A-Za-z]*|--recursive')}${hasArg(ROOT)}`,
    },
  },
  {
    name: 'firewall-flush',
    action: 'block',
    message: 'Flushing or disabling the firewall is not allowed.',
    match: {
      commands: ['iptables', 'ip6tables', 'iptables-*', 'ip6tables-*', 'nft'],
      args: `(?:^|\\s)(?:-F|--flush|flush\\s+ruleset)${ARG_END}`,
    },
  },
  {
    name: 'firewall-disable',
    action: 'block',
    message: 'Flushing or disabling the firewall is not allowed.',
    match: { commands: ['ufw'], args: `(?:^|\\s)(?:disable|reset)${ARG_END}` },
  },
  {
    name: 'overwrite-auth-files',
    action: 'block',
    message: 'Overwriting the account, group or sudo databases with a redirection is not allowed.',
    match: {
      constructs: ['passwd', 'shadow', 'group', 'gshadow', 'sudoers'].map(
        (f) => `redirect-to-file:/etc/${f}`,
      ),
    },
  },
  {
    name: 'root-account',
    action: 'block',
    message: 'Deleting the root account or changing its password is not allowed.',
    match: { commands: ['userdel', 'deluser', 'passwd'], args: `(?:^|\\s)root${ARG_END}` },
  },
  // ---- review: privileged, disruptive or not statically analysable; an approver sees the line --
  {
    name: 'sudo',
    action: 'review',
    message: 'Running a command as another user (sudo, su, doas, pkexec) needs approval.',
    match: { commands: ['sudo', 'sudoedit', 'doas', 'pkexec', 'su', 'runuser'] },
  },
  {
    name: 'service-stop',
    action: 'review',
    message: 'Stopping, restarting, disabling or masking a service needs approval.',
    match: {
      commands: ['systemctl', 'service'],
      args: `(?:^|\\s)(?:stop|restart|disable|mask|kill|isolate|try-restart|reload-or-restart|condrestart|force-reload)${ARG_END}`,
    },
  },
  {
    name: 'kill-9',
    action: 'review',
    message: 'kill -9 needs approval.',
    match: {
      commands: ['kill'],
      args: `(?:^|\\s)(?:-9|-KILL|-SIGKILL|-s\\s+(?:9|KILL|SIGKILL)|-n\\s+9|--signal[=\\s](?:9|KILL|SIGKILL))${ARG_END}`,
    },
  },
  {
    name: 'kill-by-name',
    action: 'review',
    message: 'Killing processes by name (pkill, killall) needs approval.',
    match: { commands: ['pkill', 'killall', 'killall5'] },
  },
  {
    name: 'download-to-file',
    action: 'review',
    message: 'Downloading to a file or uploading a file with curl/wget needs approval.',
    match: {
      commands: ['curl', 'wget'],
      // -o FILE, -O, -T FILE, --output…, --upload-file…; not output to /dev/null or to stdout (`-`).
      args: `(?:^|\\s)(?:-[A-Za-z]*[oOT]|--(?:output|output-document|remote-name|remote-name-all|upload-file|post-file))(?:=|\\s)?(?!\\s|/dev/null${ARG_END}|-${ARG_END})`,
    },
  },
  {
    name: 'download-redirect',
    action: 'review',
    message: 'Saving a download to a file needs approval.',
    match: { commands: ['curl', 'wget'], constructs: ['redirect-to-file'] },
  },
  {
    name: 'download-piped',
    action: 'review',
    message: 'Piping a download into another command needs approval.',
    match: { commands: ['curl', 'wget'], constructs: ['piped-output'] },
  },
  {
    name: 'copy-out',
    action: 'review',
    message: 'Copying files to another host (scp/rsync to a remote destination) needs approval.',
    match: {
      commands: ['scp', 'rsync'],
      args: `(?:^|\\s)(?:(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+:[^\\s]*|rsync://[^\\s]+)$`,
    },
  },
  {
    name: 'crontab-remove',
    action: 'review',
    message: 'crontab -r removes every cron job of the user and needs approval.',
    match: { commands: ['crontab'], args: `(?:^|\\s)-[A-Za-z]*r` },
  },
  {
    name: 'startup-file-write',
    action: 'review',
    message:
      'Writing to a shell startup file (.bashrc, .profile, /etc/profile.d, …) changes what later commands mean and needs approval.',
    match: {
      constructs: STARTUP_FILES.map((f) => `redirect-to-file:${f}`),
    },
  },
  {
    name: 'startup-file-tee',
    action: 'review',
    message:
      'Writing to a shell startup file (.bashrc, .profile, /etc/profile.d, …) changes what later commands mean and needs approval.',
    match: {
      commands: ['tee'],
      args: `(?:^|\\s)\\S*(?:\\.bashrc|\\.bash_profile|\\.bash_login|\\.profile|\\.zshrc|\\.zshenv|\\.zprofile|\\.inputrc|/etc/profile\\S*|/etc/bash\\.bashrc|/etc/environment)${ARG_END}`,
    },
  },
  {
    name: 'find-delete-root',
    action: 'review',
    message: 'find -delete starting at / or a top-level system directory needs approval.',
    match: { commands: ['find'], args: `^${hasArg(ROOT)}${hasArg('-delete')}` },
  },
  {
    name: 'rm-dynamic-target',
    action: 'review',
    message: 'rm -r/-f on a path computed at run time ($VAR, $(…)) needs approval.',
    match: { commands: ['rm'], args: `(?:^|\\s)(?:${RECURSIVE_OR_FORCE})`, constructs: ['dynamic-args'] },
  },
  {
    name: 'history-expansion',
    action: 'review',
    message:
      'History expansion (!!, !cmd, !$, ^old^new) runs text from the shell history that the gateway cannot see and needs approval.',
    match: { constructs: ['history-expansion'] },
  },
  {
    name: 'history-reexecute',
    action: 'review',
    message: 'fc edits and re-runs commands from the shell history and needs approval.',
    match: { commands: ['fc'], args: `^(?!(?:.*\\s)?-[A-Za-z]*l)` },
  },
  {
    name: 'dynamic-command',
    action: 'review',
    message:
      'A command whose name is computed at run time ($X, $(…), a glob) cannot be checked and needs approval.',
    match: { constructs: ['dynamic-command-name'] },
  },
  {
    name: 'eval',
    action: 'review',
    message: 'eval needs approval.',
    match: { constructs: ['eval'] },
  },
  {
    name: 'shell-c',
    action: 'review',
    message:
      'Running a command string through another shell (sh -c, bash -c, su -c, sudo -s) needs approval.',
    match: { constructs: ['shell-c'] },
  },
  {
    name: 'interpreter-code',
    action: 'review',
    message:
      'Inline interpreter code (python -c, perl -e, node -e, ruby -e, php -r) cannot be checked and needs approval.',
    match: { constructs: ['interpreter-code'] },
  },
  {
    name: 'builtin-override',
    action: 'review',
    message: 'Changing how command names resolve (hash -p, enable -f/-n) needs approval.',
    match: { commands: ['hash', 'enable'], args: `(?:^|\\s)-[A-Za-z]*[pfn]` },
  },
];

const RANK = { allow: 0, review: 1, block: 2 } as const;

export function evaluateCommandLine(analysis: ShellAnalysis, rules: ShellRule[]): ShellVerdict {
  if (!analysis.ok) {
    const { message, position, incomplete } = analysis.error;
    return {
      action: 'block',
      rule: SHELL_SYNTAX_ERROR_RULE,
      message: position === undefined ? message : `${message} (at position ${position})`,
      ...(position === undefined ? {} : { position }),
      ...(incomplete ? { incomplete: true } : {}),
    };
  }
  const { commands } = analysis;
  let best: { command: SimpleCommand; rule: ShellRule } | undefined;
  for (const command of commands) {
    const rule = strictestRule(command, rules);
    if (rule && (!best || RANK[rule.action] > RANK[best.rule.action])) best = { command, rule };
  }
  if (!best) {
    return {
      action: 'allow',
      message: commands.length === 0 ? 'empty line' : `${commands.length} command(s) allowed`,
    };
  }
  const { command, rule } = best;
  const detail = rule.message ?? `matched rule "${rule.name}"`;
  return { action: rule.action, rule: rule.name, message: `${detail} (command: ${command.text})`, command };
}

/** The first rule with the strictest action among the rules matching this command. */
export function strictestRule(command: SimpleCommand, rules: ShellRule[]): ShellRule | undefined {
  let best: ShellRule | undefined;
  const joined = command.args.join(' ');
  for (const rule of rules) {
    if ((!best || RANK[rule.action] > RANK[best.action]) && ruleMatches(rule, command, joined)) best = rule;
  }
  return best;
}

export function ruleMatches(rule: ShellRule, command: SimpleCommand, joinedArgs?: string): boolean {
  const { commands, args, constructs } = rule.match;
  if (given(commands) && !commands.some((p) => commandMatches(p, command))) return false;
  if (args !== undefined && !argsPattern(args).test(joinedArgs ?? command.args.join(' '))) return false;
  if (given(constructs) && !constructs.some((p) => command.constructs.some((c) => glob(p).test(c)))) {
    return false;
  }
  return true;
}

function commandMatches(pattern: string, command: SimpleCommand): boolean {
  if (pattern.includes('/')) return command.path !== undefined && glob(pattern).test(command.path);
  if (glob(pattern).test(command.name)) return true;
  // `/bin/r?` could be `rm`: a globbed name matches every literal name its glob matches.
  if (command.namePattern !== undefined && pattern !== DYNAMIC_COMMAND) {
    return shellGlob(command.namePattern).test(pattern.replaceAll('*', ''));
  }
  return false;
}

function given(list: string[] | undefined): list is string[] {
  return list !== undefined && list.length > 0;
}

const patternCache = new Map<string, RegExp>();

function argsPattern(source: string): RegExp {
  let re = patternCache.get(source);
  if (!re) {
    const reason = unsafePatternReason(source);
    if (reason) throw new Error(`invalid args pattern ${JSON.stringify(source)}: ${reason}`);
    re = new RegExp(source);
    patternCache.set(source, re);
  }
  return re;
}

const globCache = new Map<string, RegExp>();

/** Rule glob: only `*` is special. */
function glob(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (!re) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${source}$`);
    globCache.set(pattern, re);
  }
  return re;
}

/** A shell glob (`*`, `?`, `[…]`, extglob groups as "anything") as a regular expression. */
function shellGlob(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) source += '\\[';
      else {
        const body = pattern
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = close;
      }
    } else if (c === '(') {
      // @(a|b), +(…), !(…): matched loosely as "anything" (the name may be any of them).
      const close = pattern.indexOf(')', i);
      source = `${source.replace(/[@+!]$|\\[@+!]$/, '')}.*`;
      i = close < 0 ? pattern.length : close;
    } else source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  try {
    return new RegExp(`^${source}$`);
  } catch {
    return /^.*$/; // an odd bracket expression: assume it could be anything
  }
}
