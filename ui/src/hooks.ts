import { useEffect, useState } from "preact/hooks";

/** Loads with `load` whenever `deps` change; `reload()` loads again. Errors become a message. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: string; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data }),
      (err: Error) => live && setState({ error: err.message }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]); // the caller lists what `load` depends on
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Calls `fn` now and every `ms` until unmounted. */
export function useInterval(fn: () => void, ms: number, deps: unknown[]): void {
  useEffect(() => {
    fn();
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  }, deps);
}

export const when = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "–");
export const size = (n: number | undefined) =>
  n === undefined ? "" : n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
