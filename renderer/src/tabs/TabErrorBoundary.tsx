import { Component, type ReactNode } from 'react';

/**
 * Keeps one broken tab from taking the console down: a chunk that fails to load (the gateway was
 * upgraded meanwhile) or a rendering bug shows a message in that tab only.
 */
export class TabErrorBoundary extends Component<
  { children: ReactNode; onClose(): void },
  { error: Error | null }
> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div className="tab-ended" role="alert">
        <div className="tab-ended-card">
          <h2>This tab could not be shown</h2>
          <p className="mono">{error.message}</p>
          <p className="muted">Reloading the console usually helps (it may have been updated).</p>
          <div className="tab-ended-actions">
            <button type="button" className="button button-primary" onClick={() => window.location.reload()}>
              Reload
            </button>
            <button type="button" className="button button-ghost" onClick={this.props.onClose}>
              Close tab
            </button>
          </div>
        </div>
      </div>
    );
  }
}
