import { when } from "./hooks";

/** A small line chart of (time, value) samples, drawn as SVG: no chart library needed. */
export function LineChart(props: { title: string; samples: Array<{ t: number; v: number }>; testId?: string }) {
  const { samples } = props;
  const w = 320;
  const h = 80;
  const max = Math.max(1, ...samples.map((s) => s.v));
  const t0 = samples[0]?.t ?? 0;
  const span = Math.max(1, (samples[samples.length - 1]?.t ?? 0) - t0);
  const points = samples.map((s) => `${((s.t - t0) / span) * (w - 8) + 4},${h - 4 - (s.v / max) * (h - 8)}`).join(" ");
  const last = samples[samples.length - 1]?.v;
  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption>
        {props.title}: <b>{last ?? "–"}</b>{" "}
        <small>
          (max {max}, {samples.length} samples{samples.length > 1 ? `, ${when(t0)} to ${when(t0 + span)} UTC` : ""})
        </small>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={props.title}>
        <rect x="0" y="0" width={w} height={h} class="chart-bg" />
        {samples.length > 1 ? <polyline points={points} class="chart-line" /> : null}
        {samples.map((s, i) => (i === samples.length - 1 ? <circle key={i} cx={((s.t - t0) / span) * (w - 8) + 4} cy={h - 4 - (s.v / max) * (h - 8)} r="3" class="chart-dot" /> : null))}
      </svg>
    </figure>
  );
}

/** Keeps the last `limit` samples of a series. */
export function appendSample(series: Array<{ t: number; v: number }>, v: number, limit = 120): Array<{ t: number; v: number }> {
  const next = [...series, { t: Date.now(), v }];
  return next.length > limit ? next.slice(next.length - limit) : next;
}
