import { useState } from "preact/hooks";
import type { Api } from "./api";
import { LineChart } from "./chart";
import { ConfirmButton } from "./confirm";
import { size, useInterval, useLoad, when } from "./hooks";

export interface ObjectRecord {
  id: string;
  name: string | null;
  kind: string;
  createdAt: number;
}
interface VolumeInfo {
  id: string;
  name: string | null;
  version: number;
  oldestVersion: number;
  inodes: number;
  inodeLimit: number;
}
interface Entry {
  path: string;
  type: "file" | "directory" | "symlink";
  size?: number;
  mtimeMs?: number;
  target?: string;
}
/** One version as `GET …/history` lists it (protocol/volume.ts VersionInfo). */
interface VersionInfo {
  version: number;
  createdAt: number;
  tokenId?: string;
  note?: string;
  put: { count: number; paths: string[] };
  removed: { count: number; paths: string[] };
  partial?: boolean;
}

export function ObjectList(props: { api: Api; kind: string; selected?: string; onSelect: (r: ObjectRecord) => void }) {
  const list = useLoad(() => props.api.call<{ objects: ObjectRecord[] }>("GET", `/v1/objects/${props.kind}`), [props.api, props.kind]);
  if (list.error) return <p class="error">{list.error}</p>;
  if (!list.data) return <p>Loading…</p>;
  if (list.data.objects.length === 0) return <p class="muted">No {props.kind}s in this environment.</p>;
  return (
    <ul class="objects" data-testid={`${props.kind}-list`}>
      {list.data.objects.map((o) => (
        <li key={o.id}>
          <a href="#" class={o.id === props.selected ? "selected" : ""} onClick={(e) => (e.preventDefault(), props.onSelect(o))}>
            {o.name ?? `(ephemeral) ${o.id}`}
          </a>
        </li>
      ))}
    </ul>
  );
}

export function VolumesView(props: { api: Api }) {
  const [volume, setVolume] = useState<ObjectRecord>();
  const [tick, setTick] = useState(0);
  return (
    <div class="split">
      <nav>
        <h3>Volumes</h3>
        <ObjectList key={tick} api={props.api} kind="volume" selected={volume?.id} onSelect={setVolume} />
      </nav>
      <section>
        {volume ? (
          <VolumeDetail
            key={volume.id}
            api={props.api}
            volume={volume}
            onDeleted={() => {
              setVolume(undefined);
              setTick((t) => t + 1);
            }}
          />
        ) : (
          <p class="muted">Pick a volume.</p>
        )}
      </section>
    </div>
  );
}

function VolumeDetail(props: { api: Api; volume: ObjectRecord; onDeleted: () => void }) {
  const { api, volume } = props;
  const [info, setInfo] = useState<VolumeInfo>();
  const [error, setError] = useState<string>();
  const [version, setVersion] = useState<number>();
  const [tab, setTab] = useState<"files" | "history" | "pins">("files");
  // The latest version, checked every 2 s while this volume is shown; a new one reloads the history.
  useInterval(
    () =>
      void api.call<VolumeInfo>("GET", `/v1/volumes/${volume.id}/info`).then(
        (i) => setInfo((old) => (old && old.version === i.version && old.oldestVersion === i.oldestVersion ? old : i)),
        (err: Error) => setError(err.message),
      ),
    2000,
    [api, volume.id],
  );
  // The retained versions, newest first: what each changed, when and by whom; the chart draws their times.
  const history = useLoad(
    async () => (info ? (await api.call<{ versions: VersionInfo[] }>("GET", `/v1/volumes/${volume.id}/history?limit=1000`)).versions : undefined),
    [api, volume.id, info?.version, info?.oldestVersion],
  );
  if (error) return <p class="error">{error}</p>;
  if (!info) return <p>Loading…</p>;
  const shown = version ?? info.version;
  return (
    <div data-testid="volume-detail">
      <h2>
        {volume.name} <small>{volume.id}</small>
      </h2>
      <p>
        Version <b data-testid="volume-version">{info.version}</b> (oldest readable {info.oldestVersion}) · {info.inodes} of {info.inodeLimit} inodes
        · created {when(volume.createdAt)}{" "}
        <ConfirmButton
          label="Delete"
          testId="volume-delete"
          question={`Delete volume '${volume.name}' and all its versions?`}
          onConfirm={async () => {
            await api.call("DELETE", `/v1/objects/volume/by-name/${encodeURIComponent(volume.name ?? "")}`);
            props.onDeleted();
          }}
        />
      </p>
      <LineChart
        title="Commit activity (version by commit time, retained history)"
        samples={(history.data ?? []).map((v) => ({ t: v.createdAt, v: v.version })).reverse()}
        testId="commit-chart"
      />
      <div class="tabs">
        {(["files", "history", "pins"] as const).map((t) => (
          <button key={t} class={tab === t ? "active" : ""} data-testid={`volume-tab-${t}`} onClick={() => setTab(t)}>
            {t === "files" ? `Files (version ${shown})` : t === "history" ? "History" : "Live mounts"}
          </button>
        ))}
      </div>
      {tab === "files" ? <FileTree api={api} volumeId={volume.id} version={shown} /> : null}
      {tab === "history" ? (
        <History
          versions={history.data}
          error={history.error}
          onBrowse={(v) => {
            setVersion(v);
            setTab("files");
          }}
        />
      ) : null}
      {tab === "pins" ? <Pins api={api} volumeId={volume.id} /> : null}
    </div>
  );
}

function FileTree(props: { api: Api; volumeId: string; version: number }) {
  const [dir, setDir] = useState("");
  const list = useLoad(
    () =>
      props.api.call<{ entries: Entry[] }>(
        "GET",
        `/v1/volumes/${props.volumeId}/list?${new URLSearchParams({ path: dir, version: String(props.version), limit: "1000" })}`,
      ),
    [props.api, props.volumeId, props.version, dir],
  );
  const [status, setStatus] = useState<string>();
  const download = async (e: Entry) => {
    setStatus(`Downloading ${e.path}…`);
    const blob = await props.api.fileBlob(props.volumeId, e.path, props.version);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = e.path.split("/").pop() ?? "file";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    setStatus(undefined);
  };
  const crumbs = dir ? dir.split("/") : [];
  return (
    <div data-testid="file-tree">
      <p class="crumbs">
        <a href="#" onClick={(e) => (e.preventDefault(), setDir(""))}>
          /
        </a>
        {crumbs.map((c, i) => (
          <span key={i}>
            <a href="#" onClick={(e) => (e.preventDefault(), setDir(crumbs.slice(0, i + 1).join("/")))}>
              {c}
            </a>
            /
          </span>
        ))}
      </p>
      {list.error ? <p class="error">{list.error}</p> : null}
      {status ? <p class="muted">{status}</p> : null}
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Size</th>
            <th>Modified</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.entries ?? []).map((e) => {
            const name = e.path.split("/").pop();
            return (
              <tr key={e.path} data-testid="tree-entry">
                <td>
                  {e.type === "directory" ? (
                    <a href="#" data-testid="tree-dir" onClick={(ev) => (ev.preventDefault(), setDir(e.path))}>
                      {name}/
                    </a>
                  ) : e.type === "file" ? (
                    <a href="#" data-testid="tree-file" title="Download" onClick={(ev) => (ev.preventDefault(), void download(e).catch((err: Error) => setStatus(err.message)))}>
                      {name}
                    </a>
                  ) : (
                    <span>
                      {name} → {e.target}
                    </span>
                  )}
                </td>
                <td>{e.type === "file" ? size(e.size) : ""}</td>
                <td>{when(e.mtimeMs)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

const MAX_PATHS_SHOWN = 10;

/** The retained versions, newest first, each with what it changed, when and by which token. */
function History(props: { versions?: VersionInfo[]; error?: string; onBrowse: (v: number) => void }) {
  if (props.error) return <p class="error">{props.error}</p>;
  if (!props.versions) return <p>Loading…</p>;
  const paths = (list: { count: number; paths: string[] }, sign: string, cls: string) => [
    ...list.paths.slice(0, MAX_PATHS_SHOWN).map((p) => (
      <li key={`${sign}${p}`} class={cls}>
        {sign} {p}
      </li>
    )),
    list.count > Math.min(list.paths.length, MAX_PATHS_SHOWN) ? (
      <li key={`${sign}more`} class="muted">
        … {list.count - Math.min(list.paths.length, MAX_PATHS_SHOWN)} more
      </li>
    ) : null,
  ];
  return (
    <table data-testid="history">
      <thead>
        <tr>
          <th>Version</th>
          <th>Changes</th>
          <th>Committed</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.versions
          .filter((v) => v.version > 0)
          .map((v) => (
            <tr key={v.version} data-testid="history-row">
              <td>{v.version}</td>
              <td>
                {v.note ? <p class="muted">{v.note}</p> : null}
                {v.put.count + v.removed.count === 0 ? (
                  <span class="muted">{v.partial ? "(the versions before it were collected)" : "no changes"}</span>
                ) : (
                  <ul class="changes">
                    {paths(v.put, "+", "put")}
                    {paths(v.removed, "−", "delete")}
                  </ul>
                )}
              </td>
              <td>
                {when(v.createdAt)}
                {v.tokenId ? (
                  <>
                    {" "}
                    by <code>{v.tokenId}</code>
                  </>
                ) : null}
              </td>
              <td>
                <button onClick={() => props.onBrowse(v.version)}>Browse</button>
              </td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

function Pins(props: { api: Api; volumeId: string }) {
  const pins = useLoad(
    () => props.api.call<{ pins: Array<{ pinId: string; version: number; expiresAt: number }> }>("GET", `/v1/volumes/${props.volumeId}/pins`),
    [props.api, props.volumeId],
  );
  if (pins.error) return <p class="error">{pins.error}</p>;
  if (!pins.data) return <p>Loading…</p>;
  if (pins.data.pins.length === 0) return <p class="muted">No live mounts (no version pins).</p>;
  return (
    <table data-testid="pins">
      <thead>
        <tr>
          <th>Pin</th>
          <th>Version</th>
          <th>Expires unless renewed</th>
        </tr>
      </thead>
      <tbody>
        {pins.data.pins.map((p) => (
          <tr key={p.pinId}>
            <td>{p.pinId}</td>
            <td>{p.version}</td>
            <td>{when(p.expiresAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
