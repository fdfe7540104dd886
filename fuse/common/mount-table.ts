import { execFile } from "node:child_process";
import { readFile, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** `\040`-style escapes in /proc/self/mountinfo (spaces, tabs, newlines, backslashes in paths). */
const unescapeMountPath = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** Mount points currently in the kernel's table (this process's mount namespace). */
export async function mountedPaths(): Promise<Set<string>> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field) out.add(unescapeMountPath(field));
  }
  return out;
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await mountedPaths()).has(resolve(dir));
}

/** What is at a mount point: nothing mounted, a mount that answers, or one whose daemon is gone. */
export type MountPointState = "free" | "live" | "stale";

/**
 * Classifies `dir`. A FUSE mount whose daemon died (kill -9) stays in the kernel's table and
 * answers ENOTCONN ("Transport endpoint is not connected") until unmounted; one whose daemon
 * hangs does not answer at all, so the probe counts it stale after `timeoutMs`.
 */
export async function mountPointState(dir: string, timeoutMs = 2_000): Promise<MountPointState> {
  if (!(await isMounted(dir))) return "free";
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"stale">((r) => (timer = setTimeout(() => r("stale"), timeoutMs)));
  // statfs, not stat: the kernel may answer a stat of the root from its attribute cache even
  // after the daemon died; statfs always asks the daemon.
  const probe = statfs(dir).then(
    () => "live" as const,
    (err: NodeJS.ErrnoException) => (err.code === "ENOTCONN" || err.code === "ECONNABORTED" ? ("stale" as const) : ("live" as const)),
  );
  try {
    return await Promise.race([probe, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Detaches whatever is mounted at `dir` at once (lazy unmount: open files keep working, the
 * path is free immediately). `fusermount -uz` for FUSE mounts, `umount -l` as a fallback.
 */
export async function lazyUnmount(dir: string): Promise<void> {
  const path = resolve(dir);
  try {
    await run("fusermount", ["-uz", path]);
  } catch (first) {
    try {
      await run("umount", ["-l", path]);
    } catch {
      throw new Error(`Could not unmount ${path}: ${(first as Error).message.trim()}`);
    }
  }
}

/**
 * Makes `dir` ready to mount on: a stale mount left by a killed daemon is unmounted first;
 * a live mount is an error (unmount it first). Returns true if a stale mount was cleared.
 */
export async function clearStaleMount(dir: string): Promise<boolean> {
  const state = await mountPointState(dir);
  if (state === "live") throw new Error(`${resolve(dir)} is already a mount point (unmount it first)`);
  if (state === "free") return false;
  await lazyUnmount(dir);
  return true;
}

/** Waits until `dir` is no longer a mount point (or the timeout passes); true if it is gone. */
export async function waitUnmounted(dir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isMounted(dir))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await isMounted(dir));
}
