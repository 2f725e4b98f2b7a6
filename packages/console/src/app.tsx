import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from './api.js';
import { followEvents, type StreamEvent } from './event-stream.js';
import type { PageProps } from './page-props.js';
import { AlertsPage } from './pages/alerts-page.js';
import { AuditPage } from './pages/audit-page.js';
import { LeasesPage } from './pages/leases-page.js';
import { RequestsPage } from './pages/requests-page.js';
import { SecretsPage } from './pages/secrets-page.js';
import { TasksPage } from './pages/tasks-page.js';
import { session } from './session.js';
import { SignIn } from './sign-in.js';

const PAGES = {
  tasks: { title: 'Task trees', Page: TasksPage },
  requests: { title: 'Access requests', Page: RequestsPage },
  leases: { title: 'Leases', Page: LeasesPage },
  alerts: { title: 'Alerts', Page: AlertsPage },
  audit: { title: 'Audit trail', Page: AuditPage },
  secrets: { title: 'Secrets', Page: SecretsPage },
} as const;
type PageName = keyof typeof PAGES;

const pageFromHash = (): PageName => {
  const name = location.hash.replace(/^#/, '');
  return name in PAGES ? (name as PageName) : 'tasks';
};

/** The console: sign-in, then one page at a time (chosen by the URL's fragment), with one live event stream. */
export function App() {
  const [token, setToken] = useState<string | null>(session.get());
  const [who, setWho] = useState('');
  const [page, setPage] = useState<PageName>(pageFromHash());
  const [live, setLive] = useState(false);

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  // A token restored from sessionStorage is checked again; a dead one signs out.
  useEffect(() => {
    if (!token || who) return;
    api<{ accessor: string; display_name?: string }>(token, 'GET', 'auth/token/self').then(
      (self) => setWho(self.display_name || self.accessor),
      () => signOut(),
    );
  }, [token]);

  const listeners = useMemo(() => new Set<(event: StreamEvent) => void>(), []);
  useEffect(() => {
    if (!token) return;
    return followEvents(
      token,
      (event) => {
        for (const listener of listeners) listener(event);
      },
      setLive,
    );
  }, [token]);

  const signOut = () => {
    session.clear();
    setToken(null);
    setWho('');
  };

  if (!token) {
    return (
      <SignIn
        onSignedIn={(value, name) => {
          session.set(value);
          setWho(name);
          setToken(value);
        }}
      />
    );
  }
  const props: PageProps = {
    token,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const { Page, title } = PAGES[page];
  return (
    <div class="shell">
      <header>
        <strong class="brand">custos</strong>
        <nav>
          {(Object.keys(PAGES) as PageName[]).map((name) => (
            <a key={name} href={`#${name}`} class={name === page ? 'current' : ''} data-page={name}>
              {PAGES[name].title}
            </a>
          ))}
        </nav>
        <span class={live ? 'live on' : 'live'} data-testid="live">
          {live ? 'live' : 'offline'}
        </span>
        <span class="who">{who}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        <h1>{title}</h1>
        <Page key={page} {...props} />
      </main>
    </div>
  );
}
