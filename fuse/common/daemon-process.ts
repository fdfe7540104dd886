import { type ChildProcess, spawn, type StdioOptions } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import type { Readable } from "node:stream";

/**
 * Ready handshake between a mount command and the FUSE daemon it starts: the daemon gets a pipe
 * as fd 3 and writes one JSON line on it, `{"ready":true,...}` once its mount serves requests or
 * `{"error":"..."}` if it could not mount. The parent learns the outcome without polling.
 */
export const HANDSHAKE_FD = 3;
/** Set for the daemon only, so a daemon run by hand never writes to an unrelated fd 3. */
const HANDSHAKE_ENV = "SILO_DAEMON_HANDSHAKE_FD";

export interface DaemonReady {
  ready: true;
  [key: string]: unknown;
}

export interface SpawnDaemonOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the daemon's stdout/stderr go: "inherit", or an open file descriptor (a log file). */
  output?: "inherit" | number;
  /** Run in its own process group (terminal signals do not reach it; it may outlive the parent). */
  detached?: boolean;
  readyTimeoutMs?: number;
}

/** Starts a daemon process and resolves once it reports ready; rejects (and kills it) otherwise. */
export async function spawnDaemon(
  command: string,
  args: string[],
  opts: SpawnDaemonOptions = {},
): Promise<{ child: ChildProcess; ready: DaemonReady }> {
  const out = opts.output ?? "inherit";
  const stdio: StdioOptions = ["ignore", out, out, "pipe"];
  const env = { ...(opts.env ?? process.env), [HANDSHAKE_ENV]: String(HANDSHAKE_FD) };
  const child = spawn(command, args, { env, stdio, detached: opts.detached ?? false });
  const pipe = child.stdio[HANDSHAKE_FD] as Readable;
  try {
    const ready = await new Promise<DaemonReady>((resolveReady, reject) => {
      let text = "";
      const timer = setTimeout(() => reject(new Error(`mount daemon did not become ready within ${opts.readyTimeoutMs ?? 30_000} ms`)), opts.readyTimeoutMs ?? 30_000);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      pipe.on("data", (d: Buffer) => {
        text += d.toString();
        const nl = text.indexOf("\n");
        if (nl < 0) return;
        const msg = JSON.parse(text.slice(0, nl)) as DaemonReady | { error: string };
        const failure = "error" in msg ? String(msg.error) : undefined;
        settle(() => (failure !== undefined ? reject(new Error(failure)) : resolveReady(msg as DaemonReady)));
      });
      child.once("error", (err) => settle(() => reject(err)));
      child.once("exit", (code, signal) => settle(() => reject(new Error(`mount daemon exited (${signal ?? `code ${code}`}) before it was ready`))));
    });
    pipe.destroy();
    return { child, ready };
  } catch (err) {
    pipe.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    throw err;
  }
}

/** Daemon side: reports the outcome of mounting to the process that started it (if any). */
export function reportToParent(message: DaemonReady | { error: string }): void {
  const fd = Number(process.env[HANDSHAKE_ENV]);
  if (!Number.isInteger(fd) || fd < 0) return; // started by hand (--foreground): nobody to tell
  delete process.env[HANDSHAKE_ENV];
  try {
    writeSync(fd, `${JSON.stringify(message)}\n`);
    closeSync(fd);
  } catch {
    // The parent is gone: nobody to tell.
  }
}
