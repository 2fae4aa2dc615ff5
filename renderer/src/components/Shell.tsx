import type { ReactNode } from 'react';
import { platform } from '../platform';
import { initialsOf, selectDisplayName, selectMe, selectRoles, useSession } from '../state/session';
import { BellOffIcon, LogoMark, SignOutIcon } from './icons';
import { LiveIndicator, MainNav } from './MainNav';

function Sidebar() {
  const notifications = platform.notifications;
  return (
    <aside className="sidebar">
      <div className="brand">
        <LogoMark />
        <span>Sallyport</span>
      </div>
      <MainNav />
      <div className="sidebar-foot">
        <LiveIndicator />
        {notifications.available ? null : (
          <p className="platform-note" data-testid="platform-note">
            <BellOffIcon />
            <span>{notifications.unavailableReason}</span>
          </p>
        )}
      </div>
    </aside>
  );
}

function UserMenu() {
  const me = useSession(selectMe);
  const name = useSession(selectDisplayName);
  const roles = useSession(selectRoles);
  const signOut = useSession((s) => s.signOut);
  if (!me) return null;
  return (
    <div className="user" data-testid="user">
      <div className="avatar" aria-hidden="true">
        {initialsOf(name)}
      </div>
      <div className="user-text">
        <span className="user-name">{name}</span>
        <span className="user-sub">{me.email ?? me.username}</span>
      </div>
      <ul className="roles" aria-label="Roles">
        {roles.length === 0 ? (
          <li className="role role-none">no role</li>
        ) : (
          roles.map((r) => (
            <li key={r} className={`role role-${r}`}>
              {r}
            </li>
          ))
        )}
      </ul>
      <button type="button" className="button button-ghost" onClick={() => void signOut()}>
        <SignOutIcon />
        Sign out
      </button>
    </div>
  );
}

export function Shell({
  title,
  subtitle,
  children,
}: {
  title: string;
  subtitle?: string;
  children: ReactNode;
}) {
  return (
    <div className="app">
      <Sidebar />
      <div className="main">
        <header className="topbar">
          <div className="topbar-title">
            <h1>{title}</h1>
            {subtitle ? <p className="muted">{subtitle}</p> : null}
          </div>
          <UserMenu />
        </header>
        <main className="content">{children}</main>
      </div>
    </div>
  );
}
