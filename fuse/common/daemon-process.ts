import { type ChildProcess, spawn, type StdioOptions } from "node:child_process";
import { closeSync, existsSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";

/**
 * Ready handshake between a mount command and the FUSE daemon it starts: the daemon gets a pipe
 * as fd 3 and writes one JSON line on it, `{"ready":true,...}` once its mount serves requests or
 * `{"error":"..."}` if it could not mount. The parent learns the outcome without polling.
 */
export const HANDSHAKE_FD = 3;
/** Set for the daemon only, so a daemon run by hand never writes to an unrelated fd 3. */
const HANDSHAKE_ENV = "SILO_DAEMON_HANDSHAKE_FD";

/**
 * The compiled entry point of a daemon (fuse/<kind>/main.js): every daemon starts from the
 * `main.ts` of its folder. Found beside this module in dist/, or in dist/ when this module runs
 * from source (tests).
 */
export function daemonEntry(kind: "volume" | "nfs" | "bucket"): string {
  const built = join(import.meta.dirname, "..", kind, "main.js");
  return existsSync(built) ? built : join(import.meta.dirname, "../../dist/fuse", kind, "main.js");
}

export interface DaemonReady {
  ready: true;
  [key: string]: unknown;
}

export interface SpawnDaemonOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the daemon's stdout/stderr go: "inherit", or an open file descriptor (a log file). */
  output?: "inherit" | number;
  /** The log file behind `output`: its last lines go into the error when the daemon dies early. */
  logFile?: string;
  /** Written to the daemon's stdin, then closed (configs with credentials: never on argv or in the environment). */
  stdin?: string;
  /** Run in its own process group (terminal signals do not reach it; it may outlive the parent). */
  detached?: boolean;
  readyTimeoutMs?: number;
}

/**
 * V8 flags for every FUSE daemon. Their heaps stay small, but reads push gigabytes of
 * short-lived buffers through them (socket chunks, FUSE request buffers, blocks). With V8's
 * defaults that meant a full GC every ~40 ms, run by helper threads that compete with the FUSE
 * threads and the store for the cores. One GC thread, and room for 64 MB of old space before
 * the first full GC, cut the daemon's CPU per GiB read on 2 cores from ~2.9 s to ~1.6 s (bucket
 * mount) and from ~3.6–4.8 s to ~2.7–3.0 s (volume mount, cold read); see docs/benchmarks.md.
 * `--expose-gc`: a volume mount collects once its inode cache unloaded a cache's worth
 * (fuse/volume/tree-cache.ts).
 */
const DAEMON_NODE_FLAGS = ["--single-threaded-gc", "--initial-old-space-size=64", "--expose-gc"];
const DAEMON_THREADPOOL_SIZE = 12;

/**
 * Starts a daemon (`node [DAEMON_NODE_FLAGS] script ...args`) and resolves once it reports
 * ready; rejects (and kills it) otherwise.
 */
export async function spawnDaemon(
  script: string,
  args: string[],
  opts: SpawnDaemonOptions = {},
): Promise<{ child: ChildProcess; ready: DaemonReady }> {
  const out = opts.output ?? "inherit";
  const stdio: StdioOptions = [opts.stdin === undefined ? "ignore" : "pipe", out, out, "pipe"];
  const base = opts.env ?? process.env;
  // Each outstanding read of /dev/fuse holds a thread-pool thread (fuse/kernel/session.ts):
  // room for those plus the daemon's own file I/O.
  const env = { ...base, UV_THREADPOOL_SIZE: base.UV_THREADPOOL_SIZE ?? String(DAEMON_THREADPOOL_SIZE), [HANDSHAKE_ENV]: String(HANDSHAKE_FD) };
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, script, ...args], { env, stdio, detached: opts.detached ?? false });
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  const pipe = child.stdio[HANDSHAKE_FD] as Readable;
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  try {
    const ready = await new Promise<DaemonReady>((resolveReady, reject) => {
      let text = "";
      const timer = setTimeout(() => reject(new Error(`mount daemon did not become ready within ${timeoutMs} ms`)), timeoutMs);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      pipe.on("data", (d: Buffer) => {
        text += d.toString();
        const nl = text.indexOf("\n");
        if (nl < 0) return;
        let msg: DaemonReady | { error: string };
        try {
          msg = JSON.parse(text.slice(0, nl)) as DaemonReady | { error: string };
        } catch {
          return settle(() => reject(new Error(`mount daemon sent a bad ready line: ${text.slice(0, nl)}`)));
        }
        settle(() => ("error" in msg ? reject(new Error(String(msg.error))) : resolveReady(msg)));
      });
      child.once("error", (err) => settle(() => reject(err)));
      // "close", not "exit": the ready line may still be in the pipe when the process ends.
      child.once("close", (code, signal) =>
        settle(() => reject(new Error(`mount daemon exited (${signal ?? `code ${code}`}) before it was ready${logTail(opts.logFile)}`))),
      );
    });
    pipe.destroy();
    return { child, ready };
  } catch (err) {
    pipe.destroy();
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    throw err;
  }
}

function logTail(file: string | undefined): string {
  if (!file) return "";
  try {
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").slice(-10).join("\n");
    return lines ? `; its log (${file}) ends with:\n${lines}` : "";
  } catch {
    return "";
  }
}

/** Daemon side: reports the outcome of mounting to the process that started it (if any). */
export function reportToParent(message: DaemonReady | { error: string }): void {
  const fd = Number(process.env[HANDSHAKE_ENV]);
  if (!Number.isInteger(fd) || fd < 0) return; // started by hand (--foreground): nobody to tell
  delete process.env[HANDSHAKE_ENV];
  // Synchronous: the daemon may exit right after a failure, and the line must be in the pipe by then.
  try {
    writeSync(fd, `${JSON.stringify(message)}\n`);
    closeSync(fd);
  } catch {
    // The parent is gone (or gave up waiting): nobody to tell.
  }
}
