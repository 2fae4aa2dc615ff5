import { useCallback, useEffect, useId, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { messageOf } from '../api';
import { ResultGrid } from '../sql/ResultGrid';
import type { ReplayTab } from '../state/tabs';
import { TerminalSearch } from '../terminal/TerminalSearch';
import { createTerminal, isMac, type XtermBundle } from '../terminal/xterm';
import {
  type Asciicast,
  getRecording,
  parseAsciicast,
  parseSqlRecording,
  type RecordingView,
  recordingContent,
  type SqlRecording,
  type SqlRecordingStatement,
} from './api';
import { CastPlayer, clock, type PlayerState, SPEEDS } from './player';

type Loaded =
  | { state: 'loading' }
  | { state: 'error'; message: string; retryable: boolean }
  | { state: 'ssh'; meta: RecordingView; cast: Asciicast }
  | { state: 'sql'; meta: RecordingView; rec: SqlRecording };

const fmt = new Intl.NumberFormat('en-US');
const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

function RecordingMeta({ meta, extra }: { meta: RecordingView; extra?: string }) {
  return (
    <div className="replay-meta">
      <span>
        <span className="muted">user</span> {meta.username}
      </span>
      <span>
        <span className="muted">target</span> <span className="mono">{meta.targetId}</span>
      </span>
      <span>
        <span className="muted">started</span> {when(meta.startedAt)}
      </span>
      {extra ? <span>{extra}</span> : null}
      {meta.sha256 ? (
        <span title={`SHA-256 ${meta.sha256} (checked against the audit ledger by the gateway)`}>
          <span className="muted">sha256</span> <span className="mono">{meta.sha256.slice(0, 12)}…</span>
        </span>
      ) : null}
    </div>
  );
}

function CastPlayerView({ meta, cast, active }: { meta: RecordingView; cast: Asciicast; active: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const bundle = useRef<XtermBundle | null>(null);
  const [player, setPlayer] = useState<CastPlayer | null>(null);
  const [searching, setSearching] = useState(false);
  const sliderId = useId();

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const b = createTerminal({
      cols: cast.width,
      rows: cast.height,
      disableStdin: true,
      cursorBlink: false,
      scrollback: 10_000,
    });
    bundle.current = b;
    b.term.open(el);
    b.term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && (isMac ? e.metaKey : e.ctrlKey) && e.key.toLowerCase() === 'f') {
        e.preventDefault();
        setSearching(true);
        return false;
      }
      return true;
    });
    const p = new CastPlayer(b.term, cast);
    setPlayer(p);
    // Starts playing at once, like a video.
    p.play();
    return () => {
      p.dispose();
      b.term.dispose();
      bundle.current = null;
      setPlayer(null);
    };
  }, [cast]);

  useEffect(() => {
    if (!active && player?.store.getState().playing) player.pause();
  }, [active, player]);

  const subscribe = useCallback(
    (cb: () => void) => (player ? player.store.subscribe(cb) : () => {}),
    [player],
  );
  const s: PlayerState | null = useSyncExternalStore(subscribe, () => player?.store.getState() ?? null);

  return (
    <div className="replay replay-ssh">
      <div className="player-bar">
        <button
          type="button"
          className="button button-primary button-small player-play"
          onClick={() => player?.toggle()}
          aria-label={s?.playing ? 'Pause' : 'Play'}
        >
          {s?.playing ? '❚❚ Pause' : '▶ Play'}
        </button>
        <label htmlFor={sliderId} className="visually-hidden">
          Position
        </label>
        <input
          id={sliderId}
          className="player-slider"
          type="range"
          min={0}
          max={Math.max(0.01, s?.duration ?? 0)}
          step={0.01}
          value={s?.time ?? 0}
          onChange={(e) => player?.seek(Number(e.target.value))}
          data-testid="replay-slider"
        />
        <span className="player-time mono" data-testid="replay-time">
          {clock(s?.time ?? 0)} / {clock(s?.duration ?? 0)}
        </span>
        <fieldset className="segmented" aria-label="Speed">
          {SPEEDS.map((sp) => (
            <button
              key={sp}
              type="button"
              className={s?.speed === sp ? 'segmented-on' : ''}
              aria-pressed={s?.speed === sp}
              onClick={() => player?.setSpeed(sp)}
            >
              {sp}×
            </button>
          ))}
        </fieldset>
        <label className="player-check" title="Shorten pauses longer than 2 s">
          <input
            type="checkbox"
            checked={s?.skipIdle ?? true}
            onChange={(e) => player?.setSkipIdle(e.target.checked)}
          />
          Skip idle
        </label>
        <button type="button" className="button button-ghost button-small" onClick={() => setSearching(true)}>
          Find
        </button>
      </div>
      <RecordingMeta
        meta={meta}
        extra={`${cast.width}×${cast.height}${cast.command ? ` · exec: ${cast.command}` : ''}`}
      />
      {searching && bundle.current ? (
        <TerminalSearch search={bundle.current.search} onClose={() => setSearching(false)} />
      ) : null}
      <div className="replay-screen">
        <div className="term-host term-host-fixed" ref={host} data-testid="replay-terminal" />
      </div>
    </div>
  );
}

const VERDICT_TEXT = { allow: 'allowed', block: 'blocked', review: 'review' } as const;

function StatementCard({ s, n }: { s: SqlRecordingStatement; n: number }) {
  const masked = useMemo(() => {
    const width = s.columns.length;
    return new Set(s.masked.map(([r, c]) => r * width + c));
  }, [s]);
  const outcome = s.error
    ? 'error'
    : s.cancelled
      ? 'cancelled'
      : s.verdict === 'allow'
        ? 'ok'
        : s.verdict === 'block'
          ? 'blocked'
          : 'review';
  return (
    <li className={`stmt stmt-${outcome}`} data-testid="replay-statement" data-verdict={s.verdict}>
      <div className="stmt-head">
        <span className="stmt-n">#{n}</span>
        <span className={`verdict verdict-${s.verdict}`}>{VERDICT_TEXT[s.verdict]}</span>
        {s.command ? <code className="stmt-command">{s.command}</code> : null}
        {s.rowCount !== null ? <span>{fmt.format(s.rowCount)} rows</span> : null}
        {s.truncated ? <span className="stmt-flag">truncated</span> : null}
        {s.cancelled ? <span className="stmt-flag">cancelled</span> : null}
        <span className="muted">
          {new Date(s.at).toLocaleTimeString()} · {Math.round(s.durationMs)} ms
        </span>
      </div>
      <pre className="stmt-sql">{s.sql}</pre>
      {s.rule ? (
        <p className="stmt-rule">
          rule <code className="rule">{s.rule}</code>
          {s.message ? ` — ${s.message}` : ''}
          {s.reviewId ? (
            <>
              {' '}
              · review <code className="mono">{s.reviewId}</code>
            </>
          ) : null}
        </p>
      ) : null}
      {s.error ? (
        <p className="stmt-error">
          {s.error.code ? <code className="sqlstate">SQLSTATE {s.error.code}</code> : null} {s.error.message}
          {s.error.position !== undefined ? ` (position ${s.error.position})` : ''}
        </p>
      ) : null}
      {s.notices?.length ? (
        <ul className="sql-notices stmt-notices" data-testid="replay-notices">
          {s.notices.map((notice, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a recording's notices never change order
            <li key={i}>
              <strong className={`notice-severity notice-severity-${notice.severity.toLowerCase()}`}>
                {notice.severity}
              </strong>{' '}
              {notice.message}
            </li>
          ))}
        </ul>
      ) : null}
      {s.columns.length > 0 ? (
        <div className="stmt-rows">
          <p className="muted">
            {s.rows.length === 0
              ? 'No rows were recorded.'
              : `Recorded ${fmt.format(s.rows.length)}${
                  s.rowCount !== null && s.rowCount > s.rows.length ? ` of ${fmt.format(s.rowCount)}` : ''
                } rows, masked as the user saw them.`}
          </p>
          {s.rows.length > 0 ? (
            <ResultGrid
              columns={s.columns}
              rows={s.rows}
              masked={masked}
              label={`Recorded rows of statement ${n}`}
              className="grid-compact"
            />
          ) : null}
        </div>
      ) : null}
    </li>
  );
}

function SqlReplayView({ meta, rec }: { meta: RecordingView; rec: SqlRecording }) {
  const counts = { allow: 0, block: 0, review: 0 };
  for (const s of rec.statements) counts[s.verdict]++;
  return (
    <div className="replay replay-sql">
      <div className="player-bar">
        <strong>{fmt.format(rec.statements.length)} statements</strong>
        <span className="verdict verdict-allow">{counts.allow} allowed</span>
        <span className="verdict verdict-block">{counts.block} blocked</span>
        <span className="verdict verdict-review">{counts.review} review</span>
        {rec.header ? (
          <span className="muted">
            {rec.header.level}
            {rec.header.readOnly ? ' · read-only' : ''} · first {rec.header.resultRows} rows of each result
            kept
          </span>
        ) : null}
        {rec.end ? (
          <span className="muted">
            ended {when(rec.end.at)} — {rec.end.reason}
          </span>
        ) : (
          <span className="muted">no end record (the session may still run)</span>
        )}
      </div>
      <RecordingMeta meta={meta} />
      {rec.statements.length === 0 ? (
        <p className="sql-placeholder muted">No statements were run in this session.</p>
      ) : (
        <ol className="stmt-list">
          {rec.statements.map((s, i) => (
            // A reviewed statement has several lines (held, then ran or refused); a recording's
            // lines never move, so their position tells them apart.
            // biome-ignore lint/suspicious/noArrayIndexKey: an immutable list, see above
            <StatementCard key={`${s.runId}-${s.index}-${i}`} s={s} n={i + 1} />
          ))}
        </ol>
      )}
    </div>
  );
}

export default function ReplayTabView({ tab, active }: { tab: ReplayTab; active: boolean }) {
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const [attempt, setAttempt] = useState(0);

  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt is the retry trigger
  useEffect(() => {
    let cancelled = false;
    setLoaded({ state: 'loading' });
    void (async () => {
      try {
        const meta = await getRecording(tab.sessionId);
        const text = await recordingContent(tab.sessionId);
        if (cancelled) return;
        if (meta.kind === 'ssh') setLoaded({ state: 'ssh', meta, cast: parseAsciicast(text) });
        else setLoaded({ state: 'sql', meta, rec: parseSqlRecording(text) });
      } catch (err) {
        if (cancelled) return;
        const message = messageOf(err);
        setLoaded({ state: 'error', message, retryable: /incomplete|recording|unreachable/.test(message) });
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [tab.sessionId, attempt]);

  return (
    <section className="session session-replay" aria-label={`Replay of ${tab.title}`} data-tab-kind="replay">
      {loaded.state === 'loading' ? <p className="sql-placeholder muted">Loading the recording…</p> : null}
      {loaded.state === 'error' ? (
        <div className="tab-ended" role="alert">
          <div className="tab-ended-card">
            <h2>Cannot replay this session</h2>
            <p>{loaded.message}</p>
            <div className="tab-ended-actions">
              <button
                type="button"
                className="button button-primary"
                onClick={() => setAttempt((n) => n + 1)}
              >
                Try again
              </button>
            </div>
          </div>
        </div>
      ) : null}
      {loaded.state === 'ssh' ? (
        <CastPlayerView meta={loaded.meta} cast={loaded.cast} active={active} />
      ) : null}
      {loaded.state === 'sql' ? <SqlReplayView meta={loaded.meta} rec={loaded.rec} /> : null}
    </section>
  );
}
