import { describe, expect, it } from 'vitest';
import { parseAsciicast, parseRecording, parseSqlRecording } from './api';
import { clock, timeline } from './player';

const cast = [
  JSON.stringify({ version: 2, width: 100, height: 30, timestamp: 1, env: { TERM: 'xterm-256color' } }),
  JSON.stringify([0.5, 'o', 'root@vm:~# ']),
  JSON.stringify([1.0, 'i', 'echo hi\r']),
  JSON.stringify([1.1, 'o', 'echo hi\r\nhi\r\n']),
  JSON.stringify([9.1, 'r', '120x40']),
  JSON.stringify([9.6, 'o', 'logout\r\n']),
  '[10.0, "o", "torn',
].join('\n');

describe('asciicast', () => {
  it('parses the header and events and ignores a torn last line', () => {
    const c = parseAsciicast(cast);
    expect(c).toMatchObject({ width: 100, height: 30, duration: 9.6 });
    expect(c.events.map((e) => e.type)).toEqual(['o', 'i', 'o', 'r', 'o']);
    expect(() => parseAsciicast('{"version":1}')).toThrow(/asciicast v2/);
  });

  it('shortens pauses longer than 2 s when skipping idle time, and replays output and resizes only', () => {
    const c = parseAsciicast(cast);
    expect(timeline(c, false).map((e) => e.t)).toEqual([0.5, 1.1, 9.1, 9.6]);
    const skipped = timeline(c, true).map((e) => Number(e.t.toFixed(2)));
    expect(skipped).toEqual([0.5, 1.1, 3.1, 3.6]);
  });

  it('formats the clock', () => {
    expect(clock(3.94)).toBe('0:03.9');
    expect(clock(75.25)).toBe('1:15.3');
  });
});

describe('SQL recordings', () => {
  it('reads statements, skips unknown lines and fields', () => {
    const text = [
      JSON.stringify({
        type: 'header',
        version: 1,
        sessionId: 's',
        resultRows: 20,
        level: 'read',
        readOnly: true,
      }),
      JSON.stringify({ type: 'batch', at: 'x', runId: 'r1', sql: 'select 1' }),
      JSON.stringify({ type: 'future-thing', x: 1 }),
      JSON.stringify({
        type: 'statement',
        at: '2026-01-01T00:00:00Z',
        runId: 'r1',
        index: 0,
        sql: 'select 1',
        verdict: 'allow',
        durationMs: 1,
        rowCount: 1,
        truncated: false,
        command: 'SELECT',
        columns: [{ name: '?column?', type: 'int4' }],
        rows: [['1']],
        masked: [],
        extra: 'ignored',
      }),
      JSON.stringify({ type: 'end', at: 'y', reason: 'closed' }),
    ].join('\n');
    const rec = parseSqlRecording(text);
    expect(rec.statements).toHaveLength(1);
    expect(rec.batches.get('r1')).toBe('select 1');
    expect(rec.end?.reason).toBe('closed');
  });

  it('checks the recordings list shape by hand', () => {
    expect(parseRecording({ sessionId: 'a', kind: 'ssh', targetId: 't', startedAt: 'x' })).toMatchObject({
      kind: 'ssh',
      endedAt: null,
      bytes: null,
    });
    expect(parseRecording({ sessionId: 'a', kind: 'rdp', targetId: 't', startedAt: 'x' })).toBeNull();
  });
});
