import { lazy, type ReactNode, Suspense, useEffect } from 'react';
import { useNav } from '../components/nav';
import { RecordingsView } from '../replay/RecordingsView';
import { setTabOpener } from '../state/access';
import { selectMe, useSession } from '../state/session';
import {
  HOME,
  openTargetTab,
  RECORDINGS,
  selectActiveId,
  selectTabs,
  type Tab,
  useTabs,
} from '../state/tabs';
import { TabErrorBoundary } from './TabErrorBoundary';
import { TabStrip } from './TabStrip';

// Each kind loads its code with its first tab: xterm for terminals and replays, Monaco for SQL.
const SshTabView = lazy(() => import('../terminal/SshTabView'));
const SqlTabView = lazy(() => import('../sql/SqlTabView'));
const ReplayTabView = lazy(() => import('../replay/ReplayTabView'));

function TabContent({ tab, active }: { tab: Tab; active: boolean }) {
  if (tab.kind === 'ssh') return <SshTabView tab={tab} active={active} />;
  if (tab.kind === 'sql') return <SqlTabView tab={tab} active={active} />;
  return <ReplayTabView tab={tab} active={active} />;
}

/**
 * The tab area: the home view (`children`, e.g. the targets list), the recordings list and any
 * number of session tabs. Every open tab stays mounted while hidden, so terminals keep their
 * sessions and SQL tabs their results when the user switches between them.
 */
export function Workspace({ children, homeLabel = 'Targets' }: { children: ReactNode; homeLabel?: string }) {
  const username = useSession(selectMe)?.username;
  const tabs = useTabs(selectTabs);
  const activeId = useTabs(selectActiveId);

  useEffect(() => {
    if (username) useTabs.getState().attach(username);
  }, [username]);
  // Signed out (this view unmounts): close the sessions and forget the tabs in memory.
  useEffect(() => () => useTabs.getState().detach(), []);
  // The access flow's seam (double-click on an active target, an approval arriving, "Open" in
  // My access) opens its tab here, and brings the tab area to the front.
  useEffect(
    () =>
      setTabOpener((target, grant) => {
        openTargetTab(target, { id: grant.id, level: grant.level });
        useNav.getState().go('targets');
      }),
    [],
  );

  const onDoc = activeId !== HOME && activeId !== RECORDINGS;
  return (
    <div className={`workspace ${onDoc ? 'workspace-doc' : 'workspace-home'}`} data-active={activeId}>
      <TabStrip homeLabel={homeLabel} />
      <div className="workspace-view" hidden={activeId !== HOME}>
        {children}
      </div>
      <div className="workspace-view" hidden={activeId !== RECORDINGS}>
        <RecordingsView active={activeId === RECORDINGS} />
      </div>
      {tabs.map((t) => (
        <div
          key={t.id}
          id={`tabpanel-${t.id}`}
          className="workspace-tab"
          role="tabpanel"
          aria-label={t.title}
          hidden={t.id !== activeId}
        >
          <TabErrorBoundary onClose={() => useTabs.getState().close(t.id)}>
            <Suspense fallback={<p className="sql-placeholder muted">Loading…</p>}>
              <TabContent tab={t} active={t.id === activeId} />
            </Suspense>
          </TabErrorBoundary>
        </div>
      ))}
    </div>
  );
}
