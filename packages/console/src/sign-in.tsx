import { useState } from 'preact/hooks';
import { api, describeError } from './api.js';

/**
 * Sign-in with an operator token, checked with `GET /v1/auth/token/self`
 * (operator tokens only: a task token is refused there). The token is typed
 * or pasted here and nowhere else: never a URL parameter, never a cookie.
 */
export function SignIn(props: { onSignedIn: (token: string, name: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const self = await api<{ accessor: string; display_name?: string }>(token.trim(), 'GET', 'auth/token/self');
      props.onSignedIn(token.trim(), self.display_name || self.accessor);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="sign-in" onSubmit={submit}>
      <h1>custos console</h1>
      <p>Sign in with an operator token. It is kept in this tab only (sessionStorage) and sent as a header.</p>
      <label>
        Operator token
        <input
          type="password"
          name="token"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" disabled={busy || !token.trim()}>
        Sign in
      </button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
