import { useState } from "preact/hooks";
import { type Api, decodeValue, showValue } from "./api";
import { appendSample, LineChart } from "./chart";
import { ConfirmButton } from "./confirm";
import { useInterval, useLoad, when } from "./hooks";
import { ObjectList, type ObjectRecord } from "./volumes";

interface QueueInfo {
  totalItems: number;
  partitions: number;
}

export function QueuesView(props: { api: Api }) {
  const [queue, setQueue] = useState<ObjectRecord>();
  return (
    <div class="split">
      <nav>
        <h3>Queues</h3>
        <ObjectList api={props.api} kind="queue" selected={queue?.id} onSelect={setQueue} />
      </nav>
      <section>{queue ? <QueueDetail key={queue.id} api={props.api} queue={queue} /> : <p class="muted">Pick a queue.</p>}</section>
    </div>
  );
}

function QueueDetail(props: { api: Api; queue: ObjectRecord }) {
  const { api, queue } = props;
  const [info, setInfo] = useState<QueueInfo>();
  const [depth, setDepth] = useState<Array<{ t: number; v: number }>>([]);
  const [error, setError] = useState<string>();
  const [partition, setPartition] = useState("");
  const [peeked, setPeeked] = useState<Array<{ position: number; value: string }>>();
  // Depth over time: sampled every 2 s while the queue is shown.
  useInterval(
    () =>
      void api.call<QueueInfo>("GET", `/v1/queues/${queue.id}/info`).then(
        (i) => {
          setInfo(i);
          setDepth((s) => appendSample(s, i.totalItems));
        },
        (err: Error) => setError(err.message),
      ),
    2000,
    [api, queue.id],
  );
  const parts = useLoad(
    () =>
      api.call<{ partitions: Array<{ partition: string | null; items: number; expiresAt: number }>; truncated: boolean }>(
        "GET",
        `/v1/queues/${queue.id}/partitions?limit=200`,
      ),
    [api, queue.id, info?.totalItems],
  );
  const peek = async (which = partition) => {
    setError(undefined);
    const body = { n: 20, timeoutMs: 0, ...(which ? { partition: which } : {}) };
    const r = await api.call<{ items: Uint8Array[]; positions: number[] }>("POST", `/v1/queues/${queue.id}/peek`, body);
    setPeeked(r.items.map((item, i) => ({ position: r.positions[i]!, value: showValue(decodeValue(item)) })));
  };
  return (
    <div data-testid="queue-detail">
      <h2>
        {queue.name} <small>{queue.id}</small>
      </h2>
      {error ? <p class="error">{error}</p> : null}
      <p>
        <b data-testid="queue-items">{info?.totalItems ?? "…"}</b> items in <b>{info?.partitions ?? "…"}</b> partitions{" "}
        <ConfirmButton
          label="Clear"
          testId="queue-clear"
          question={`Drop every item of every partition of '${queue.name}'?`}
          onConfirm={async () => {
            await api.call("POST", `/v1/queues/${queue.id}/clear`, { all: true });
            setPeeked(undefined);
          }}
        />
      </p>
      <LineChart title="Queue depth (items)" samples={depth} testId="depth-chart" />
      <table data-testid="partitions">
        <thead>
          <tr>
            <th>Partition</th>
            <th>Items</th>
            <th>Expires after</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(parts.data?.partitions ?? []).map((p) => (
            <tr key={p.partition ?? ""} data-testid="partition">
              <td>{p.partition ?? <i>(default)</i>}</td>
              <td>{p.items}</td>
              <td>{when(p.expiresAt)}</td>
              <td>
                <button
                  data-testid="partition-peek"
                  onClick={() => {
                    setPartition(p.partition ?? "");
                    void peek(p.partition ?? "").catch((err: Error) => setError(err.message));
                  }}
                >
                  Peek
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {parts.data?.truncated ? <p class="muted">Only the first 200 partitions are listed.</p> : null}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void peek().catch((err: Error) => setError(err.message));
        }}
      >
        <label>
          Partition <input value={partition} placeholder="(default)" data-testid="peek-partition" onInput={(e) => setPartition(e.currentTarget.value)} />
        </label>{" "}
        <button type="submit" data-testid="peek">
          Peek
        </button>
      </form>
      {peeked ? (
        peeked.length === 0 ? (
          <p class="muted" data-testid="peek-empty">
            The partition is empty.
          </p>
        ) : (
          <table data-testid="peek-items">
            <thead>
              <tr>
                <th>#</th>
                <th>Item</th>
              </tr>
            </thead>
            <tbody>
              {peeked.map((p, i) => (
                <tr key={p.position} data-testid="peek-item">
                  <td title={`position ${p.position}`}>{i + 1}</td>
                  <td>
                    <code>{p.value}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
    </div>
  );
}
