import type { GrantView } from '@sallyport/protocol';
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { useAccess } from '../state/access';
import { type SshTab, selectEpochOf, type TabStatus, useTabs } from '../state/tabs';
import { useTargets } from '../state/targets';
import { GrantEnded } from '../tabs/GrantEnded';
import { checkGrant, GRANT_ENDED_CODES, timeLeft } from '../tabs/grants';
import { type GatewayNotice, TerminalConnection, type TerminalConnectionState } from './connection';
import { TerminalSearch } from './TerminalSearch';
import { createTerminal, isMac, safeFit, type XtermBundle } from './xterm';

type Gate =
  | { state: 'checking' }
  | { state: 'ended'; reason: string; replacement?: GrantView; transient?: boolean }
  | { state: 'live'; conn: TerminalConnection; grant: GrantView };

const NOTICE_TITLE: Record<string, string> = {
  blocked: 'Blocked by the gateway',
  waiting_for_approval: 'Waiting for approval',
  review: 'Waiting for approval',
  expired: 'Grant expired',
  grant_expired: 'Grant expired',
  revoked: 'Access revoked',
  grant_revoked: 'Access revoked',
  no_grant: 'No grant',
  grant_expiring: 'Grant expiring',
  host_key_mismatch: 'Host key mismatch',
  auth_failed: 'The gateway could not log in to the target',
  target_unreachable: 'Target unreachable',
  recording_failed: 'Recording failed',
  recording_unavailable: 'Recording unavailable',
};

export const noticeTitle = (n: Pick<GatewayNotice, 'code' | 'level'>): string =>
  NOTICE_TITLE[n.code] ??
  (n.level === 'error' ? 'Gateway error' : n.level === 'warn' ? 'Gateway warning' : 'Gateway');

const CLOSE_TEXT: Record<string, string> = {
  exit: 'The remote shell exited',
  client_closed: 'You disconnected',
  revoked: 'Access was revoked',
  expired: 'The grant expired',
  error: 'The session failed',
  connection_lost: 'The connection to the gateway was lost',
};

function phaseStatus(s: TerminalConnectionState): TabStatus {
  if (s.phase === 'connecting') return 'connecting';
  if (s.phase === 'ready') return 'connected';
  return s.closed && GRANT_ENDED_CODES.has(s.closed.code) ? 'grant-ended' : 'closed';
}

function NoticeBanner({ notices, onDismiss }: { notices: GatewayNotice[]; onDismiss(id: number): void }) {
  if (notices.length === 0) return null;
  return (
    <ul className="gw-notices" aria-label="Messages from the gateway">
      {notices.map((n) => (
        <li
          key={n.id}
          className={`gw-notice gw-notice-${n.level}`}
          role={n.level === 'error' ? 'alert' : 'status'}
          data-code={n.code}
          data-testid="gateway-notice"
        >
          <span className="gw-notice-badge">Gateway</span>
          <span className="gw-notice-text">
            <strong>{noticeTitle(n)}</strong>
            <span>{n.message}</span>
          </span>
          <code className="gw-notice-code">{n.code}</code>
          <button
            type="button"
            className="icon-button"
            aria-label="Dismiss"
            title="Dismiss"
            onClick={() => onDismiss(n.id)}
          >
            ×
          </button>
        </li>
      ))}
    </ul>
  );
}

const EMPTY_STATE: TerminalConnectionState = {
  phase: 'connecting',
  sessionId: null,
  notices: [],
  closed: null,
  exit: null,
};
const noSubscription = () => () => {};

/** The live connection's state, or an empty one while there is none. */
function useConnectionState(conn: TerminalConnection | null): TerminalConnectionState {
  const subscribe = useCallback(
    (cb: () => void) => (conn ? conn.store.subscribe(cb) : noSubscription()),
    [conn],
  );
  return useSyncExternalStore(subscribe, () => (conn ? conn.store.getState() : EMPTY_STATE));
}

export default function SshTabView({ tab, active }: { tab: SshTab; active: boolean }) {
  const epoch = useTabs(selectEpochOf(tab.id));
  const target = useTargets((s) => s.targets.find((t) => t.id === tab.targetId));
  const [gate, setGate] = useState<Gate>({ state: 'checking' });
  const [searching, setSearching] = useState(false);
  const [copied, setCopied] = useState<string | null>(null);
  const hostRef = useRef<HTMLDivElement>(null);
  const xterm = useRef<XtermBundle | null>(null);
  const conn = useRef<TerminalConnection | null>(null);
  const live = gate.state === 'live' ? gate.conn : null;
  const state = useConnectionState(live);
  const setStatus = useTabs((s) => s.setStatus);

  const copySelection = useCallback(async () => {
    const text = xterm.current?.term.getSelection() ?? '';
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
      setCopied('Copied');
    } catch {
      setCopied('Copy blocked by the browser');
    }
    setTimeout(() => setCopied(null), 1500);
  }, []);

  const paste = useCallback(async () => {
    try {
      const text = await navigator.clipboard.readText();
      if (text) xterm.current?.term.paste(text);
    } catch {
      setCopied('Paste with Ctrl+Shift+V');
      setTimeout(() => setCopied(null), 2000);
    }
    xterm.current?.term.focus();
  }, []);

  // The terminal itself lives as long as the tab.
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const bundle = createTerminal();
    xterm.current = bundle;
    const { term, fit } = bundle;
    term.open(host);
    safeFit(host, fit);
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown') return true;
      const mod = isMac ? e.metaKey : e.ctrlKey;
      const key = e.key.toLowerCase();
      if (mod && key === 'f') {
        e.preventDefault();
        setSearching(true);
        return false;
      }
      // Ctrl+Shift+C / Cmd+C copy the selection; Ctrl+C alone stays an interrupt for the shell.
      if ((e.ctrlKey && e.shiftKey && key === 'c') || (isMac && e.metaKey && key === 'c')) {
        if (term.hasSelection()) {
          e.preventDefault();
          void copySelection();
          return false;
        }
        return !isMac;
      }
      // Ctrl+Shift+V / Cmd+V: let the browser fire its paste event, which xterm handles.
      if ((e.ctrlKey && e.shiftKey && key === 'v') || (isMac && e.metaKey && key === 'v')) return false;
      return true;
    });
    const subs = [
      term.onData((d) => conn.current?.input(d)),
      term.onBinary((d) => conn.current?.inputBinary(d)),
      term.onResize(({ cols, rows }) => conn.current?.resize(cols, rows)),
    ];
    const observer = new ResizeObserver(() => safeFit(host, fit));
    observer.observe(host);
    return () => {
      observer.disconnect();
      for (const s of subs) s.dispose();
      term.dispose();
      xterm.current = null;
    };
  }, [copySelection]);

  // Check the grant, then connect; again on "Reconnect" or when the tab takes a new grant.
  // biome-ignore lint/correctness/useExhaustiveDependencies: epoch is the reconnect trigger
  useEffect(() => {
    let cancelled = false;
    let unsubscribe: (() => void) | undefined;
    setGate({ state: 'checking' });
    setStatus(tab.id, 'checking');
    void checkGrant(tab.grantId, tab.targetId, 'ssh').then((res) => {
      const bundle = xterm.current;
      if (cancelled || !bundle) return;
      if (!res.ok) {
        setGate({
          state: 'ended',
          reason: res.reason,
          ...(res.replacement ? { replacement: res.replacement } : {}),
          ...(res.transient ? { transient: true } : {}),
        });
        setStatus(tab.id, 'grant-ended');
        return;
      }
      bundle.term.reset();
      safeFit(hostRef.current, bundle.fit);
      const c = new TerminalConnection({
        targetId: tab.targetId,
        grantId: tab.grantId,
        cols: bundle.term.cols,
        rows: bundle.term.rows,
        onOutput: (bytes) => bundle.term.write(bytes),
      });
      conn.current = c;
      unsubscribe = c.store.subscribe((s) => setStatus(tab.id, phaseStatus(s)));
      c.connect();
      setGate({ state: 'live', conn: c, grant: res.grant });
      if (active) bundle.term.focus();
    });
    return () => {
      cancelled = true;
      unsubscribe?.();
      conn.current?.close();
      conn.current = null;
    };
  }, [tab.grantId, tab.targetId, tab.id, epoch, setStatus]);

  // A tab that becomes visible fits its terminal (hidden tabs have no size) and takes the focus.
  useEffect(() => {
    if (!active) return;
    const raf = requestAnimationFrame(() => {
      const bundle = xterm.current;
      if (!bundle) return;
      safeFit(hostRef.current, bundle.fit);
      bundle.term.focus();
    });
    return () => cancelAnimationFrame(raf);
  }, [active]);

  const reconnect = () => useTabs.getState().reconnect(tab.id);
  const switchGrant = (g: GrantView) =>
    useTabs
      .getState()
      .open({ kind: 'ssh', targetId: tab.targetId, title: tab.title, grantId: g.id, level: g.level });
  const closed = state.closed;
  const closedCode = closed?.code;
  const grantOver = closedCode !== undefined && GRANT_ENDED_CODES.has(closedCode);

  return (
    <section className="session session-ssh" aria-label={`SSH session on ${tab.title}`} data-tab-kind="ssh">
      <header className="session-bar">
        <div className="session-title">
          <span
            className={`conn-dot conn-${gate.state === 'live' ? state.phase : gate.state}`}
            aria-hidden="true"
          />
          <strong>{tab.title}</strong>
          <span className="mono muted">
            {target ? `${target.user}@${target.host}:${target.port}` : tab.targetId}
          </span>
          {gate.state === 'live' ? (
            <span className="session-meta">
              {tab.level ?? gate.grant.level} · {timeLeft(gate.grant.expiresAt)}
              {state.sessionId ? (
                <>
                  {' '}
                  · session <span className="mono">{state.sessionId.slice(0, 8)}</span>
                </>
              ) : null}
            </span>
          ) : null}
        </div>
        <div className="session-actions" hidden={gate.state === 'ended'}>
          {copied ? <span className="session-flash">{copied}</span> : null}
          <button
            type="button"
            className="button button-ghost button-small"
            title={`Find (${isMac ? '⌘F' : 'Ctrl+F'})`}
            onClick={() => setSearching(true)}
          >
            Find
          </button>
          <button
            type="button"
            className="button button-ghost button-small"
            title={`Copy the selection (${isMac ? '⌘C' : 'Ctrl+Shift+C'})`}
            onClick={() => void copySelection()}
          >
            Copy
          </button>
          <button
            type="button"
            className="button button-ghost button-small"
            title={`Paste (${isMac ? '⌘V' : 'Ctrl+Shift+V'})`}
            disabled={state.phase !== 'ready'}
            onClick={() => void paste()}
          >
            Paste
          </button>
          {gate.state === 'live' && state.phase !== 'closed' ? (
            <button type="button" className="button button-ghost button-small" onClick={() => live?.close()}>
              Disconnect
            </button>
          ) : (
            <button
              type="button"
              className="button button-primary button-small"
              disabled={gate.state === 'checking'}
              onClick={reconnect}
            >
              Reconnect
            </button>
          )}
        </div>
      </header>
      {live ? <NoticeBanner notices={state.notices} onDismiss={(id) => live.dismissNotice(id)} /> : null}
      {searching && xterm.current ? (
        <TerminalSearch
          search={xterm.current.search}
          onClose={() => {
            setSearching(false);
            xterm.current?.term.focus();
          }}
        />
      ) : null}
      <div className="term-wrap">
        <div className="term-host" ref={hostRef} data-testid="terminal" />
        {gate.state === 'checking' || (gate.state === 'live' && state.phase === 'connecting') ? (
          <div className="term-overlay term-overlay-soft">
            {gate.state === 'checking' ? 'Checking the grant…' : 'Connecting through the gateway…'}
          </div>
        ) : null}
        {gate.state === 'ended' ? (
          <GrantEnded
            reason={gate.reason}
            replacement={gate.replacement}
            transient={gate.transient}
            onUse={switchGrant}
            onRequest={target ? () => useAccess.getState().openRequest(target) : undefined}
            onRetry={reconnect}
            onClose={() => useTabs.getState().close(tab.id)}
          />
        ) : null}
      </div>
      {gate.state === 'live' && closed ? (
        <footer
          className={`session-closed${grantOver || closedCode === 'error' ? ' session-closed-bad' : ''}`}
          role="status"
          data-testid="session-closed"
          data-code={closedCode}
        >
          <span>
            <strong>{CLOSE_TEXT[closed.code] ?? 'Session closed'}</strong>
            {state.exit && state.exit.code !== null ? ` (exit status ${state.exit.code})` : ''}
            {state.exit?.signal ? ` (signal ${state.exit.signal})` : ''} — {closed.reason}{' '}
            <code className="mono">{closed.code}</code>
          </span>
          <button type="button" className="button button-primary button-small" onClick={reconnect}>
            Reconnect
          </button>
        </footer>
      ) : null}
    </section>
  );
}
