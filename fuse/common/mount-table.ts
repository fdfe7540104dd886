import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** What is at a mount point: nothing mounted, a mount that answers, or one whose daemon is gone. */
export type MountState = "unmounted" | "healthy" | "stale";

/** Mount points in this process's mount namespace (from /proc/self/mountinfo). */
export async function mountPoints(): Promise<Set<string>> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points = new Set<string>();
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    // mountinfo escapes space, tab, newline and backslash as octal.
    if (field) points.add(field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
  }
  return points;
}

export async function isMountPoint(dir: string): Promise<boolean> {
  return (await mountPoints()).has(resolve(dir));
}

/**
 * Classifies a mount point. A FUSE mount whose daemon died (kill -9) answers ENOTCONN at once;
 * one whose daemon hangs does not answer at all, so the probe gives up after `timeoutMs`.
 */
export async function probeMount(dir: string, timeoutMs = 2_000): Promise<MountState> {
  if (!(await isMountPoint(dir))) return "unmounted";
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"stale">((r) => (timer = setTimeout(() => r("stale"), timeoutMs)));
  const probe = stat(dir).then(
    () => "healthy" as const,
    (err: NodeJS.ErrnoException) => (err.code === "ENOTCONN" || err.code === "ECONNABORTED" ? ("stale" as const) : ("healthy" as const)),
  );
  try {
    return await Promise.race([probe, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Detaches a mount even while it is busy or its daemon is gone (`fusermount -uz`, else `umount -l`). */
export async function lazyUnmount(dir: string): Promise<void> {
  try {
    await run("fusermount", ["-uz", resolve(dir)]);
  } catch {
    await run("umount", ["-l", resolve(dir)]);
  }
}

/** Removes a stale mount left by a killed daemon so the directory can be mounted again; true if there was one. */
export async function clearStaleMount(dir: string): Promise<boolean> {
  if ((await probeMount(dir)) !== "stale") return false;
  await lazyUnmount(dir);
  return true;
}

/** Waits until `dir` is no longer a mount point (or the timeout passes); true if it is gone. */
export async function waitUnmounted(dir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isMountPoint(dir))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await isMountPoint(dir));
}
