import { useState } from "preact/hooks";
import type { Api } from "./api";
import { ConfirmButton } from "./confirm";
import { useLoad, when } from "./hooks";
import { ObjectList, type ObjectRecord } from "./volumes";

export function SecretsView(props: { api: Api }) {
  const [secret, setSecret] = useState<ObjectRecord>();
  const keys = useLoad(
    async () => (secret ? props.api.call<{ keys: string[] }>("GET", `/v1/secrets/${secret.id}/keys`) : undefined),
    [props.api, secret?.id],
  );
  return (
    <div class="split">
      <nav>
        <h3>Secrets</h3>
        <ObjectList api={props.api} kind="secret" selected={secret?.id} onSelect={setSecret} />
      </nav>
      <section>
        {secret ? (
          <div data-testid="secret-detail">
            <h2>
              {secret.name} <small>{secret.id}</small>
            </h2>
            <p class="muted">Keys only: the dashboard never shows secret values.</p>
            {keys.error ? <p class="error">{keys.error}</p> : null}
            <ul data-testid="secret-keys">
              {(keys.data?.keys ?? []).map((k) => (
                <li key={k}>
                  <code>{k}</code>
                </li>
              ))}
            </ul>
          </div>
        ) : (
          <p class="muted">Pick a secret.</p>
        )}
      </section>
    </div>
  );
}

interface Token {
  id: string;
  label: string | null;
  admin: boolean;
  createdAt: number;
  revokedAt: number | null;
}

export function TokensView(props: { api: Api; self: string }) {
  const tokens = useLoad(() => props.api.call<{ tokens: Token[] }>("GET", "/v1/tokens"), [props.api]);
  if (tokens.error) return <p class="error">{tokens.error}</p>;
  if (!tokens.data) return <p>Loading…</p>;
  return (
    <table data-testid="tokens">
      <thead>
        <tr>
          <th>Token</th>
          <th>Label</th>
          <th>Admin</th>
          <th>Created</th>
          <th>Revoked</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {tokens.data.tokens.map((t) => (
          <tr key={t.id} class={t.revokedAt ? "muted" : ""}>
            <td>
              <code>{t.id}</code>
              {t.id === props.self ? " (you)" : ""}
            </td>
            <td>{t.label ?? ""}</td>
            <td>{t.admin ? "yes" : ""}</td>
            <td>{when(t.createdAt)}</td>
            <td>{when(t.revokedAt)}</td>
            <td>
              {t.revokedAt || t.id === props.self ? null : (
                <ConfirmButton
                  label="Revoke"
                  question={`Revoke ${t.id}? Every job using it gets 401 from now on.`}
                  onConfirm={async () => {
                    await props.api.call("DELETE", `/v1/tokens/${t.id}`);
                    tokens.reload();
                  }}
                />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every live mount of the environment's volumes, from their version pins. */
export function MountsView(props: { api: Api }) {
  const rows = useLoad(async () => {
    const { objects } = await props.api.call<{ objects: ObjectRecord[] }>("GET", "/v1/objects/volume");
    const out: Array<{ volume: string; pinId: string; version: number; expiresAt: number }> = [];
    for (const v of objects) {
      const { pins } = await props.api.call<{ pins: Array<{ pinId: string; version: number; expiresAt: number }> }>("GET", `/v1/volumes/${v.id}/pins`);
      for (const p of pins) out.push({ volume: v.name ?? v.id, ...p });
    }
    return out;
  }, [props.api]);
  if (rows.error) return <p class="error">{rows.error}</p>;
  if (!rows.data) return <p>Loading…</p>;
  if (rows.data.length === 0) return <p class="muted">No live mounts in this environment.</p>;
  return (
    <table data-testid="mounts">
      <thead>
        <tr>
          <th>Volume</th>
          <th>Serving version</th>
          <th>Pin</th>
          <th>Expires unless renewed</th>
        </tr>
      </thead>
      <tbody>
        {rows.data.map((r) => (
          <tr key={r.pinId}>
            <td>{r.volume}</td>
            <td>{r.version}</td>
            <td>
              <code>{r.pinId}</code>
            </td>
            <td>{when(r.expiresAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
