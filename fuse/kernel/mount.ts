import { execFile, spawn } from "node:child_process";
import { closeSync, constants as fsc, openSync } from "node:fs";
import { access, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { MAX_WRITE } from "./abi.js";
import { resolve } from "node:path";
import { promisify } from "node:util";
import type { Filesystem } from "./filesystem.js";
import { fusermountOpen, fusermountUnmount, userAllowOther } from "./fusermount.js";
import { FuseSession, type SessionOptions } from "./session.js";

const run = promisify(execFile);

export interface MountOptions {
  /** The source column of /proc/mounts (e.g. "silo-volume"). */
  fsname: string;
  /** The type is "fuse.<subtype>". */
  subtype: string;
  /**
   * Let other users reach the mount (root mounts it for containers running as anyone). Through
   * fusermount3 only where /etc/fuse.conf has user_allow_other; dropped otherwise.
   */
  allowOther?: boolean;
  /** The kernel checks permission bits itself (otherwise a root server enforces nothing). */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** Create the mount point if it is missing. */
  mkdir?: boolean;
  /** The largest READ the kernel sends (bytes; the max_read option): a spliced reply must fit a pipe. */
  maxRead?: number;
}

/** A live mount: its session, and how to take it down. */
export interface FuseMount {
  readonly dir: string;
  readonly session: FuseSession;
  readonly mounter: Mounter;
  /** Whether other users (root included) reach the mount. */
  readonly allowOther: boolean;
  /**
   * Unmounts (lazily if it is busy) and waits until the session has ended. A lazily detached
   * mount lives on while files on it are open: after `waitMs` a root mount aborts its
   * connection (those files fail with ENOTCONN); a fusermount3 mount waits for their close.
   * Safe to call twice and after someone else unmounted.
   */
  unmount(waitMs?: number): Promise<void>;
}

/** How the mount was made: mount(2) with CAP_SYS_ADMIN, or the setuid fusermount3 for other users. */
export type Mounter = "mount" | "fusermount3";

/**
 * Mounts `fs` at `dir` and serves it in this process. As root with CAP_SYS_ADMIN this needs
 * only /dev/fuse and mount(2): util-linux `mount -i -t fuse.SUBTYPE -o fd=3,…` is handed the
 * open /dev/fuse as its fd 3 and makes the call. Other users mount through fusermount3, which
 * passes the fd back over a unix socket (fusermount.ts, with the native addon). There
 * `allowOther` holds only if /etc/fuse.conf has user_allow_other (else only this user reaches
 * the mount: `FuseMount.allowOther` says which).
 */
export async function mountFuse(dir: string, fs: Filesystem, opts: MountOptions, sessionOpts: SessionOptions = {}): Promise<FuseMount> {
  const path = resolve(dir);
  if (opts.mkdir) await mkdir(path, { recursive: true });
  const st = await stat(path);
  await checkDevFuse();
  // util-linux mount refuses options to a user who is not root, capabilities or not.
  const mounter: Mounter = (process.getuid?.() ?? 0) === 0 && (await hasCapSysAdmin()) ? "mount" : "fusermount3";
  const common: string[] = [];
  const allowOther = !!opts.allowOther && (mounter === "mount" || (await userAllowOther()));
  if (allowOther) common.push("allow_other");
  if (opts.defaultPermissions) common.push("default_permissions");
  if (opts.readOnly) common.push("ro");
  if (opts.maxRead) common.push(`max_read=${opts.maxRead}`);
  let fd: number;
  if (mounter === "mount") {
    // Not a call on a FUSE mount of ours: /dev/fuse is a character device.
    fd = openSync("/dev/fuse", fsc.O_RDWR);
    const options = ["fd=3", `rootmode=${(st.mode & fsc.S_IFMT).toString(8)}`, `user_id=${process.getuid?.() ?? 0}`, `group_id=${process.getgid?.() ?? 0}`, "nosuid", "nodev", ...common];
    try {
      await mountWithFd(fd, opts.fsname, `fuse.${opts.subtype}`, options.join(","), path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  } else {
    // fusermount3 adds fd=, rootmode=, user_id=, group_id=, nosuid and nodev itself.
    fd = await fusermountOpen(path, [`fsname=${opts.fsname}`, `subtype=${opts.subtype}`, ...common]);
  }
  const unmountHow = mounter === "mount" ? unmountPath : (p: string) => fusermountUnmount(p, false).catch(() => fusermountUnmount(p, true));
  const lazyHow = mounter === "mount" ? lazyUnmountPath : (p: string) => fusermountUnmount(p, true);
  const session = new FuseSession(fd, fs, sessionOpts);
  // INIT is the first request on a fresh mount; answer it before reporting the mount ready.
  try {
    await session.start();
  } catch (err) {
    await lazyHow(path).catch(() => {});
    throw err;
  }
  // Root only: /sys is not writable by others (their mounts read ahead 128 KiB at a time).
  if (mounter === "mount") await raiseReadahead(path).catch(() => {});
  const connection = connectionId((await stat(path)).dev);
  let unmounting: Promise<void> | undefined;
  const mount: FuseMount = {
    dir: path,
    session,
    mounter,
    allowOther,
    unmount: (waitMs = 5_000) =>
      (unmounting ??= (async () => {
        await unmountHow(path).catch(() => {});
        let timer: NodeJS.Timeout | undefined;
        const ended = await Promise.race([session.ended.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), waitMs)))]);
        clearTimeout(timer);
        if (!ended) {
          // Detached but still open somewhere. Returning now would leave a connection nobody
          // serves (its next request blocks the caller and the daemon's exit for ever), and a
          // write answered after the owner's last commit would be lost. Root aborts it: later
          // calls fail with ENOTCONN, none is acknowledged. Others cannot (sysfs is root's):
          // they serve until the last file is closed.
          if (mounter === "mount") await abortConnection(connection).catch(() => {});
          await session.ended;
        }
        // Only now: closing the fd while reads still wait on it would not end them.
        closeQuietly(fd);
      })()),
  };
  return mount;
}

/** For the daemon's log: how a mount not made by root was made and who may reach it. */
export function mountAccessNote(mount: FuseMount): string | undefined {
  if (mount.mounter === "mount") return undefined;
  const who = mount.allowOther ? "every user reaches it (user_allow_other)" : "only this user reaches it (add 'user_allow_other' to /etc/fuse.conf to let others and root in)";
  return `mounted through fusermount3 as uid ${process.getuid?.()}: ${who}`;
}

const CAP_SYS_ADMIN = 21;

/** Whether this process may call mount(2) (CAP_SYS_ADMIN, which root in a container may lack). */
async function hasCapSysAdmin(): Promise<boolean> {
  const status = await readFile("/proc/self/status", "utf8").catch(() => "");
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) return (process.getuid?.() ?? 0) === 0;
  return ((BigInt(`0x${hex}`) >> BigInt(CAP_SYS_ADMIN)) & 1n) === 1n;
}

/** A one-line error saying what to do if /dev/fuse is missing or not ours to open. */
async function checkDevFuse(): Promise<void> {
  try {
    await access("/dev/fuse", fsc.R_OK | fsc.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error("no /dev/fuse: load the fuse kernel module (modprobe fuse), or give the container the device (docker run --device /dev/fuse)");
    if (code === "EACCES" || code === "EPERM")
      throw new Error(`/dev/fuse is not readable and writable by uid ${process.getuid?.()}: as root, chmod 0666 /dev/fuse (Debian's udev rule does), or mount as root`);
    throw err;
  }
}

/**
 * The kernel reads ahead on a FUSE mount only as far as the mount's backing device allows
 * (128 KiB by default), whatever max_pages says: raise it to one full request (1 MiB), so
 * sequential reads arrive as 1 MiB requests. The device number comes from mountinfo, not a
 * stat of the mount: that would put the root's attributes in the kernel's cache, where they
 * would outlive a killed daemon for the attribute timeout.
 */
async function raiseReadahead(path: string): Promise<void> {
  const unescapeField = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  const line = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").find((l) => unescapeField(l.split(" ")[4] ?? "") === path);
  const dev = line?.split(" ")[2];
  if (dev) await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(MAX_WRITE / 1024));
}

/** The kernel's name for a mount's connection in /sys/fs/fuse/connections: the minor of its st_dev (major 0). */
export function connectionId(dev: number): number {
  return (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
}

/** Aborts a FUSE connection through fusectl, mounting fusectl first where nobody has (root only). */
async function abortConnection(id: number): Promise<void> {
  const file = `/sys/fs/fuse/connections/${id}/abort`;
  try {
    await writeFile(file, "1");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await run("mount", ["-t", "fusectl", "none", "/sys/fs/fuse/connections"]);
    await writeFile(file, "1");
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function mountWithFd(fd: number, source: string, type: string, options: string, dir: string): Promise<void> {
  return new Promise((res, rej) => {
    // -i: no /sbin/mount.fuse helper; the fd is passed as the child's fd 3.
    const child = spawn("mount", ["-i", "-n", "-t", type, "-o", options, source, dir], { stdio: ["ignore", "ignore", "pipe", fd] });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", rej);
    child.once("close", (code) => (code === 0 ? res() : rej(new Error(`mount ${dir} failed: ${err.trim() || `exit ${code}`}`))));
  });
}

/** `umount`, or a lazy unmount if the mount is busy (open files keep working until closed). */
async function unmountPath(path: string): Promise<void> {
  try {
    await run("umount", [path]);
  } catch {
    await lazyUnmountPath(path);
  }
}

async function lazyUnmountPath(path: string): Promise<void> {
  await run("umount", ["-l", path]);
}
