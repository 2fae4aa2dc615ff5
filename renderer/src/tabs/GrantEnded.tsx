import type { GrantView } from '@sallyport/protocol';
import { timeLeft } from './grants';

/** Shown instead of a session when the tab's grant is over (restored tab, revocation, expiry). */
export function GrantEnded({
  reason,
  replacement,
  transient,
  onUse,
  onRequest,
  onRetry,
  onClose,
}: {
  reason: string;
  replacement?: GrantView | undefined;
  transient?: boolean | undefined;
  onUse(grant: GrantView): void;
  /** Opens the access request for the target (absent when the target is not known here). */
  onRequest?: (() => void) | undefined;
  onRetry(): void;
  onClose(): void;
}) {
  return (
    <div className="tab-ended" role="status" data-testid="grant-ended">
      <div className="tab-ended-card">
        <h2>{transient ? 'Cannot connect right now' : 'Grant ended'}</h2>
        <p>{reason}</p>
        {transient ? null : (
          <p className="muted">
            This tab does not reconnect on its own. Request access to the target again, or use another active
            grant.
          </p>
        )}
        <div className="tab-ended-actions">
          {replacement ? (
            <button type="button" className="button button-primary" onClick={() => onUse(replacement)}>
              Use active {replacement.level} grant ({timeLeft(replacement.expiresAt)})
            </button>
          ) : null}
          {!replacement && !transient && onRequest ? (
            <button type="button" className="button button-primary" onClick={onRequest}>
              Request access
            </button>
          ) : null}
          <button type="button" className="button button-ghost" onClick={onRetry}>
            Check again
          </button>
          <button type="button" className="button button-ghost" onClick={onClose}>
            Close tab
          </button>
        </div>
      </div>
    </div>
  );
}
