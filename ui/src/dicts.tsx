import { useState } from "preact/hooks";
import { type Api, decodeValue, showValue } from "./api";
import { ConfirmButton } from "./confirm";
import { useLoad } from "./hooks";
import { ObjectList, type ObjectRecord } from "./volumes";

export function DictsView(props: { api: Api }) {
  const [dict, setDict] = useState<ObjectRecord>();
  return (
    <div class="split">
      <nav>
        <h3>Dicts</h3>
        <ObjectList api={props.api} kind="dict" selected={dict?.id} onSelect={setDict} />
      </nav>
      <section>{dict ? <DictDetail key={dict.id} api={props.api} dict={dict} /> : <p class="muted">Pick a dict.</p>}</section>
    </div>
  );
}

const PAGE = 200;

function DictDetail(props: { api: Api; dict: ObjectRecord }) {
  const { api, dict } = props;
  const [prefix, setPrefix] = useState("");
  const [cursor, setCursor] = useState<Uint8Array | null>(null);
  const [pages, setPages] = useState<Array<Uint8Array | null>>([]);
  const page = useLoad(
    () =>
      api.call<{ entries: Array<[Uint8Array, Uint8Array | undefined]>; cursor: Uint8Array | null }>("POST", `/v1/dicts/${dict.id}/scan`, {
        limit: PAGE,
        values: true,
        ...(cursor ? { after: cursor } : {}),
      }),
    [api, dict.id, cursor],
  );
  const rows = (page.data?.entries ?? [])
    .map(([k, v]) => ({ key: showValue(decodeValue(k)), value: v ? showValue(decodeValue(v)) : "" }))
    // Keys are shown as their decoded form; a string key matches on its text.
    .filter((r) => !prefix || r.key.replace(/^"/, "").startsWith(prefix));
  return (
    <div data-testid="dict-detail">
      <h2>
        {dict.name} <small>{dict.id}</small>
      </h2>
      <p class="muted">
        Entries expire after the server's <code>--dict-entry-ttl-ms</code> (7 days by default) without a read or write.{" "}
        <ConfirmButton
          label="Clear"
          testId="dict-clear"
          question={`Remove every entry of '${dict.name}'?`}
          onConfirm={async () => {
            await api.call("POST", `/v1/dicts/${dict.id}/clear`);
            page.reload();
          }}
        />
      </p>
      <label>
        Key prefix <input value={prefix} data-testid="dict-prefix" onInput={(e) => setPrefix(e.currentTarget.value)} />
      </label>
      {page.error ? <p class="error">{page.error}</p> : null}
      <table data-testid="dict-entries">
        <thead>
          <tr>
            <th>Key</th>
            <th>Value</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key} data-testid="dict-entry">
              <td>
                <code>{r.key}</code>
              </td>
              <td>
                <code>{r.value}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        {pages.length > 0 ? (
          <button
            onClick={() => {
              const prev = pages.slice(0, -1);
              setCursor(pages[pages.length - 1] ?? null);
              setPages(prev);
            }}
          >
            ← Previous
          </button>
        ) : null}{" "}
        {page.data?.cursor ? (
          <button
            onClick={() => {
              setPages([...pages, cursor]);
              setCursor(page.data!.cursor);
            }}
          >
            Next →
          </button>
        ) : null}
      </p>
    </div>
  );
}
