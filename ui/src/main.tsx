import { render } from "preact";
import { useMemo, useState } from "preact/hooks";
import { MountsView, SecretsView, TokensView } from "./admin";
import { Api, type Credentials, parseToken } from "./api";
import { DictsView } from "./dicts";
import { useLoad } from "./hooks";
import { QueuesView } from "./queues";
import { VolumesView } from "./volumes";
import "./style.css";

interface WhoAmI {
  workspace: string;
  tokenId: string;
  admin: boolean;
}

const STORAGE_KEY = "silo-dashboard-token";

/** Signs in with a token, checked against /v1/whoami before it is kept (for this browser tab only). */
function SignIn(props: { onSignedIn: (c: Credentials, who: WhoAmI) => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string>();
  const submit = async () => {
    const creds = parseToken(text);
    if (!creds) return setError("Paste a token as TOKEN_ID:TOKEN_SECRET (or the SILO_TOKEN_ID=… SILO_TOKEN_SECRET=… line).");
    try {
      const who = await new Api(creds).call<WhoAmI>("GET", "/v1/whoami");
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(creds));
      props.onSignedIn(creds, who);
    } catch (err) {
      setError((err as { status?: number }).status === 401 ? "That token is wrong, unknown or revoked." : (err as Error).message);
    }
  };
  return (
    <form
      class="signin"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <h1>silo</h1>
      <p>Sign in with a token (<code>silo token create</code> prints one; the admin token is in <code>$SILO_HOME/config.json</code>).</p>
      <input type="password" autocomplete="off" placeholder="tk-…:secret" data-testid="token" value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <button type="submit" data-testid="signin">
        Sign in
      </button>
      {error ? (
        <p class="error" data-testid="signin-error">
          {error}
        </p>
      ) : null}
    </form>
  );
}

const TABS = ["volumes", "dicts", "queues", "secrets", "tokens", "mounts"] as const;
type Tab = (typeof TABS)[number];

function Dashboard(props: { creds: Credentials; who: WhoAmI; onSignOut: () => void }) {
  const [environment, setEnvironment] = useState("main");
  const [tab, setTab] = useState<Tab>("volumes");
  const api = useMemo(() => new Api(props.creds, environment), [props.creds, environment]);
  const envs = useLoad(() => new Api(props.creds).call<{ environments: Array<{ name: string }> }>("GET", "/v1/environments"), [props.creds]);
  return (
    <div class="dashboard">
      <header>
        <b>silo</b> · workspace <b data-testid="workspace">{props.who.workspace}</b>
        {props.who.admin ? " (admin)" : ""} · environment{" "}
        <select data-testid="environment" value={environment} onChange={(e) => setEnvironment(e.currentTarget.value)}>
          {(envs.data?.environments ?? [{ name: "main" }]).map((e) => (
            <option key={e.name} value={e.name}>
              {e.name}
            </option>
          ))}
        </select>
        <nav class="tabs">
          {TABS.map((t) => (
            <button key={t} class={tab === t ? "active" : ""} data-testid={`tab-${t}`} onClick={() => setTab(t)}>
              {t[0]!.toUpperCase() + t.slice(1)}
            </button>
          ))}
        </nav>
        <button class="signout" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <main key={environment}>
        {tab === "volumes" ? <VolumesView api={api} /> : null}
        {tab === "dicts" ? <DictsView api={api} /> : null}
        {tab === "queues" ? <QueuesView api={api} /> : null}
        {tab === "secrets" ? <SecretsView api={api} /> : null}
        {tab === "tokens" ? <TokensView api={api} self={props.who.tokenId} /> : null}
        {tab === "mounts" ? <MountsView api={api} /> : null}
      </main>
    </div>
  );
}

function App() {
  const [session, setSession] = useState<{ creds: Credentials; who: WhoAmI }>();
  const saved = useLoad(async () => {
    const text = sessionStorage.getItem(STORAGE_KEY);
    if (!text) return null;
    const creds = JSON.parse(text) as Credentials;
    const who = await new Api(creds).call<WhoAmI>("GET", "/v1/whoami").catch(() => undefined);
    return who ? { creds, who } : null;
  }, []);
  const current = session ?? saved.data ?? undefined;
  if (!session && saved.data === undefined && !saved.error) return <p>Loading…</p>;
  if (!current) return <SignIn onSignedIn={(creds, who) => setSession({ creds, who })} />;
  return (
    <Dashboard
      creds={current.creds}
      who={current.who}
      onSignOut={() => {
        sessionStorage.removeItem(STORAGE_KEY);
        location.reload();
      }}
    />
  );
}

render(<App />, document.getElementById("app")!);
