/**
 * A volume mount as a POSIX file system (issue 16): ownership from the caller's credentials,
 * permissions checked by the kernel (default_permissions), sticky and setgid directories,
 * setuid/setgid clearing, nanosecond times and ctime, special files, hard links across commit
 * and remount, and Linux's errnos. The mount runs in its own process (`silo volume mount`, as
 * root); the system calls come from other processes (test/fixtures/posix-ops.py), as root and
 * as an unprivileged user (`nobody`, test/helpers/unprivileged-user.ts).
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";
import { eventually, waitFor } from "./helpers/eventually.js";
import { mountStatus } from "../cli/mount-status.js";
import { UnprivilegedUser } from "./helpers/unprivileged-user.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

const OPS = resolve(import.meta.dirname, "fixtures/posix-ops.py");
/** The user's PATH must not lead into /root (pyenv shims): the system's python3. */
const USER_PATH = "/usr/local/bin:/usr/bin:/bin";

type Result = { ok?: unknown; err?: string };
interface Stat {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  atime: string;
  mtime: string;
  ctime: string;
}

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-posix-");
let user: UnprivilegedUser;

beforeAll(async () => {
  // The unprivileged user must reach the mount points.
  chmodSync(root, 0o755);
  user = await UnprivilegedUser.create();
});
afterAll(async () => {
  await user?.cleanup();
});

/** Runs Python expressions (posix-ops.py) in `dir`, as root or as the unprivileged user. */
async function ops(dir: string, exprs: string[], as: "root" | "user" = "root"): Promise<Result[]> {
  const args = [as === "root" ? OPS : user.path(OPS), JSON.stringify(exprs), dir];
  const r =
    as === "root"
      ? await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) =>
          execFile(PYTHON, args, (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr })),
        )
      : await user.run(PYTHON, args, { PATH: USER_PATH });
  if (r.code !== 0) throw new Error(`posix-ops failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Result[];
}

/** One expression's value; throws with the errno if it failed. */
async function one<T = unknown>(dir: string, expr: string, as: "root" | "user" = "root"): Promise<T> {
  const [r] = await ops(dir, [expr], as);
  if (r?.err) throw new Error(`${expr}: ${r.err}`);
  return r?.ok as T;
}

/** The errno an expression fails with ("ok" if it succeeds). */
async function errnoOf(dir: string, expr: string, as: "root" | "user" = "root"): Promise<string> {
  const [r] = await ops(dir, [expr], as);
  return r?.err ?? "ok";
}

const stat = (dir: string, p: string, as: "root" | "user" = "root") => one<Stat>(dir, `st(${JSON.stringify(p)})`, as);

let volumes = 0;
/** A fresh volume mounted at a fresh directory. */
async function mounted(): Promise<{ name: string; dir: string }> {
  const name = `posix-${++volumes}`;
  await fx.silo.volumes.fromName(name, { createIfMissing: true });
  const dir = join(root, name);
  mkdirSync(dir);
  await mounts.mount(name, dir);
  return { name, dir };
}

/** Unmounts (which commits) and mounts again: what is left is what the server keeps. */
async function remount(name: string, dir: string): Promise<void> {
  await mounts.unmount(dir);
  await mounts.mount(name, dir);
}

describe("ownership and permissions", () => {
  it("new nodes belong to the caller; the kernel enforces permissions with them", async () => {
    const { name, dir } = await mounted();
    await one(dir, "os.mkdir('pub', 0o777) or os.chmod('pub', 0o777)");
    expect(await ops(dir, ["write('pub/mine', 'x')", "os.mkdir('pub/d')", "os.symlink('mine', 'pub/l')", "os.mkfifo('pub/p')"], "user")).toEqual([
      { ok: 1 },
      { ok: null },
      { ok: null },
      { ok: null },
    ]);
    for (const p of ["pub/mine", "pub/d", "pub/l", "pub/p"]) expect(await stat(dir, p)).toMatchObject({ uid: user.uid, gid: user.gid });
    await one(dir, "write('rootfile', 'secret', mode=0o600)");
    expect(await stat(dir, "rootfile")).toMatchObject({ uid: 0, gid: 0, mode: 0o600 });
    // Permissions follow ownership: root's 0600 file is closed to others, theirs is theirs.
    expect(await errnoOf(dir, "read('rootfile')", "user")).toBe("EACCES");
    expect(await errnoOf(dir, "write('rootfile', 'y')", "user")).toBe("EACCES");
    expect(await errnoOf(dir, "os.chmod('rootfile', 0o666)", "user")).toBe("EPERM");
    expect(await errnoOf(dir, "os.chown('pub/mine', 0, -1)", "user")).toBe("EPERM");
    expect(await errnoOf(dir, "write('newtop', 'z')", "user")).toBe("EACCES");
    expect(await errnoOf(dir, "os.chmod('pub/mine', 0o600)", "user")).toBe("ok");
    // Root hands a file over; its new owner may use it.
    await one(dir, `os.chown('rootfile', ${user.uid}, ${user.gid})`);
    expect(await one(dir, "read('rootfile')", "user")).toBe("secret");
    await remount(name, dir);
    expect(await stat(dir, "rootfile")).toMatchObject({ uid: user.uid, gid: user.gid, mode: 0o600 });
    expect(await stat(dir, "pub/mine")).toMatchObject({ uid: user.uid, mode: 0o600 });
    expect(await stat(dir, "pub/d")).toMatchObject({ uid: user.uid, type: "directory" });
    expect(await one(dir, "read('rootfile')", "user")).toBe("secret");
  });

  it("a sticky directory lets only owners remove or rename their entries", async () => {
    const { name, dir } = await mounted();
    await ops(dir, ["os.mkdir('tmp')", "os.chmod('tmp', 0o1777)", "write('tmp/roots', 'r', mode=0o666)"]);
    expect(await one(dir, "write('tmp/users', 'u')", "user")).toBe(1);
    expect(await errnoOf(dir, "os.unlink('tmp/roots')", "user")).toBe("EPERM");
    expect(await errnoOf(dir, "os.rename('tmp/roots', 'tmp/moved')", "user")).toBe("EPERM");
    // Writing another's file is a matter of its mode, not of the sticky bit.
    // (Without O_CREAT: Linux's protected_regular refuses O_CREAT of another's file in a sticky directory.)
    expect(await errnoOf(dir, "write('tmp/roots', 'w', flags=os.O_WRONLY)", "user")).toBe("ok");
    expect(await errnoOf(dir, "os.rename('tmp/users', 'tmp/users2')", "user")).toBe("ok");
    expect(await errnoOf(dir, "os.unlink('tmp/users2')", "user")).toBe("ok");
    await remount(name, dir);
    expect((await stat(dir, "tmp")).mode).toBe(0o1777);
    expect(await errnoOf(dir, "os.unlink('tmp/roots')", "user")).toBe("EPERM");
    expect(await errnoOf(dir, "os.unlink('tmp/roots')")).toBe("ok");
  });

  it("a setgid directory passes its group on, and its subdirectories are setgid too", async () => {
    const { name, dir } = await mounted();
    await ops(dir, ["os.mkdir('sg')", "os.chown('sg', 0, 4321)", "os.chmod('sg', 0o2777)"]);
    await ops(dir, ["write('sg/f', 'x')", "os.mkdir('sg/sub')", "os.mkfifo('sg/p')"], "user");
    expect(await stat(dir, "sg/f")).toMatchObject({ uid: user.uid, gid: 4321 });
    expect(await stat(dir, "sg/p")).toMatchObject({ gid: 4321 });
    const sub = await stat(dir, "sg/sub");
    expect(sub).toMatchObject({ uid: user.uid, gid: 4321 });
    expect(sub.mode & 0o2000).toBe(0o2000);
    await remount(name, dir);
    expect(await stat(dir, "sg/sub")).toMatchObject({ gid: 4321, mode: sub.mode });
    expect(await stat(dir, "sg/f")).toMatchObject({ gid: 4321 });
  });

  it("write and chown clear setuid/setgid as Linux does", async () => {
    const { dir } = await mounted();
    await ops(dir, ["os.mkdir('pub')", "os.chmod('pub', 0o777)"]);
    await ops(dir, ["write('pub/prog', '#!')", "os.chmod('pub/prog', 0o6755)"], "user");
    expect((await stat(dir, "pub/prog")).mode).toBe(0o6755);
    // A write by an unprivileged owner clears both (setgid because group-exec is set).
    await one(dir, "write('pub/prog', 'more', off=2)", "user");
    expect((await stat(dir, "pub/prog")).mode).toBe(0o755);
    // chown clears them too, even by root, for anything but a directory.
    await ops(dir, ["write('s', 'x')", "os.chmod('s', 0o4755)", "os.chown('s', 12, 34)"]);
    expect(await stat(dir, "s")).toMatchObject({ mode: 0o755, uid: 12, gid: 34 });
    await ops(dir, ["os.mkdir('dd')", "os.chmod('dd', 0o2755)", "os.chown('dd', 12, 34)"]);
    expect((await stat(dir, "dd")).mode).toBe(0o2755);
    // truncate(2) by the owner clears them as a write does; setgid without group-exec (mandatory
    // locking) survives a write.
    await ops(dir, ["write('pub/t', 'abc')", "os.chmod('pub/t', 0o6755)", "os.truncate('pub/t', 1)", "write('pub/lk', 'x')", "os.chmod('pub/lk', 0o2644)", "write('pub/lk', 'y', off=1)"], "user");
    expect((await stat(dir, "pub/t")).mode).toBe(0o755);
    expect((await stat(dir, "pub/lk")).mode).toBe(0o2644);
    // fallocate(2) growing the file, by the owner, clears them as on ext4 (no WRITE carries a flag).
    await ops(dir, ["write('pub/fa', 'abc')", "os.chmod('pub/fa', 0o6755)", "(lambda fd: os.posix_fallocate(fd, 0, 8192) or os.close(fd))(os.open('pub/fa', os.O_WRONLY))"], "user");
    expect(await stat(dir, "pub/fa")).toMatchObject({ mode: 0o755, size: 8192 });
  });

  it("the daemon clears setuid/setgid itself, so the kernel asks getxattr(security.capability) once per file, not before every write", async () => {
    const name = "posix-killpriv";
    await fx.silo.volumes.fromName(name, { createIfMissing: true });
    const dir = join(root, name);
    mkdirSync(dir);
    const stats = join(root, "killpriv-stats");
    await mounts.mountWithEnv({ SILO_FUSE_STATS: stats }, name, dir);
    await ops(dir, ["os.mkdir('pub')", "os.chmod('pub', 0o777)"]);
    // 200 writes through one descriptor, by root and by an unprivileged user.
    const loop = "(lambda fd: [os.pwrite(fd, b'x' * 100, i * 4096) for i in range(100)] and os.close(fd))(os.open(%s, os.O_WRONLY | os.O_CREAT, 0o644))";
    await ops(dir, [loop.replace("%s", "'pub/root'")]);
    await ops(dir, [loop.replace("%s", "'pub/user'")], "user");
    await mounts.unmount(dir);
    const served = readFileSync(stats, "utf8");
    expect(Number(/WRITE (\d+)/.exec(served)?.[1])).toBeGreaterThanOrEqual(200);
    expect(Number(/GETXATTR (\d+)/.exec(served)?.[1] ?? 0)).toBeLessThanOrEqual(4);
  });
});

describe("times", () => {
  it("utimensat sets both times to the nanosecond; ctime moves on every metadata change", async () => {
    const { name, dir } = await mounted();
    await one(dir, "write('f', 'abc')");
    await one(dir, "os.utime('f', ns=(1_000_000_123, 1_500_000_000_987_654_321))");
    let s = await stat(dir, "f");
    expect({ atime: s.atime, mtime: s.mtime }).toEqual({ atime: "1000000123", mtime: "1500000000987654321" });
    const c0 = BigInt(s.ctime);
    expect(c0).toBeGreaterThan(1_600_000_000_000_000_000n);
    for (const expr of ["os.chmod('f', 0o600)", "os.chown('f', 5, 6)", "os.link('f', 'g')", "os.rename('g', 'h')", "os.utime('f', ns=(1, 2))"]) {
      const before = BigInt((await stat(dir, "f")).ctime);
      await one(dir, expr);
      expect(BigInt((await stat(dir, "f")).ctime), expr).toBeGreaterThan(before);
    }
    // UTIME_NOW (os.utime with no times): both now.
    await one(dir, "os.utime('f')");
    s = await stat(dir, "f");
    expect(BigInt(s.mtime)).toBeGreaterThanOrEqual(c0);
    expect(s.atime).toBe(s.mtime);
    // Writes and truncates move mtime and ctime; adding and removing names move the directory's.
    await ops(dir, ["os.mkdir('d')", "os.utime('d', ns=(7, 7))", "os.utime('f', ns=(7, 7))"]);
    await one(dir, "write('f', 'x', off=10)");
    expect(BigInt((await stat(dir, "f")).mtime)).toBeGreaterThan(7n);
    await ops(dir, ["os.utime('f', ns=(7, 7))", "os.truncate('f', 2)"]);
    expect(BigInt((await stat(dir, "f")).mtime)).toBeGreaterThan(7n);
    await one(dir, "write('d/new', 'n')");
    expect(BigInt((await stat(dir, "d")).mtime)).toBeGreaterThan(7n);
    await ops(dir, ["os.utime('d', ns=(7, 7))", "os.unlink('d/new')"]);
    expect(BigInt((await stat(dir, "d")).mtime)).toBeGreaterThan(7n);
    // Times before 1970 and after 2038, kept through commit and remount.
    await ops(dir, ["os.utime('f', ns=(-1_000_000_001, 4_102_444_800_123_456_789))", "os.utime('d', ns=(3, 300_000_000_5))"]);
    const f = await stat(dir, "f");
    const d = await stat(dir, "d");
    expect(f).toMatchObject({ atime: "-1000000001", mtime: "4102444800123456789" });
    await remount(name, dir);
    expect(await stat(dir, "f")).toMatchObject({ atime: f.atime, mtime: f.mtime, ctime: f.ctime, uid: 5, gid: 6, mode: 0o600 });
    expect(await stat(dir, "d")).toMatchObject({ mtime: d.mtime, atime: d.atime });
  });

  it("an unprivileged user may set times only on its own files (UTIME_NOW where it may write)", async () => {
    const { dir } = await mounted();
    await ops(dir, ["write('roots', 'r', mode=0o666)", "write('closed', 'r', mode=0o644)"]);
    expect(await errnoOf(dir, "os.utime('roots', ns=(1, 1))", "user")).toBe("EPERM");
    expect(await errnoOf(dir, "os.utime('roots')", "user")).toBe("ok");
    expect(await errnoOf(dir, "os.utime('closed')", "user")).toBe("EACCES");
  });
});

describe("special files", () => {
  it("mknod makes fifos, sockets and devices; mkfifo and bind(2) work; all survive remount", async () => {
    const { name, dir } = await mounted();
    const r = await ops(dir, [
      "os.mkfifo('fifo', 0o640)",
      "os.mknod('fifo2', 0o600 | stat.S_IFIFO)",
      "os.mknod('char', 0o644 | stat.S_IFCHR, os.makedev(1, 3))",
      "os.mknod('block', 0o660 | stat.S_IFBLK, os.makedev(8, 17))",
      "os.mknod('sockn', 0o755 | stat.S_IFSOCK)",
      "sock('bound')",
      "os.mknod('reg', 0o644 | stat.S_IFREG)",
    ]);
    expect(r.every((x) => !x.err), JSON.stringify(r)).toBe(true);
    const expected = {
      fifo: { type: "fifo", mode: 0o640, size: 0 },
      fifo2: { type: "fifo", mode: 0o600 },
      char: { type: "char", rdev: 0x103 },
      block: { type: "block", mode: 0o660, rdev: 0x811 },
      sockn: { type: "socket" },
      bound: { type: "socket" },
      reg: { type: "file", size: 0 },
    };
    for (const [p, want] of Object.entries(expected)) expect(await stat(dir, p), p).toMatchObject(want);
    // The kernel serves a fifo: a writer and a reader meet through it.
    expect(await one(dir, "(lambda r: (write('fifo', 'hi', flags=os.O_WRONLY), os.read(r, 2).decode())[1])(os.open('fifo', os.O_RDONLY | os.O_NONBLOCK))")).toBe("hi");
    // As another user: creating fifos and sockets needs no privilege, devices do.
    await ops(dir, ["os.mkdir('pub')", "os.chmod('pub', 0o777)"]);
    expect(await ops(dir, ["os.mkfifo('pub/f')", "sock('pub/s')", "os.mknod('pub/c', 0o644 | stat.S_IFCHR, os.makedev(1, 3))"], "user")).toEqual([
      { ok: null },
      { ok: null },
      { err: "EPERM" },
    ]);
    await remount(name, dir);
    for (const [p, want] of Object.entries(expected)) expect(await stat(dir, p), p).toMatchObject(want);
    expect(await stat(dir, "pub/s")).toMatchObject({ type: "socket", uid: user.uid });
    expect(await one(dir, "sorted(os.listdir('.'))")).toEqual(["block", "bound", "char", "fifo", "fifo2", "pub", "reg", "sockn"]);
    // Special files go like any name.
    expect(await ops(dir, ["os.unlink('fifo')", "os.rename('char', 'char2')", "os.path.exists('char')"])).toEqual([{ ok: null }, { ok: null }, { ok: false }]);
  });
});

describe("hard links", () => {
  it("link() makes one inode with several names, kept through commit and remount", async () => {
    const { name, dir } = await mounted();
    await ops(dir, ["write('a', 'hello')", "os.mkdir('d')", "os.link('a', 'd/b')", "os.link('a', 'c')"]);
    const a = await stat(dir, "a");
    expect(a.nlink).toBe(3);
    expect(await stat(dir, "d/b")).toMatchObject({ ino: a.ino, nlink: 3 });
    await one(dir, "write('d/b', 'HELLO')");
    expect(await one(dir, "read('a')")).toBe("HELLO");
    // Hard links of symlinks and fifos too.
    await ops(dir, ["os.symlink('a', 's')", "os.link('s', 's2', follow_symlinks=False)", "os.mkfifo('p')", "os.link('p', 'p2')"]);
    await remount(name, dir);
    const after = await stat(dir, "a");
    expect(after.nlink).toBe(3);
    expect(await stat(dir, "d/b")).toMatchObject({ ino: after.ino, nlink: 3 });
    expect(await stat(dir, "c")).toMatchObject({ ino: after.ino });
    expect(await stat(dir, "s2")).toMatchObject({ type: "symlink", nlink: 2, ino: (await stat(dir, "s")).ino });
    expect(await stat(dir, "p2")).toMatchObject({ type: "fifo", nlink: 2 });
    // Still one file: a write through one name shows through the others, a chmod too.
    await ops(dir, ["write('c', 'j')", "os.chmod('a', 0o600)"]);
    expect(await one(dir, "read('d/b')")).toBe("jELLO");
    expect((await stat(dir, "d/b")).mode).toBe(0o600);
    // unlink of one name keeps the others.
    await one(dir, "os.unlink('a')");
    expect((await stat(dir, "c")).nlink).toBe(2);
    await remount(name, dir);
    expect(await stat(dir, "c")).toMatchObject({ nlink: 2, mode: 0o600, ino: (await stat(dir, "d/b")).ino });
    expect(await one(dir, "read('d/b')")).toBe("jELLO");
    expect(await errnoOf(dir, "os.stat('a')")).toBe("ENOENT");
    await one(dir, "os.unlink('c')");
    await remount(name, dir);
    expect(await stat(dir, "d/b")).toMatchObject({ nlink: 1 });
    expect(await one(dir, "read('d/b')")).toBe("jELLO");
    // An open file whose last name is gone has no links (fstat), as on ext4, and still reads.
    const unlinkedOpen = "(lambda fd: (os.unlink('d/b'), os.fstat(fd).st_nlink, os.read(fd, 5).decode(), os.close(fd))[1:3])(os.open('d/b', os.O_RDONLY))";
    expect(await one(dir, unlinkedOpen)).toEqual([0, "jELLO"]);
  });

  it("inode numbers stay the same after the kernel forgot them, as ext4's (hard links stay one number)", async () => {
    const { dir } = await mounted();
    await ops(dir, ["write('a', 'x')", "os.mkdir('d')", "os.link('a', 'd/b')"]);
    const before = { a: (await stat(dir, "a")).ino, d: (await stat(dir, "d")).ino };
    // Dropping dentries and inodes makes the kernel FORGET every name of the mount it does not hold.
    await waitFor("the kernel forgot the mount's names", async () => {
      writeFileSync("/proc/sys/vm/drop_caches", "2");
      return (await mountStatus(dir)).kernelInodes === 1;
    });
    expect((await stat(dir, "d/b")).ino).toBe(before.a);
    expect((await stat(dir, "d")).ino).toBe(before.d);
    expect((await stat(dir, "a")).ino).toBe(before.a);
  });

  it("renameat2 RENAME_EXCHANGE swaps two names, across directories and types, kept through remount", async () => {
    const { name, dir } = await mounted();
    await ops(dir, ["os.mkdir('d')", "os.mkdir('e')", "write('e/f', 'file')", "write('d/inner', 'in')"]);
    const ino = { d: (await stat(dir, "d")).ino, f: (await stat(dir, "e/f")).ino };
    await one(dir, "exchange('d', 'e/f')");
    expect(await stat(dir, "d")).toMatchObject({ type: "file", ino: ino.f });
    expect(await stat(dir, "e/f")).toMatchObject({ type: "directory", ino: ino.d });
    expect(await one(dir, "read('e/f/inner')")).toBe("in");
    expect(await errnoOf(dir, "exchange('d', 'nope')")).toBe("ENOENT");
    expect(await errnoOf(dir, "exchange('e', 'e/f/inner')")).toBe("EINVAL");
    await remount(name, dir);
    expect(await one(dir, "read('d')")).toBe("file");
    expect(await one(dir, "read('e/f/inner')")).toBe("in");
    expect(await stat(dir, "e")).toMatchObject({ type: "directory", nlink: 3 });
  });

  it("refuses links of directories (EPERM) and across file systems (EXDEV)", async () => {
    const { dir } = await mounted();
    const other = mkdtempSync(join(tmpdir(), "silo-posix-other-"));
    try {
      await ops(dir, ["os.mkdir('d')", "write('f', 'x')"]);
      expect(await errnoOf(dir, "os.link('d', 'd2')")).toBe("EPERM");
      expect(await errnoOf(dir, `os.link('f', ${JSON.stringify(join(other, "f"))})`)).toBe("EXDEV");
      expect(await errnoOf(dir, `os.rename('f', ${JSON.stringify(join(other, "f"))})`)).toBe("EXDEV");
      expect(await errnoOf(dir, "os.link('f', 'f')")).toBe("EEXIST");
      expect(await errnoOf(dir, "os.link('nope', 'x')")).toBe("ENOENT");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe("the local journal", () => {
  it("keeps metadata changes, special files and hard links through kill -9 of the daemon", async () => {
    await fx.silo.volumes.fromName("posix-crash", { createIfMissing: true });
    const dir = join(root, "posix-crash");
    mkdirSync(dir);
    await mounts.mount("posix-crash", dir, "--commit-interval-ms", "0");
    await ops(dir, ["write('f', 'data')", "os.mkdir('d')", "os.symlink('f', 's')"]);
    await mounts.unmount(dir);
    await mounts.mount("posix-crash", dir, "--commit-interval-ms", "0");
    await ops(dir, [
      "os.chown('f', 7, 8)",
      "os.chmod('f', 0o4710)",
      "os.utime('f', ns=(11, 22_000_000_033))",
      "os.chown('d', 9, 9)",
      "os.chown('s', 3, 4, follow_symlinks=False)",
      "os.link('f', 'd/g')",
      "os.mknod('d/c', 0o600 | stat.S_IFCHR, os.makedev(4, 5))",
      // close(2) writes the journal (docs/mounts.md): everything before it survives.
      "write('closed', 'x')",
    ]);
    const f = await stat(dir, "f");
    const pid = await mounts.daemonPid(dir);
    process.kill(pid, "SIGKILL");
    await eventually(() => expect(() => process.kill(pid, 0)).toThrow());
    await mounts.mount("posix-crash", dir);
    expect(await stat(dir, "f")).toMatchObject({ mode: 0o4710, uid: 7, gid: 8, atime: "11", mtime: "22000000033", nlink: 2, ctime: f.ctime });
    expect(await stat(dir, "d/g")).toMatchObject({ ino: (await stat(dir, "f")).ino });
    expect(await stat(dir, "d")).toMatchObject({ uid: 9, gid: 9 });
    expect(await stat(dir, "s")).toMatchObject({ type: "symlink", uid: 3, gid: 4 });
    expect(await stat(dir, "d/c")).toMatchObject({ type: "char", rdev: 0x405, mode: 0o600 });
    // And the recovered state was committed: a second remount has it from the server.
    await remount("posix-crash", dir);
    expect(await stat(dir, "f")).toMatchObject({ mode: 0o4710, uid: 7, nlink: 2, mtime: "22000000033" });
    expect(await stat(dir, "d/c")).toMatchObject({ type: "char", rdev: 0x405 });
  });
});

describe("errors as Linux gives them", () => {
  it("ENAMETOOLONG, EFBIG, ELOOP, ENOTEMPTY, ENOTDIR, EISDIR", async () => {
    const { dir } = await mounted();
    const long = JSON.stringify("n".repeat(256));
    const ok255 = JSON.stringify("n".repeat(255));
    await ops(dir, ["write('f', 'x')", "os.mkdir('d')", "write('d/x', '')"]);
    expect(await ops(dir, [
      `os.stat(${long})`,
      `write(${long}, 'x')`,
      `os.mkdir(${long})`,
      `os.symlink('f', ${long})`,
      `os.link('f', ${long})`,
      `os.rename('f', ${long})`,
      `os.mkfifo(${long})`,
      `write(${ok255}, 'x')`,
    ])).toEqual([...Array(7).fill({ err: "ENAMETOOLONG" }), { ok: 1 }]);
    for (const size of ["2**41", "2**54", "2**63-1"]) expect(await errnoOf(dir, `os.truncate('f', ${size})`), size).toBe("EFBIG");
    for (const off of ["2**41", "2**62"]) expect(await errnoOf(dir, `write('f', 'x', off=${off})`), off).toBe("EFBIG");
    await ops(dir, ["os.symlink('loop2', 'loop1')", "os.symlink('loop1', 'loop2')"]);
    expect(await errnoOf(dir, "read('loop1')")).toBe("ELOOP");
    expect(await errnoOf(dir, "os.open('loop1', os.O_RDONLY | os.O_NOFOLLOW)")).toBe("ELOOP");
    expect(await errnoOf(dir, "os.rmdir('d')")).toBe("ENOTEMPTY");
    await one(dir, "os.mkdir('e')");
    expect(await errnoOf(dir, "os.rename('e', 'd')")).toBe("ENOTEMPTY");
    expect(await errnoOf(dir, "os.rename('d', 'f')")).toBe("ENOTDIR");
    expect(await errnoOf(dir, "os.rename('f', 'e')")).toBe("EISDIR");
    expect(await errnoOf(dir, "os.rmdir('f')")).toBe("ENOTDIR");
    expect(await errnoOf(dir, "os.unlink('d')")).toBe("EISDIR");
    expect(await errnoOf(dir, "os.mkdir('f')")).toBe("EEXIST");
  });

  it("statfs reports the volume's inode limit and use", async () => {
    const { dir } = await mounted();
    const before = await one<number[]>(dir, "(lambda s: [s.f_files, s.f_ffree, s.f_namemax])(os.statvfs('.'))");
    expect(before[0]).toBe(10_000_000);
    expect(before[2]).toBe(255);
    await ops(dir, ["os.mkdir('d')", "write('d/f', '')", "os.symlink('x', 'l')"]);
    const after = await one<number[]>(dir, "(lambda s: [s.f_files, s.f_ffree])(os.statvfs('.'))");
    expect(after).toEqual([10_000_000, before[1]! - 3]);
  });

  it("EMLINK past the most names one inode may have", async () => {
    const { dir } = await mounted();
    // Up to the limit in one process (65,000 link() calls), then one more.
    const r = await within(
      240_000,
      "links",
      // Two directories: one may hold at most 32,768 names.
      ops(dir, ["write('f', 'x')", "os.mkdir('l')", "os.mkdir('m')", "[os.link('f', f'{\"lm\"[i % 2]}/{i}') for i in range(64_999)] and None", "st('f')['nlink']", "os.link('f', 'l/over')"]),
    );
    expect(r.slice(4)).toEqual([{ ok: 65_000 }, { err: "EMLINK" }]);
  }, 300_000);
});
