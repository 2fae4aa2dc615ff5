import { afterEach, describe, expect, it } from 'vitest';
import {
  HOME,
  openTab,
  openTargetTab,
  parseTabUri,
  RECORDINGS,
  restoreTabs,
  selectHeading,
  sqlTabUri,
  useTabs,
} from '../state/tabs';

const GRANT = '3f1c2a4e-0000-4000-8000-000000000001';
const SESSION = 'e5313fd7-2909-4349-8850-924bbcf0315e';

afterEach(() => useTabs.getState().detach());

describe('tab URIs', () => {
  it('parses the three kinds and refuses anything else', () => {
    expect(parseTabUri('/targets/build-box/ssh')).toEqual({ kind: 'ssh', targetId: 'build-box' });
    expect(parseTabUri(sqlTabUri('shop-db'))).toEqual({ kind: 'sql', targetId: 'shop-db' });
    expect(parseTabUri(`/recordings/${SESSION}`)).toEqual({ kind: 'replay', sessionId: SESSION });
    for (const bad of [
      '/targets/Build/ssh',
      '/targets/x/rdp',
      '/recordings/../etc',
      'javascript:alert(1)',
      '',
    ]) {
      expect(parseTabUri(bad)).toBeNull();
    }
  });
});

describe('tabs store', () => {
  it('opens tabs, focuses an existing one and lets it take a new grant (reconnect)', () => {
    useTabs.getState().attach('alice');
    const a = openTab({ kind: 'ssh', targetId: 'build-box', grantId: GRANT });
    const b = openTargetTab(
      { id: 'shop-db', name: 'Shop database', kind: 'postgres' },
      { id: GRANT, level: 'read' },
    );
    expect(useTabs.getState().tabs.map((t) => [t.kind, t.uri, t.title])).toEqual([
      ['ssh', '/targets/build-box/ssh', 'build-box'],
      ['sql', '/targets/shop-db/sql', 'Shop database'],
    ]);
    expect(useTabs.getState().activeId).toBe(b);

    expect(openTab({ kind: 'ssh', targetId: 'build-box', grantId: GRANT })).toBe(a);
    expect(useTabs.getState().epoch[a]).toBeUndefined();
    expect(openTab({ kind: 'ssh', targetId: 'build-box', grantId: 'another-grant' })).toBe(a);
    expect(useTabs.getState().tabs[0]).toMatchObject({ grantId: 'another-grant' });
    expect(useTabs.getState().epoch[a]).toBe(1);

    // newTab: a second terminal on the same target.
    const c = openTab({ kind: 'ssh', targetId: 'build-box', grantId: GRANT }, { newTab: true });
    expect(c).not.toBe(a);
    expect(useTabs.getState().tabs).toHaveLength(3);
  });

  it('closing the active tab shows its right neighbour, then the left one, then home', () => {
    useTabs.getState().attach('alice');
    const a = openTab({ kind: 'ssh', targetId: 'a', grantId: GRANT });
    const b = openTab({ kind: 'ssh', targetId: 'b', grantId: GRANT });
    const c = openTab({ kind: 'ssh', targetId: 'c', grantId: GRANT });
    const { activate, close } = useTabs.getState();
    activate(b);
    close(b);
    expect(useTabs.getState().activeId).toBe(c);
    close(c);
    expect(useTabs.getState().activeId).toBe(a);
    close(a);
    expect(useTabs.getState().activeId).toBe(HOME);
  });

  it('keeps a per-tab SQL history, newest first, without duplicates', () => {
    useTabs.getState().attach('alice');
    const id = openTab({ kind: 'sql', targetId: 'shop-db', grantId: GRANT, sql: 'select 1' });
    const { addHistory } = useTabs.getState();
    addHistory(id, { sql: 'select 1', at: '2026-01-01T00:00:00Z', outcome: 'ok', rows: 1 });
    addHistory(id, { sql: 'select 2', at: '2026-01-01T00:00:01Z', outcome: 'error' });
    addHistory(id, { sql: 'select 1', at: '2026-01-01T00:00:02Z', outcome: 'ok', rows: 1 });
    const tab = useTabs.getState().tabs[0];
    expect(tab?.kind === 'sql' && tab.draft).toBe('select 1');
    expect(tab?.kind === 'sql' && tab.history.map((h) => h.sql)).toEqual(['select 1', 'select 2']);
  });

  it('says what the header shows for the active view', () => {
    useTabs.getState().attach('alice');
    expect(selectHeading(useTabs.getState())).toBeNull();
    useTabs.getState().activate(RECORDINGS);
    expect(selectHeading(useTabs.getState())?.title).toBe('Recordings');
    openTab({ kind: 'replay', sessionId: SESSION, recordingKind: 'ssh', targetId: 'build-box' });
    const heading = selectHeading(useTabs.getState());
    expect(heading).toEqual({ title: 'Replay e5313fd7', subtitle: `Replay · /recordings/${SESSION}` });
    expect(selectHeading(useTabs.getState())).toBe(heading);
  });
});

describe('restoring persisted tabs', () => {
  it('keeps well-formed tabs and drops the rest', () => {
    const restored = restoreTabs({
      version: 1,
      activeId: 't2',
      tabs: [
        { id: 't1', kind: 'ssh', uri: '/targets/box/ssh', title: 'Box', grantId: GRANT, token: 'never kept' },
        {
          id: 't2',
          kind: 'sql',
          uri: '/targets/db/sql',
          title: 'DB',
          grantId: GRANT,
          draft: 'select 1',
          history: [{ sql: 'select 1', at: '2026-01-01T00:00:00Z', outcome: 'weird' }, { nope: true }],
        },
        { id: 't3', kind: 'replay', uri: `/recordings/${SESSION}`, title: 'R', recordingKind: 'ssh' },
        { id: 't4', kind: 'ssh', uri: '/targets/box/sql', title: 'kind and URI disagree', grantId: GRANT },
        { id: 't5', kind: 'ssh', uri: '/targets/box/ssh', title: 'no grant' },
        'junk',
        null,
      ],
    });
    expect(restored.tabs.map((t) => t.id)).toEqual(['t1', 't2', 't3']);
    expect(restored.tabs[0]).not.toHaveProperty('token');
    expect(restored.tabs[1]).toMatchObject({ history: [{ sql: 'select 1', outcome: 'ok' }] });
    expect(restored.activeId).toBe('t2');
    expect(restoreTabs({ tabs: [], activeId: 'gone' }).activeId).toBe(HOME);
    expect(restoreTabs('not json at all').tabs).toEqual([]);
  });
});
