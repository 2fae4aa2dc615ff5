import type { TargetView } from '@sallyport/protocol';

const TEXT: Record<TargetView['access']['state'], string> = {
  none: 'No access',
  pending: 'Pending approval',
  active: 'Active',
  expiring: 'Expiring',
};

function until(iso: string | undefined): string | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  if (ms <= 0) return 'expired';
  const min = Math.round(ms / 60_000);
  return min < 60 ? `${Math.max(min, 1)}m left` : `${Math.round(min / 60)}h left`;
}

export function AccessBadge({ access }: { access: TargetView['access'] }) {
  const left = access.state === 'active' || access.state === 'expiring' ? until(access.expiresAt) : undefined;
  return (
    <span className={`badge badge-${access.state}`} data-access={access.state}>
      <span className="badge-dot" aria-hidden="true" />
      {TEXT[access.state]}
      {left ? <span className="badge-extra">· {left}</span> : null}
    </span>
  );
}
