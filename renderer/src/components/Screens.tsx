// The screens reached from the sidebar besides the targets workspace, and the overlays
// (request and revoke dialogs, toasts) that any screen can raise.
import { ConnectingView } from '../access/ConnectingView';
import { MyAccessView, RevokeDialog } from '../access/MyAccessView';
import { RequestDialog } from '../access/RequestDialog';
import { AuditView } from '../audit/AuditView';
import { InboxView } from '../inbox/InboxView';
import { selectRoles, useSession } from '../state/session';
import type { View } from './nav';
import { Toasts } from './Toasts';

export const SCREENS: Record<Exclude<View, 'targets'>, { title: string; subtitle: string }> = {
  'my-access': {
    title: 'My access',
    subtitle: 'Your grants, with the time they have left, and your requests',
  },
  inbox: { title: 'Inbox', subtitle: 'Access requests and held statements waiting for your decision' },
  audit: { title: 'Audit', subtitle: 'Every request, decision, session and revocation, hash-chained' },
  connecting: { title: 'Session', subtitle: 'Opening a session under your grant' },
};

export function screenOf(view: View): { title: string; subtitle: string } | null {
  return view === 'targets' ? null : SCREENS[view];
}

function NeedsAdmin() {
  return (
    <div className="empty" role="status">
      <h2>Admins only</h2>
      <p className="muted">The audit ledger is visible to the admin role.</p>
    </div>
  );
}

export function Screen({ view }: { view: View }) {
  const admin = useSession(selectRoles).includes('admin');
  switch (view) {
    case 'my-access':
      return <MyAccessView />;
    case 'inbox':
      return <InboxView />;
    case 'audit':
      return admin ? <AuditView /> : <NeedsAdmin />;
    case 'connecting':
      return <ConnectingView />;
    default:
      return null;
  }
}

export function AccessOverlays() {
  return (
    <>
      <RequestDialog />
      <RevokeDialog />
      <Toasts />
    </>
  );
}
