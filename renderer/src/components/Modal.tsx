import { type ReactNode, useEffect, useRef } from 'react';
import { CloseIcon } from './access-icons';

/**
 * A modal on the native <dialog> element: the rest of the page is inert while it is
 * open, Escape closes it, and focus goes back to where it was when it closes.
 */
export function Modal({
  title,
  subtitle,
  onClose,
  children,
  footer,
  testId,
  initialFocus,
}: {
  title: ReactNode;
  subtitle?: ReactNode;
  onClose(): void;
  children: ReactNode;
  footer?: ReactNode;
  testId?: string;
  /** A selector inside the dialog to focus when it opens. */
  initialFocus?: string | undefined;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  const initialFocusRef = useRef(initialFocus);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    if (initialFocusRef.current) dialog.querySelector<HTMLElement>(initialFocusRef.current)?.focus();
    return () => {
      if (dialog.open) dialog.close();
      if (before?.isConnected) before.focus();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      className="modal"
      aria-labelledby="modal-title"
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        onCloseRef.current();
      }}
    >
      <header className="modal-head">
        <div className="modal-titles">
          <h2 id="modal-title">{title}</h2>
          {subtitle ? <div className="modal-sub">{subtitle}</div> : null}
        </div>
        <button type="button" className="icon-button" aria-label="Close" onClick={() => onCloseRef.current()}>
          <CloseIcon />
        </button>
      </header>
      <div className="modal-body">{children}</div>
      {footer ? <footer className="modal-foot">{footer}</footer> : null}
    </dialog>
  );
}
