import type { MouseEvent, ReactNode } from 'react';
import { selectLiveStatus, useEvents } from '../state/events';
import { selectInboxCount, useInbox } from '../state/inbox';
import { selectRoles, useSession } from '../state/session';
import { InboxIcon, KeyIcon, LedgerIcon } from './access-icons';
import { TargetsIcon } from './icons';
import { pathOf, selectView, useNav, type View } from './nav';

function NavItem({
  view,
  icon,
  label,
  badge,
}: {
  view: View;
  icon: ReactNode;
  label: string;
  badge?: ReactNode;
}) {
  const current = useNav(selectView);
  const go = useNav((s) => s.go);
  const active = current === view || (view === 'targets' && current === 'connecting');
  const onClick = (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(view);
  };
  return (
    <a
      className={`nav-item${active ? ' active' : ''}`}
      href={pathOf(view)}
      aria-current={active ? 'page' : undefined}
      onClick={onClick}
    >
      {icon}
      <span className="nav-label">{label}</span>
      {badge}
    </a>
  );
}

function InboxBadge() {
  const count = useInbox(selectInboxCount);
  if (count === 0) return null;
  return (
    <span className="nav-badge">
      <span data-testid="inbox-count">{count}</span>
      <span className="visually-hidden"> waiting</span>
    </span>
  );
}

/** The sidebar's main navigation: targets, my access, and by role the inbox and the audit ledger. */
export function MainNav() {
  const roles = useSession(selectRoles);
  const waiting = useInbox(selectInboxCount);
  const approver = roles.includes('approver') || roles.includes('admin') || waiting > 0;
  return (
    <nav className="nav" aria-label="Main">
      <NavItem view="targets" icon={<TargetsIcon />} label="Targets" />
      <NavItem view="my-access" icon={<KeyIcon />} label="My access" />
      {approver ? <NavItem view="inbox" icon={<InboxIcon />} label="Inbox" badge={<InboxBadge />} /> : null}
      {roles.includes('admin') ? <NavItem view="audit" icon={<LedgerIcon />} label="Audit" /> : null}
    </nav>
  );
}

const LIVE_TEXT = {
  live: 'Live updates on',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
} as const;

/** Whether the event socket is up: when it is not, what the screens show may be stale. */
export function LiveIndicator() {
  const status = useEvents(selectLiveStatus);
  return (
    <p className={`live live-${status}`} data-testid="live-status" data-live={status}>
      <span className="live-dot" aria-hidden="true" />
      {LIVE_TEXT[status]}
    </p>
  );
}
