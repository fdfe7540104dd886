import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "./helpers/eventually.js";
import { committedText as committed, Job, mountsFixture, within } from "./helpers/volume-mounts.js";
import { mountPointState } from "../fuse/common/mount-table.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const sh = promisify(execFile);

const jobs: Job[] = [];

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-test-");
afterEach(async () => {
  for (const j of jobs.splice(0)) j.kill();
});

describe("commit and reload (the reference's example)", () => {
  it("g does not see f's committed file until it reloads", async () => {
    await fx.silo.volumes.fromName("example", { createIfMissing: true });
    const g = await Job.start(fx.server, ["-v", "example:/root/foo"], "example");
    jobs.push(g);
    expect(await g.send("read /root/foo/bar.txt")).toEqual({ ok: true, value: null });

    // f: another job writes, commits, and ends.
    const f = await Job.start(fx.server, ["-v", "example:/root/foo"], "example");
    jobs.push(f);
    expect((await f.send("write /root/foo/bar.txt hello")).ok).toBe(true);
    expect((await f.send("commit")).ok).toBe(true);
    expect(await f.stop()).toBe(0);
    expect(await committed(fx.silo, "example", "bar.txt")).toBe("hello");

    expect(await g.send("read /root/foo/bar.txt")).toEqual({ ok: true, value: null });
    expect((await g.send("reload")).ok).toBe(true);
    expect(await g.send("read /root/foo/bar.txt")).toEqual({ ok: true, value: "hello" });
    expect(await g.stop()).toBe(0);
  });

  it("reload with an open file fails with VolumeBusyError and changes nothing", async () => {
    const vol = await fx.silo.volumes.fromName("busy", { createIfMissing: true });
    const g = await Job.start(fx.server, ["--commit-interval-ms", "0", "-v", "busy:/data"], "busy");
    jobs.push(g);
    expect((await g.send("write /data/a.txt one")).ok).toBe(true);
    expect((await g.send("open /data/a.txt")).ok).toBe(true);
    const before = await vol.blocks.latestVersion();
    const busy = await g.send("reload");
    expect(busy).toMatchObject({ ok: false, error: "VolumeBusyError" });
    expect(busy.message).toMatch(/volume busy/);
    // Nothing changed: the pending write was not committed by the refused reload.
    expect(await vol.blocks.latestVersion()).toBe(before);
    expect((await g.send("close")).ok).toBe(true);
    expect((await g.send("reload")).ok).toBe(true);
    expect(await committed(fx.silo, "busy", "a.txt")).toBe("one");
    await g.stop();
  });
});

describe("silo volume mount", () => {
  it("commits in the background and on unmount", async () => {
    await fx.silo.volumes.fromName("bg", { createIfMissing: true });
    const dir = join(root, "bg");
    await mounts.mount("bg", dir, "--commit-interval-ms", "300");
    await writeFile(join(dir, "early.txt"), "background");
    await waitFor("background commit", async () => (await committed(fx.silo, "bg", "early.txt")) === "background");
    await mounts.unmount(dir);

    await mounts.mount("bg", dir, "--commit-interval-ms", "0");
    // A mount beside it that commits every 300 ms shows how long a background commit takes.
    await fx.silo.volumes.fromName("bg-control", { createIfMissing: true });
    const control = join(root, "bg-control");
    await mounts.mount("bg-control", control, "--commit-interval-ms", "300");
    expect(await readFile(join(dir, "early.txt"), "utf8")).toBe("background");
    await writeFile(join(dir, "late.txt"), "final");
    // libfuse's name for unlinked-but-open files is an ordinary name to silo: a user's file.
    await writeFile(join(dir, ".fuse_hidden0001"), "a user's file");
    await writeFile(join(control, "late.txt"), "final");
    await waitFor("the control's background commit", async () => (await committed(fx.silo, "bg-control", "late.txt")) === "final");
    await writeFile(join(control, "later.txt"), "final");
    await waitFor("the control's next background commit", async () => (await committed(fx.silo, "bg-control", "later.txt")) === "final");
    expect(await committed(fx.silo, "bg", "late.txt")).toBeNull();
    await mounts.unmount(control);
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "bg", "late.txt")).toBe("final");
    expect(await committed(fx.silo, "bg", ".fuse_hidden0001")).toBe("a user's file");
    // The mount point is an empty directory again.
    expect(await readdir(dir)).toEqual([]);
  });

  it("fails creates past the inode limit with ENOSPC", async () => {
    await fx.silo.volumes.fromName("tiny", { createIfMissing: true, inodeLimit: 3 });
    const dir = join(root, "tiny");
    await mounts.mount("tiny", dir);
    await mkdir(join(dir, "d"));
    await writeFile(join(dir, "d/one"), "1");
    await writeFile(join(dir, "two"), "2");
    await expect(writeFile(join(dir, "three"), "3")).rejects.toMatchObject({ code: "ENOSPC" });
    await expect(mkdir(join(dir, "e"))).rejects.toMatchObject({ code: "ENOSPC" });
    // Replacing and deleting still work at the limit.
    await writeFile(join(dir, "two"), "22");
    await sh("rm", [join(dir, "d/one")]);
    await writeFile(join(dir, "three"), "3");
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "tiny", "three")).toBe("3");
    expect(await committed(fx.silo, "tiny", "two")).toBe("22");
  });

  it("--read-only fails every write with EROFS and still reads", async () => {
    const vol = await fx.silo.volumes.fromName("ro", { createIfMissing: true });
    const seed = join(root, "ro-seed");
    await mounts.mount("ro", seed);
    await writeFile(join(seed, "f.txt"), "data");
    await mounts.unmount(seed);
    const version = await vol.blocks.latestVersion();

    const dir = join(root, "ro");
    await mounts.mount("ro", dir, "--read-only");
    expect(await readFile(join(dir, "f.txt"), "utf8")).toBe("data");
    for (const attempt of [
      () => writeFile(join(dir, "new.txt"), "x"),
      () => writeFile(join(dir, "f.txt"), "y"),
      () => mkdir(join(dir, "sub")),
      () => sh("rm", [join(dir, "f.txt")]),
      () => sh("chmod", ["600", join(dir, "f.txt")]),
      () => sh("mv", [join(dir, "f.txt"), join(dir, "g.txt")]),
    ]) {
      await expect(attempt()).rejects.toSatisfy((e: Error & { code?: string; stderr?: string }) => e.code === "EROFS" || /Read-only file system/.test(e.stderr ?? ""));
    }
    await mounts.unmount(dir);
    expect(await vol.blocks.latestVersion()).toBe(version);
  });

  it("two mounts: different files both land; the same file: last commit wins", async () => {
    await fx.silo.volumes.fromName("shared", { createIfMissing: true });
    const a = join(root, "shared-a");
    const b = join(root, "shared-b");
    await mounts.mount("shared", a, "--commit-interval-ms", "0");
    await mounts.mount("shared", b, "--commit-interval-ms", "0");
    await writeFile(join(a, "from-a.txt"), "A");
    await writeFile(join(b, "from-b.txt"), "B");
    await writeFile(join(a, "same.txt"), "written by A");
    await writeFile(join(b, "same.txt"), "written by B");
    await mounts.unmount(a);
    await mounts.unmount(b);
    expect(await committed(fx.silo, "shared", "from-a.txt")).toBe("A");
    expect(await committed(fx.silo, "shared", "from-b.txt")).toBe("B");
    expect(await committed(fx.silo, "shared", "same.txt")).toBe("written by B");
  });

  it("is a POSIX file system to standard tools (cp -r, tar, rsync, sqlite3, git clone)", async () => {
    await fx.silo.volumes.fromName("posix", { createIfMissing: true });
    const dir = join(root, "posix");
    const src = join(root, "posix-src");
    await mkdir(join(src, "nested/deeper"), { recursive: true });
    await writeFile(join(src, "a.txt"), "alpha\n");
    await writeFile(join(src, "nested/b.bin"), Buffer.alloc(300_000, 7));
    await writeFile(join(src, "nested/deeper/c.txt"), "gamma\n");
    await sh("ln", ["-s", "a.txt", join(src, "link")]);
    await sh("git", ["init", "-q", join(src, "repo")]);
    await writeFile(join(src, "repo/readme"), "hi\n");
    await sh("git", ["-C", join(src, "repo"), "add", "."]);
    await sh("git", ["-C", join(src, "repo"), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"]);

    await mounts.mount("posix", dir, "--commit-interval-ms", "0");
    await within(60_000, "tools", (async () => {
      await sh("cp", ["-r", src, join(dir, "cp")]);
      await sh("tar", ["-cf", join(dir, "t.tar"), "-C", src, "."]);
      await mkdir(join(dir, "untar"));
      await sh("tar", ["-xf", join(dir, "t.tar"), "-C", join(dir, "untar")]);
      await sh("rsync", ["-a", `${src}/`, join(dir, "rsync")]);
      await sh("git", ["clone", "-q", join(src, "repo"), join(dir, "clone")]);
      await sh("sqlite3", [join(dir, "db.sqlite"), "create table t(x); insert into t values (1),(2),(3);"]);
      await sh("sqlite3", [join(dir, "db.sqlite"), "update t set x = x * 10;"]);
      // Random writes into an existing file, rename of a directory, hard link.
      await sh("dd", ["if=/dev/zero", `of=${join(dir, "cp/nested/b.bin")}`, "bs=1", "count=5", "seek=1000", "conv=notrunc", "status=none"]);
      await sh("mv", [join(dir, "untar"), join(dir, "moved")]);
      await sh("ln", [join(dir, "cp/a.txt"), join(dir, "hard.txt")]);
    })());
    await mounts.unmount(dir);

    // A fresh mount sees exactly what was written.
    const again = join(root, "posix-again");
    await mounts.mount("posix", again, "--read-only");
    for (const copy of ["cp", "moved", "rsync"]) {
      await sh("diff", ["-r", "--no-dereference", join(src, "nested/deeper"), join(again, copy, "nested/deeper")]);
      expect(await readFile(join(again, copy, "a.txt"), "utf8")).toBe("alpha\n");
      expect(await sh("readlink", [join(again, copy, "link")])).toMatchObject({ stdout: "a.txt\n" });
    }
    const bin = await readFile(join(again, "cp/nested/b.bin"));
    expect(bin.length).toBe(300_000);
    expect(bin.subarray(998, 1007)).toEqual(Buffer.from([7, 7, 0, 0, 0, 0, 0, 7, 7]));
    expect(await readFile(join(again, "hard.txt"), "utf8")).toBe("alpha\n");
    expect((await sh("git", ["-C", join(again, "clone"), "log", "--format=%s"])).stdout).toBe("init\n");
    expect((await sh("sqlite3", ["-readonly", join(again, "db.sqlite"), "select sum(x) from t;"])).stdout).toBe("60\n");
    expect(await readdir(join(again, "moved"))).toContain("nested");
  });

  it("a volume of another workspace cannot be mounted, and a failed mount leaves nothing behind", async () => {
    await fx.silo.volumes.fromName("private", { createIfMissing: true });
    const other = await fx.silo.workspaces.create("other");
    const dir = join(root, "other");
    const r = await within(60_000, "mount", fx.server.cli(["volume", "mount", "private", dir], { env: { SILO_TOKEN_ID: other.tokenId, SILO_TOKEN_SECRET: other.tokenSecret } }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not found|does not exist/i);
    expect(await mountPointState(dir)).toBe("free");
    // The failed daemon keeps its log (with the reason) next to its state dir: not needed here.
    rmSync(`${stateDirFor(dir)}.log`, { force: true });
  });

  it("a daemon killed with kill -9 leaves nothing that breaks the next mount, and loses no closed file", async () => {
    await fx.silo.volumes.fromName("crash", { createIfMissing: true });
    const dir = join(root, "crash");
    await mounts.mount("crash", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "kept.txt"), "committed");
    await within(30_000, "unmount", mounts.unmount(dir));
    await mounts.mount("crash", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "closed.txt"), "closed, never committed");
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    // The dead mount answers ENOTCONN ("Transport endpoint is not connected") or ECONNABORTED.
    await expect(within(10_000, "stat dead mount", stat(join(dir, "kept.txt")))).rejects.toSatisfy((e: NodeJS.ErrnoException) =>
      ["ENOTCONN", "ECONNABORTED"].includes(e.code ?? ""),
    );
    await mounts.mount("crash", dir);
    expect(await readFile(join(dir, "kept.txt"), "utf8")).toBe("committed");
    // A closed file is in the mount's journal: the next mount recovers it (docs/mounts.md).
    expect((await readdir(dir)).sort()).toEqual(["closed.txt", "kept.txt"]);
    expect(await readFile(join(dir, "closed.txt"), "utf8")).toBe("closed, never committed");
  });
});
