import { LabelChips, LevelBadge } from '../components/access-bits';
import { PlugIcon } from '../components/access-icons';
import { Countdown } from '../components/Countdown';
import { useNav } from '../components/nav';
import { selectOpened, useAccess } from '../state/access';
import { LEVEL_TEXT } from './format';

/**
 * Placeholder for the session tab, shown by the openTargetTab() seam until the
 * terminal and SQL tabs plug in with setTabOpener().
 */
export function ConnectingView() {
  const opened = useAccess(selectOpened);
  const go = useNav((s) => s.go);
  if (!opened) {
    return (
      <div className="empty">
        <h2>Nothing to connect to</h2>
        <p className="muted">Double-click a target you have access to.</p>
        <button type="button" className="button button-primary" onClick={() => go('targets')}>
          Go to targets
        </button>
      </div>
    );
  }
  const { target, grant } = opened;
  return (
    <section
      className="panel connecting"
      data-testid="open-tab"
      data-target-id={target.id}
      data-grant-id={grant.id}
      aria-label={`Session on ${target.name}`}
    >
      <div className="connecting-icon">
        <PlugIcon />
      </div>
      <h2>Connecting to {target.name}…</h2>
      <p className="mono muted">
        {target.kind === 'postgres'
          ? `${target.user}@${target.host}:${target.port}/${target.database}`
          : `${target.user}@${target.host}:${target.port}`}
      </p>
      <div className="connecting-facts">
        <LevelBadge level={grant.level} /> <span>{LEVEL_TEXT[grant.level]}</span>
        <span className="sep">·</span>
        <span>
          <Countdown until={grant.expiresAt} /> left
        </span>
      </div>
      <LabelChips labels={target.labels} />
      <p className="muted small">
        Your grant is active. {target.kind === 'postgres' ? 'SQL' : 'Terminal'} sessions open here in a tab.
      </p>
      <button type="button" className="button button-ghost" onClick={() => go('my-access')}>
        View my access
      </button>
    </section>
  );
}
