import { CloseIcon } from './access-icons';
import { selectToasts, useToasts } from './toast';

export function Toasts() {
  const toasts = useToasts(selectToasts);
  const dismiss = useToasts((s) => s.dismiss);
  return (
    <section className="toasts" aria-live="polite" aria-label="Notifications">
      {toasts.map((t) => (
        <div key={t.id} className={`toast toast-${t.tone}`} role={t.tone === 'error' ? 'alert' : 'status'}>
          <div className="toast-text">
            <strong>{t.title}</strong>
            {t.body ? <span>{t.body}</span> : null}
          </div>
          <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
            <CloseIcon />
          </button>
        </div>
      ))}
    </section>
  );
}
