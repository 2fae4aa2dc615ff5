// Small pieces shared by the request dialog, My access, the inbox and the audit screen.
import type { AccessLevel, RequestStatus, TargetView } from '@sallyport/protocol';
import { isProdLabel, LEVEL_RISK, LEVEL_TEXT } from '../access/format';
import { useTargets } from '../state/targets';
import { DatabaseIcon, ServerIcon } from './icons';

export function LevelBadge({ level }: { level: AccessLevel }) {
  return (
    <span className={`level level-${LEVEL_RISK[level]}`} title={LEVEL_TEXT[level]} data-level={level}>
      {level}
    </span>
  );
}

/** Labels as chips; production labels stand out, since that is where mistakes cost most. */
export function LabelChips({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels);
  if (entries.length === 0) return null;
  return (
    <ul className="labels">
      {entries.map(([k, v]) => (
        <li key={k} className={`tag${isProdLabel(k, v) ? ' tag-prod' : ''}`}>
          {k}={v}
        </li>
      ))}
    </ul>
  );
}

const STATUS_TEXT: Record<RequestStatus | 'active' | 'revoked' | 'expired-grant', string> = {
  pending: 'Pending',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  cancelled: 'Cancelled',
  active: 'Active',
  revoked: 'Revoked',
  'expired-grant': 'Expired',
};

export function StatusPill({ status }: { status: keyof typeof STATUS_TEXT }) {
  return (
    <span className={`pill pill-${status}`} data-status={status}>
      {STATUS_TEXT[status]}
    </span>
  );
}

export const useTarget = (id: string): TargetView | undefined =>
  useTargets((s) => s.targets.find((t) => t.id === id));

/** Target name with kind icon and id; works before (or without) the targets list being loaded. */
export function TargetTitle({ id, showLabels = false }: { id: string; showLabels?: boolean }) {
  const t = useTarget(id);
  return (
    <span className="target-title">
      <span className={`kind kind-${t?.kind ?? 'unknown'}`}>
        {t?.kind === 'ssh' ? <ServerIcon /> : t?.kind === 'postgres' ? <DatabaseIcon /> : null}
      </span>
      <span className="target-title-text">
        <span className="target-name">{t?.name ?? id}</span>
        <span className="target-sub mono">{id}</span>
      </span>
      {showLabels && t ? <LabelChips labels={t.labels} /> : null}
    </span>
  );
}

export const isProdTarget = (t: TargetView | undefined): boolean =>
  t !== undefined && Object.entries(t.labels).some(([k, v]) => isProdLabel(k, v));
