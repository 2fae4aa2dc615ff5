import { SIGN_IN_PATH } from '../api';
import { selectNotice, useSession } from '../state/session';
import { LogoMark } from './icons';

export function SignIn() {
  const notice = useSession(selectNotice);
  return (
    <div className="signin-page">
      <main className="signin-card" aria-labelledby="signin-title">
        <div className="signin-brand">
          <LogoMark size={40} />
          <span>Sallyport</span>
        </div>
        <h1 id="signin-title">Sign in to the console</h1>
        <p className="muted">
          Just-in-time access to servers and databases. Sign in with your organisation’s identity provider to
          see your targets and requests.
        </p>
        {notice ? (
          <p className={`notice notice-${notice.kind}`} role={notice.kind === 'error' ? 'alert' : 'status'}>
            {notice.text}
          </p>
        ) : null}
        <a className="button button-primary button-block" href={SIGN_IN_PATH}>
          Sign in
        </a>
        <p className="signin-foot">You will be sent to your identity provider and brought back here.</p>
      </main>
    </div>
  );
}
