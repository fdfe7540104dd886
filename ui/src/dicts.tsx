import { useState } from "preact/hooks";
import { type Api, decodeValue, showValue } from "./api";
import { ConfirmButton } from "./confirm";
import { useLoad, when } from "./hooks";
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

type ScanPage = { entries: Array<[Uint8Array, Uint8Array | undefined]>; cursor: Uint8Array | null; expiresAt?: number[] };
type Row = { key: string; value: string; expiresAt?: number };

const toRows = (page: ScanPage): Row[] =>
  page.entries.map(([k, v], i) => ({ key: showValue(decodeValue(k)), value: v ? showValue(decodeValue(v)) : "", expiresAt: page.expiresAt?.[i] }));
/** A string key matches on its text, any other key on how it is shown. */
const matches = (row: Row, prefix: string) => row.key.replace(/^"/, "").startsWith(prefix) || row.key.startsWith(prefix);
/** A prefix search reads at most this many entries (keys are msgpack bytes: no index by text prefix). */
const SEARCH_LIMIT = 50_000;

function DictDetail(props: { api: Api; dict: ObjectRecord }) {
  const { api, dict } = props;
  const [prefix, setPrefix] = useState("");
  const [cursor, setCursor] = useState<Uint8Array | null>(null);
  const [pages, setPages] = useState<Array<Uint8Array | null>>([]);
  const scan = (after: Uint8Array | null, limit: number) =>
    api.call<ScanPage>("POST", `/v1/dicts/${dict.id}/scan`, { limit, values: true, expiry: true, ...(after ? { after } : {}) });
  const page = useLoad(() => scan(cursor, PAGE), [api, dict.id, cursor]);
  // With a prefix: walk the dict page by page for matches, up to SEARCH_LIMIT entries.
  const search = useLoad(async () => {
    if (!prefix) return undefined;
    const found: Row[] = [];
    let scanned = 0;
    let after: Uint8Array | null = null;
    do {
      const p: ScanPage = await scan(after, 1000);
      scanned += p.entries.length;
      found.push(...toRows(p).filter((r) => matches(r, prefix)));
      after = p.cursor;
    } while (after && found.length < PAGE && scanned < SEARCH_LIMIT);
    return { found: found.slice(0, PAGE), scanned, complete: after === null };
  }, [api, dict.id, prefix]);
  const rows = prefix ? (search.data?.found ?? []) : page.data ? toRows(page.data) : [];
  return (
    <div data-testid="dict-detail">
      <h2>
        {dict.name} <small>{dict.id}</small>
      </h2>
      <p class="muted">
        An entry expires after the server's <code>--dict-entry-ttl-ms</code> (7 days by default) without a read or write; a
        read or write moves its expiry on (browsing here does not).{" "}
        <ConfirmButton
          label="Clear"
          testId="dict-clear"
          question={`Remove every entry of '${dict.name}'?`}
          onConfirm={async () => {
            await api.call("POST", `/v1/dicts/${dict.id}/clear`);
            page.reload();
            search.reload();
          }}
        />
      </p>
      <label>
        Key prefix <input value={prefix} data-testid="dict-prefix" onInput={(e) => setPrefix(e.currentTarget.value)} />
      </label>
      {prefix && search.data ? (
        <small data-testid="dict-search-note">
          {" "}
          {search.data.found.length} match{search.data.found.length === 1 ? "" : "es"} in {search.data.scanned} entries
          {search.data.complete ? "" : " (stopped early: refine the prefix)"}
        </small>
      ) : null}
      {page.error || search.error ? <p class="error">{page.error ?? search.error}</p> : null}
      <table data-testid="dict-entries">
        <thead>
          <tr>
            <th>Key</th>
            <th>Value</th>
            <th>Expires</th>
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
              <td data-testid="dict-expires">{when(r.expiresAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {prefix ? null : (
        <p>
          {pages.length > 0 ? (
            <button
              onClick={() => {
                setCursor(pages[pages.length - 1] ?? null);
                setPages(pages.slice(0, -1));
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
      )}
    </div>
  );
}
