// Output as binary frames (`binaryOutput: true` on open), against a real OpenSSH sshd: output
// arrives as binary frames (stream byte + bytes), masked like JSON output, in order with the JSON
// frames around it; a client that does not ask gets JSON `output` frames as before.
import { decodeBinaryOutput, type TerminalServerMessage } from '@sallyport/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type RunningSshd, startSshd } from '../../src/devstack';
import { startTestGateway, type TestGateway } from '../rig/gateway';
import { hasSshd } from '../rig/sshd';

const REASON = 'checking the binary output frames of the terminal channel';
const CARD = '4111 1111 1111 1111';
const CARD_MASKED = '•••• •••• •••• 1111';

let sshd: RunningSshd;
let t: TestGateway;
let token = '';

type Event =
  | { kind: 'output'; stream: 'stdout' | 'stderr'; data: Buffer }
  | { kind: 'json'; frame: TerminalServerMessage };

/** Runs one exec session; returns every frame in order (binary output decoded). */
async function runExec(command: string, binaryOutput: boolean) {
  const out = await t
    .client(token)
    .requestAccess({ targetId: 'box', level: 'exec-only', duration: '1h', reason: REASON });
  if (out.outcome !== 'granted') throw new Error(`expected a grant, got ${out.outcome}`);
  const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/api/terminal`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const events: Event[] = [];
  let binaryFrames = 0;
  ws.on('message', (d: Buffer, isBinary: boolean) => {
    if (isBinary) {
      binaryFrames++;
      const o = decodeBinaryOutput(d);
      if (o === null) throw new Error('not an output frame');
      events.push({ kind: 'output', stream: o.stream, data: Buffer.from(o.data) });
      return;
    }
    const frame = JSON.parse(d.toString('utf8')) as TerminalServerMessage;
    if (frame.type === 'output')
      events.push({ kind: 'output', stream: frame.stream, data: Buffer.from(frame.data, 'base64') });
    else events.push({ kind: 'json', frame });
  });
  ws.once('open', () =>
    ws.send(
      JSON.stringify({
        type: 'open',
        targetId: 'box',
        grantId: out.grant.id,
        mode: 'exec',
        command,
        cols: 80,
        rows: 24,
        ...(binaryOutput ? { binaryOutput: true } : {}),
      }),
    ),
  );
  await new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const text = (stream: 'stdout' | 'stderr') =>
    Buffer.concat(
      events.flatMap((e) => (e.kind === 'output' && e.stream === stream ? [e.data] : [])),
    ).toString('utf8');
  const types = events.map((e) => (e.kind === 'json' ? e.frame.type : 'output'));
  return { events, types, binaryFrames, stdout: text('stdout'), stderr: text('stderr') };
}

describe.skipIf(!hasSshd)('binary output frames', () => {
  beforeAll(async () => {
    sshd = await startSshd();
    t = await startTestGateway({
      config: {
        targets: [
          {
            id: 'box',
            kind: 'ssh',
            host: sshd.host,
            port: sshd.port,
            user: sshd.user,
            hostKey: sshd.hostPublicKey,
            labels: { env: 'prod' },
            credential: { privateKey: sshd.clientPrivateKey },
          },
        ],
        access: {
          rules: [
            {
              name: 'prod-ssh-auto',
              requesters: { groups: ['developers'] },
              targets: { labels: { env: 'prod' } },
              levels: ['shell', 'exec-only'],
              maxDuration: '8h',
              approval: 'auto',
            },
          ],
        },
      } as never,
    });
    token = await t.token('alice');
  });
  afterAll(async () => {
    await t?.stop();
    await sshd?.stop();
  });

  // The card is printed in two writes with a pause between them: two output chunks.
  const command = `printf 'card: 4111 1111'; sleep 0.3; printf ' 1111 1111\\nbulk:'; head -c 300000 /dev/zero | base64 -w 0; printf '\\n'; printf 'oops\\n' >&2; exit 3`;

  it('sends output as binary frames, masked, in order with the JSON frames', async () => {
    const r = await runExec(command, true);
    expect(r.binaryFrames).toBeGreaterThan(1);
    expect(r.types.filter((x) => x !== 'output')).toEqual(['ready', 'exit', 'closed']);
    expect(r.types.indexOf('ready')).toBe(0);
    expect(r.types.lastIndexOf('output')).toBeLessThan(r.types.indexOf('exit'));
    expect(r.stdout).toContain(`card: ${CARD_MASKED}\nbulk:`);
    expect(r.stdout).not.toContain(CARD);
    expect(r.stdout).toContain('A'.repeat(400_000));
    expect(r.stderr).toBe('oops\n');
    const exit = r.events.find((e) => e.kind === 'json' && e.frame.type === 'exit');
    expect(exit).toMatchObject({ frame: { type: 'exit', code: 3 } });
  });

  it('a client that does not ask for them gets the same output in JSON frames', async () => {
    const [binary, json] = [await runExec(command, true), await runExec(command, false)];
    expect(json.binaryFrames).toBe(0);
    expect(json.stdout).toBe(binary.stdout);
    expect(json.stderr).toBe(binary.stderr);
  });
});
