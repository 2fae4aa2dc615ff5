import { useEffect } from 'react';
import { LogoMark } from './components/icons';
import { Shell } from './components/Shell';
import { SignIn } from './components/SignIn';
import { TargetsView } from './components/TargetsView';
import { selectError, selectStatus, useSession } from './state/session';
import { useTargets } from './state/targets';

export function App() {
  const status = useSession(selectStatus);
  const error = useSession(selectError);

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
    <Shell title="Targets" subtitle="Servers and databases you can request access to">
      <TargetsView />
    </Shell>
  );
}
