import { homedir } from "node:os";
import { join } from "node:path";

/** Everything `silo serve` can be told. Durations are milliseconds. */
export interface ServerOptions {
  /** State root: data in `<home>/data`, client profile in `<home>/config.json`. */
  home: string;
  host: string;
  port: number;
  logLevel: string;
  /** An ephemeral object is deleted this long after its creator's last heartbeat. */
  ephemeralTimeoutMs: number;
  /** A Dict entry expires after this long without a read or write. */
  dictEntryTtlMs: number;
  /** Volume versions younger than this stay readable (tree, delta); the latest always does. */
  volumeRetentionMs: number;
  /** Unreferenced volume blocks uploaded or reported present more recently than this are kept (an upload's commit may follow). */
  volumeBlockGraceMs: number;
  /** How often volume garbage collection runs. */
  volumeGcIntervalMs: number;
  /** Largest request body (a Dict value may be up to 100 MiB, plus framing). */
  bodyLimit: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

export function defaultHome(): string {
  return process.env.SILO_HOME || join(homedir(), ".silo");
}

export function defaultServerOptions(): ServerOptions {
  return {
    home: defaultHome(),
    host: "127.0.0.1",
    port: 7070,
    logLevel: "info",
    ephemeralTimeoutMs: 5 * 60 * 1000,
    dictEntryTtlMs: 7 * DAY_MS,
    volumeRetentionMs: 60 * 60 * 1000,
    volumeBlockGraceMs: 60 * 60 * 1000,
    volumeGcIntervalMs: 5 * 60 * 1000,
    bodyLimit: 101 * 1024 * 1024,
  };
}
