import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { logPath, mountRunDir } from "./mount-records.js";
import type { ReadyMessage } from "./daemon-runtime.js";

export interface LaunchOptions {
  /** Compiled daemon entry (a .js file that calls `runDaemon`). */
  entry: string;
  mountPoint: string;
  /** Sent to the daemon on its stdin as JSON (never on argv or in the environment: it may hold credentials). */
  config: unknown;
  /** How long to wait for the mount to go live. */
  timeoutMs?: number;
}

export interface LaunchedDaemon {
  pid: number;
  mountPoint: string;
  logFile: string;
}

/**
 * Starts a mount daemon as its own detached process and waits until it reports the mount
 * live (or fails, with its message). The daemon outlives the caller; its stdout/stderr go
 * to a log file next to its mount record. Handshake: one JSON line on the daemon's fd 3.
 */
export async function launchMountDaemon(opts: LaunchOptions): Promise<LaunchedDaemon> {
  const mountPoint = resolve(opts.mountPoint);
  mkdirSync(mountRunDir(), { recursive: true, mode: 0o700 });
  const logFile = logPath(mountPoint);
  const logFd = openSync(logFile, "a", 0o600);
  const child = spawn(process.execPath, [opts.entry], {
    detached: true,
    stdio: ["pipe", logFd, logFd, "pipe"],
    env: { ...process.env, SILO_MOUNT_LOG: logFile, SILO_MOUNT_STATUS_FD: "3" },
  });
  closeSync(logFd);
  child.stdin!.end(JSON.stringify(opts.config));
  const status = child.stdio[3] as Readable;

  try {
    const msg = await new Promise<ReadyMessage>((ok, fail) => {
      let buf = "";
      const timer = setTimeout(() => fail(new Error(`mount daemon did not report ready within ${opts.timeoutMs ?? 30_000} ms`)), opts.timeoutMs ?? 30_000);
      status.setEncoding("utf8");
      status.on("data", (d: string) => {
        buf += d;
        const nl = buf.indexOf("\n");
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          ok(JSON.parse(buf.slice(0, nl)) as ReadyMessage);
        } catch {
          fail(new Error(`mount daemon sent a bad status line: ${buf.slice(0, nl)}`));
        }
      });
      // "close", not "exit": the status line may still be in the pipe when the process ends.
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`mount daemon exited (${signal ?? `code ${code}`}) before the mount was ready${tail(logFile)}`));
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        fail(err);
      });
    });
    if (!msg.ready) throw new Error(msg.error ?? "mount failed");
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    status.destroy();
    throw err;
  }
  status.destroy();
  child.unref();
  return { pid: child.pid!, mountPoint, logFile };
}

function tail(file: string): string {
  try {
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").slice(-10).join("\n");
    return lines ? `; its log (${file}) ends with:\n${lines}` : "";
  } catch {
    return "";
  }
}
