import { useCallback, useEffect, useState } from 'react';
import { messageOf } from '../api';
import { openTab } from '../state/tabs';
import { listRecordings, type RecordingView } from './api';

const fmt = new Intl.NumberFormat('en-US');

function duration(r: RecordingView): string {
  if (!r.endedAt) return 'running';
  const s = Math.max(0, (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function size(bytes: number | null): string {
  if (bytes === null) return '—';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

type Load =
  | { state: 'loading' }
  | { state: 'ready'; items: RecordingView[] }
  | { state: 'error'; message: string };

/** The recordings the caller may replay: their own, or everyone's for approvers and admins. */
export function RecordingsView({ active }: { active: boolean }) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [kind, setKind] = useState<'all' | 'ssh' | 'sql'>('all');

  const refresh = useCallback(async () => {
    setLoad((l) => (l.state === 'ready' ? l : { state: 'loading' }));
    try {
      setLoad({ state: 'ready', items: await listRecordings({ limit: 200 }) });
    } catch (err) {
      setLoad({ state: 'error', message: messageOf(err) });
    }
  }, []);

  // Fresh every time the view is shown: sessions end while the user is elsewhere.
  useEffect(() => {
    if (active) void refresh();
  }, [active, refresh]);

  const items = load.state === 'ready' ? load.items.filter((r) => kind === 'all' || r.kind === kind) : [];

  return (
    <section className="panel recordings" aria-label="Recordings">
      <div className="toolbar">
        <div className="segmented" role="radiogroup" aria-label="Kind">
          {(['all', 'ssh', 'sql'] as const).map((k) => (
            // biome-ignore lint/a11y/useSemanticElements: a segmented control of buttons
            <button
              key={k}
              type="button"
              role="radio"
              aria-checked={kind === k}
              className={kind === k ? 'segmented-on' : ''}
              onClick={() => setKind(k)}
            >
              {k === 'all' ? 'All' : k.toUpperCase()}
            </button>
          ))}
        </div>
        <p className="toolbar-count" aria-live="polite">
          {load.state === 'ready' ? `${fmt.format(items.length)} recordings` : ''}
        </p>
        <button type="button" className="button button-ghost button-small" onClick={() => void refresh()}>
          Refresh
        </button>
      </div>
      {load.state === 'error' ? (
        <div className="notice notice-error" role="alert">
          Could not load recordings: {load.message}
        </div>
      ) : null}
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">Target</th>
              <th scope="col">User</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Size</th>
              <th scope="col">
                <span className="visually-hidden">Replay</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.sessionId} data-session-id={r.sessionId} data-kind={r.kind}>
                <td>
                  <span className={`kind-pill kind-pill-${r.kind}`}>{r.kind === 'ssh' ? 'SSH' : 'SQL'}</span>{' '}
                  <span className="mono">{r.sessionId.slice(0, 8)}</span>
                </td>
                <td className="mono">{r.targetId}</td>
                <td>{r.username}</td>
                <td>{new Date(r.startedAt).toLocaleString()}</td>
                <td>{duration(r)}</td>
                <td>{size(r.bytes)}</td>
                <td className="cell-access">
                  {r.status === 'complete' ? (
                    <button
                      type="button"
                      className="button button-ghost button-small"
                      onClick={() =>
                        openTab({
                          kind: 'replay',
                          sessionId: r.sessionId,
                          recordingKind: r.kind,
                          targetId: r.targetId,
                          title: `${r.kind === 'ssh' ? 'Replay' : 'SQL replay'} · ${r.targetId}`,
                        })
                      }
                    >
                      Replay
                    </button>
                  ) : (
                    <span className={`badge badge-${r.status === 'failed' ? 'expiring' : 'pending'}`}>
                      {r.status}
                    </span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {load.state === 'loading' ? <div className="table-empty muted">Loading recordings…</div> : null}
        {load.state === 'ready' && items.length === 0 ? (
          <div className="table-empty">
            <strong>No recordings yet</strong>
            <span className="muted">Every SSH and SQL session through the gateway is recorded here.</span>
          </div>
        ) : null}
      </div>
    </section>
  );
}
