import { useEffect } from 'react';
import { LogoMark } from './components/icons';
import { selectView, useNav } from './components/nav';
import { AccessOverlays, Screen, screenOf } from './components/Screens';
import { Shell } from './components/Shell';
import { SignIn } from './components/SignIn';
import { TargetsView } from './components/TargetsView';
import { useLiveEvents } from './state/events';
import { selectError, selectStatus, useSession } from './state/session';
import { selectHeading, useTabs } from './state/tabs';
import { useTargets } from './state/targets';
import { Workspace } from './tabs/Workspace';

export function App() {
  const status = useSession(selectStatus);
  const error = useSession(selectError);
  const heading = useTabs(selectHeading);
  const view = useNav(selectView);
  const screen = screenOf(view);
  // One event socket while signed in: inbox, my access and the targets update live.
  useLiveEvents(status);

  useEffect(() => {
    const session = useSession.getState();
    session.takeSignInError(window.location.search);
    if (window.location.search.includes('signin_error')) window.history.replaceState(null, '', '/');
    void session.load();
  }, []);

  // Signing out (or a session that ended) forgets what the previous user saw.
  useEffect(() => {
    if (status === 'signed-out') useTargets.getState().reset();
  }, [status]);

  if (status === 'loading') {
    return (
      <div className="splash" aria-busy="true">
        <LogoMark size={40} />
      </div>
    );
  }
  if (status === 'signed-out') return <SignIn />;
  if (status === 'error') {
    return (
      <div className="signin-page">
        <main className="signin-card">
          <h1>The gateway cannot be reached</h1>
          <p className="notice notice-error" role="alert">
            {error}
          </p>
          <button
            type="button"
            className="button button-primary"
            onClick={() => void useSession.getState().load()}
          >
            Try again
          </button>
        </main>
      </div>
    );
  }
  return (
    <Shell
      title={screen?.title ?? heading?.title ?? 'Targets'}
      subtitle={
        screen?.subtitle ??
        heading?.subtitle ??
        'Double-click a target to connect, or to request access to it'
      }
    >
      {/* Hidden, not unmounted, behind the other screens: open sessions stay connected. */}
      <div className="view-home" hidden={view !== 'targets'}>
        <Workspace>
          <TargetsView />
        </Workspace>
      </div>
      {screen ? <Screen view={view} /> : null}
      <AccessOverlays />
    </Shell>
  );
}
