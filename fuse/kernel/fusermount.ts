import { execFile, spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { fuseFdAddon } from "../../lib/native-addon.js";

const run = promisify(execFile);

/** The setuid helper of Debian's fuse3 (libfuse 3): mounts and unmounts FUSE for ordinary users. */
export const FUSERMOUNT = "fusermount3";

/**
 * Whether /etc/fuse.conf lets users pass allow_other (a line `user_allow_other`). Without it,
 * fusermount3 refuses the option, and only the mounting user (not even root) reaches the mount.
 */
export async function userAllowOther(conf = "/etc/fuse.conf"): Promise<boolean> {
  const text = await readFile(conf, "utf8").catch(() => "");
  return text.split("\n").some((l) => l.trim() === "user_allow_other");
}

/**
 * Mounts a FUSE file system at `dir` through fusermount3 and returns the open /dev/fuse fd of
 * the new connection. fusermount3 (setuid root) opens /dev/fuse, checks that the caller may
 * mount there (owns or can write the mount point; only options users may pass), calls mount(2)
 * and sends the fd back over the unix socket named by _FUSE_COMMFD (SCM_RIGHTS), then exits.
 * `options` are fusermount3's -o list (fsname=, subtype=, ro, default_permissions, allow_other).
 */
export async function fusermountOpen(dir: string, options: string[]): Promise<number> {
  const addon = fuseFdAddon();
  const [mine, theirs] = addon.socketpair();
  try {
    const child = spawn(FUSERMOUNT, ["-o", options.join(","), "--", dir], {
      // The child's end becomes its fd 3 (spawn dup2()s it, so it survives exec).
      stdio: ["ignore", "ignore", "pipe", theirs],
      env: { ...process.env, _FUSE_COMMFD: "3" },
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res, rej) => {
      child.once("error", (err: NodeJS.ErrnoException) =>
        rej(err.code === "ENOENT" ? new Error(`${FUSERMOUNT} is not installed: install Debian's fuse3 (apt-get install fuse3), or mount as root`) : err),
      );
      child.once("close", res);
    });
    // It has exited: the fd, if it sent one, is already queued on our end.
    const fd = addon.recvFd(mine);
    if (code === 0 && fd >= 0) return fd;
    if (fd >= 0) closeSync(fd);
    throw new Error(`${FUSERMOUNT} could not mount ${dir}: ${stderr.trim() || `exit ${code}`}${hint(stderr)}`);
  } finally {
    closeSync(mine);
    closeSync(theirs);
  }
}

/** What to do about fusermount3's usual refusals. */
function hint(stderr: string): string {
  if (/failed to open \/dev\/fuse: Permission denied/.test(stderr)) return " (as root: chmod 0666 /dev/fuse, as Debian's udev rule does)";
  if (/user_allow_other/.test(stderr)) return " (add a line 'user_allow_other' to /etc/fuse.conf)";
  if (/Operation not permitted/.test(stderr)) return ` (is ${FUSERMOUNT} setuid root, and does this container allow mounts?)`;
  return "";
}

/** `fusermount3 -u` (or `-uz`: lazy, the path is free at once, open files live on). */
export async function fusermountUnmount(dir: string, lazy: boolean): Promise<void> {
  await run(FUSERMOUNT, [lazy ? "-uz" : "-u", "--", dir]);
}
