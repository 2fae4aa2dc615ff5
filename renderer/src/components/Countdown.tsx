import { formatCountdown } from '../access/format';
import { useNow } from './clock';

/** Time left until `until`, ticking every second. Turns amber under `warnMs`. */
export function Countdown({ until, warnMs = 5 * 60_000 }: { until: string; warnMs?: number }) {
  const now = useNow();
  const left = Date.parse(until) - now;
  const tone = left <= 0 ? 'over' : left <= warnMs ? 'warn' : 'ok';
  return (
    <time className={`countdown countdown-${tone}`} dateTime={until} data-testid="countdown">
      {formatCountdown(left)}
    </time>
  );
}
