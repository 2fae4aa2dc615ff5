import type { TargetView } from '@sallyport/protocol';
import { type ReactNode, useEffect, useRef, useState } from 'react';
import {
  HOME,
  openTargetTab,
  RECORDINGS,
  selectActiveId,
  selectTabs,
  type Tab,
  type TabStatus,
  useTabs,
} from '../state/tabs';
import { useTargets } from '../state/targets';
import { timeLeft } from './grants';
import { CloseIcon, HomeIcon, PlusIcon, RecordingsIcon, ReplayIcon, SqlIcon, TerminalIcon } from './icons';

const KIND_ICON: Record<Tab['kind'], () => ReactNode> = {
  ssh: TerminalIcon,
  sql: SqlIcon,
  replay: ReplayIcon,
};

const STATUS_TEXT: Record<TabStatus, string> = {
  checking: 'checking the grant',
  connecting: 'connecting',
  connected: 'connected',
  running: 'running',
  closed: 'closed',
  'grant-ended': 'grant ended',
  idle: '',
};

/** Targets the user can open a session on right now (an active grant). */
const usable = (t: TargetView) =>
  (t.access.state === 'active' || t.access.state === 'expiring') && t.access.grantId !== undefined;

function NewSessionMenu({ onClose }: { onClose(): void }) {
  const targets = useTargets((s) => s.targets);
  const status = useTargets((s) => s.status);
  const ref = useRef<HTMLDivElement>(null);
  const list = targets.filter(usable).sort((a, b) => a.name.localeCompare(b.name));

  useEffect(() => {
    // Grants change: the menu shows the current ones.
    void useTargets.getState().load();
  }, []);
  useEffect(() => {
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.parentElement?.contains(e.target as Node)) onClose();
    };
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [onClose]);

  return (
    <div className="popover new-session" ref={ref} role="menu" aria-label="New session">
      <div className="popover-head">
        <strong>New session</strong>
        <span className="muted">targets with an active grant</span>
      </div>
      {list.length === 0 ? (
        <p className="popover-empty muted">
          {status === 'loading'
            ? 'Loading targets…'
            : 'No active grants. Request access to a target first; it appears here once granted.'}
        </p>
      ) : (
        <ul className="menu-list">
          {list.map((t) => (
            <li key={t.id}>
              <button
                type="button"
                role="menuitem"
                data-target-id={t.id}
                onClick={() => {
                  openTargetTab(t, { id: t.access.grantId! }, { newTab: true });
                  onClose();
                }}
              >
                {t.kind === 'postgres' ? <SqlIcon /> : <TerminalIcon />}
                <span className="menu-main">
                  <span>{t.kind === 'postgres' ? 'SQL' : 'Terminal'}</span> · <strong>{t.name}</strong>
                </span>
                <span className="menu-sub muted">{timeLeft(t.access.expiresAt)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function SessionTab({ tab, active, index }: { tab: Tab; active: boolean; index: number }) {
  const status = useTabs((s) => s.status[tab.id] ?? 'idle');
  const Icon = KIND_ICON[tab.kind];
  const { activate, close, move } = useTabs.getState();
  return (
    <div
      className={`wtab wtab-${tab.kind}${active ? ' wtab-active' : ''}`}
      data-tab-id={tab.id}
      data-uri={tab.uri}
      data-status={status}
    >
      <button
        type="button"
        draggable
        onDragStart={(e) => e.dataTransfer.setData('application/x-sallyport-tab', tab.id)}
        onDragOver={(e) => {
          if (e.dataTransfer.types.includes('application/x-sallyport-tab')) e.preventDefault();
        }}
        onDrop={(e) => {
          const id = e.dataTransfer.getData('application/x-sallyport-tab');
          if (id) move(id, index);
        }}
        role="tab"
        aria-selected={active}
        aria-controls={`tabpanel-${tab.id}`}
        className="wtab-main"
        title={`${tab.title} — ${tab.uri}${STATUS_TEXT[status] ? ` (${STATUS_TEXT[status]})` : ''}`}
        onClick={() => activate(tab.id)}
        onAuxClick={(e) => {
          if (e.button === 1) close(tab.id);
        }}
      >
        <Icon />
        <span className="wtab-title">{tab.title}</span>
        {tab.kind !== 'replay' ? <span className={`wtab-dot wtab-dot-${status}`} aria-hidden="true" /> : null}
      </button>
      <button
        type="button"
        className="wtab-close"
        aria-label={`Close ${tab.title}`}
        title="Close tab"
        onClick={() => close(tab.id)}
      >
        <CloseIcon />
      </button>
    </div>
  );
}

export function TabStrip({ homeLabel }: { homeLabel: string }) {
  const tabs = useTabs(selectTabs);
  const activeId = useTabs(selectActiveId);
  const activate = useTabs((s) => s.activate);
  const [menu, setMenu] = useState(false);

  return (
    <div className="tabstrip">
      <div className="tabstrip-tabs" role="tablist" aria-label="Open tabs">
        <div className={`wtab wtab-fixed${activeId === HOME ? ' wtab-active' : ''}`}>
          <button
            type="button"
            role="tab"
            aria-selected={activeId === HOME}
            className="wtab-main"
            onClick={() => activate(HOME)}
          >
            <HomeIcon />
            <span className="wtab-title">{homeLabel}</span>
          </button>
        </div>
        <div className={`wtab wtab-fixed${activeId === RECORDINGS ? ' wtab-active' : ''}`}>
          <button
            type="button"
            role="tab"
            aria-selected={activeId === RECORDINGS}
            className="wtab-main"
            onClick={() => activate(RECORDINGS)}
          >
            <RecordingsIcon />
            <span className="wtab-title">Recordings</span>
          </button>
        </div>
        {tabs.length ? <span className="tabstrip-sep" aria-hidden="true" /> : null}
        {tabs.map((t, i) => (
          <SessionTab key={t.id} tab={t} index={i} active={t.id === activeId} />
        ))}
      </div>
      <div className="popover-anchor">
        <button
          type="button"
          className="button button-ghost button-small tabstrip-new"
          aria-haspopup="menu"
          aria-expanded={menu}
          onClick={() => setMenu((v) => !v)}
        >
          <PlusIcon />
          New session
        </button>
        {menu ? <NewSessionMenu onClose={() => setMenu(false)} /> : null}
      </div>
    </div>
  );
}
