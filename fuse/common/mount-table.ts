import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
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

export type MountPointState = "free" | "live" | "stale";

/**
 * What is at `dir`: nothing mounted, a live mount, or a stale FUSE mount whose daemon died
 * (kill -9): the kernel keeps that entry and every access fails with ENOTCONN
 * ("Transport endpoint is not connected") until it is unmounted.
 */
export async function mountPointState(dir: string): Promise<MountPointState> {
  const mounted = await isMounted(dir);
  try {
    await stat(dir);
    return mounted ? "live" : "free";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTCONN" || code === "ECONNABORTED") return "stale";
    if (code === "ENOENT" && !mounted) return "free";
    throw err;
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
