import { createRequire } from "node:module";
import type CliProgress from "cli-progress";

// Loaded on first use: only a transfer on a terminal draws a bar, and every CLI start would pay for it.
const require = createRequire(import.meta.url);

/** A byte progress bar (bytes, rate, ETA) on stderr when it is a terminal; silent otherwise. */
export interface Progress {
  add(bytes: number): void;
  stop(): void;
}

const units = ["B", "KiB", "MiB", "GiB", "TiB"];
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function byteProgress(total: number, label: string): Progress {
  if (!process.stderr.isTTY) return { add() {}, stop() {} };
  const cliProgress = require("cli-progress") as typeof CliProgress;
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {percentage}% | {done} / {size} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  const payload = () => ({
    done: formatBytes(done),
    size: formatBytes(total),
    rate: formatBytes(done / Math.max(0.001, (Date.now() - started) / 1000)),
  });
  bar.start(Math.max(total, 1), 0, payload());
  return {
    add(bytes) {
      done += bytes;
      bar.update(Math.min(done, Math.max(total, 1)), payload());
    },
    stop() {
      bar.update(Math.max(total, 1), payload());
      bar.stop();
    },
  };
}
