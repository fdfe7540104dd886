import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";
import { mountsFixture } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, "fixtures/xattr-ops.py");
const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-xattrs-");

/** Runs extended-attribute calls in a python process (as `nobody` with asUser); their outcomes in order. */
async function xattrs(calls: unknown[][], asUser = false): Promise<unknown[]> {
  // The system's python: a user's shim (pyenv under /root) is not reachable by nobody.
  const argv = [PYTHON, SCRIPT, JSON.stringify(calls)];
  const cmd = asUser ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv] : argv;
  const { stdout } = await run(cmd[0]!, cmd.slice(1));
  return JSON.parse(stdout) as unknown[];
}

beforeAll(() => {
  chmodSync(root, 0o755); // nobody reaches the mount through it
});

describe("extended attributes on a mount", () => {
  it("set/get/list/remove with flags, size probes, namespaces and limits as ext4; committed, seen after remount and by another mount's reload", async () => {
    const vol = await fx.silo.volumes.fromName("xattrs", { createIfMissing: true });
    const dir = join(root, "m1");
    const other = join(root, "m2");
    await mounts.mount("xattrs", dir, "--commit-interval-ms", "0");
    await mounts.mount("xattrs", other, "--commit-interval-ms", "0");
    const f = join(dir, "f");
    const d = join(dir, "d");
    const l = join(dir, "l");
    writeFileSync(f, "data");
    mkdirSync(d);
    symlinkSync("f", l);
    const times = statSync(f);

    const name255 = `user.${"n".repeat(250)}`;
    expect(
      await xattrs([
        ["set", f, "user.color", "blue", 0],
        ["set", f, "user.color", "red", 1], // XATTR_CREATE on an existing name
        ["set", f, "user.size", "x", 2], // XATTR_REPLACE on a missing one
        ["set", f, "user.color", "green", 2],
        ["get", f, "user.color"],
        ["probe", f, "user.color"],
        ["short", f, "user.color"],
        ["get", f, "user.none"],
        ["set", f, "trusted.t", "root only", 0],
        ["set", f, "security.s", "sec", 0],
        ["set", f, "system.foo", "x", 0],
        ["set", f, "other.x", "x", 0],
        ["set", f, `user.${"n".repeat(251)}`, "x", 0],
        ["set", f, name255, "", 0],
        ["get", f, name255],
        ["set", f, "user.big", "v".repeat(4001), 0],
        ["set", d, "user.dir", "on a directory", 0],
        ["setl", l, "user.x", "x", 0],
        ["setl", l, "trusted.link", "on a symlink", 0],
        ["list", f],
        ["lsize", f],
        ["remove", f, "security.s"],
        ["remove", f, "security.s"],
      ]),
    ).toEqual([
      "ok",
      "EEXIST",
      "ENODATA",
      "ok",
      "green",
      5,
      "ERANGE",
      "ENODATA",
      "ok",
      "ok",
      "ENOTSUP", // EOPNOTSUPP, as python names it
      "ENOTSUP",
      "ERANGE",
      "ok",
      "",
      "ENOSPC",
      "ok",
      "EPERM",
      "ok",
      [name255, "security.s", "trusted.t", "user.color"].sort(),
      [name255, "security.s", "trusted.t", "user.color"].reduce((n, s) => n + s.length + 1, 0),
      "ok",
      "ENODATA",
    ]);
    // Attribute changes move the ctime, not the mtime.
    const after = statSync(f);
    expect(after.ctimeMs).toBeGreaterThan(times.ctimeMs);
    expect(after.mtimeMs).toBe(times.mtimeMs);
    // Another user sees neither trusted.* names nor values, and may not set them.
    expect(await xattrs([["list", f], ["get", f, "trusted.t"], ["get", f, "user.color"], ["set", f, "trusted.u", "x", 0]], true)).toEqual([
      [name255, "user.color"].sort(),
      "ENODATA",
      "green",
      "EPERM",
    ]);
    await mounts.unmount(dir);

    const tree = new Map((await vol.blocks.tree(await vol.blocks.latestVersion())).entries.map((e) => [e.path, e]));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    expect(tree.get("f")!.xattrs).toEqual({ "user.color": b64("green"), "trusted.t": b64("root only"), [name255]: "" });
    expect(tree.get("d")!.xattrs).toEqual({ "user.dir": b64("on a directory") });
    expect(tree.get("l")!.xattrs).toEqual({ "trusted.link": b64("on a symlink") });

    // The other mount sees them after a reload, and a fresh mount at once.
    const reload = await fx.server.cli(["volume", "reload", other]);
    expect(reload.code, reload.stderr).toBe(0);
    expect(await xattrs([["get", join(other, "f"), "user.color"], ["getl", join(other, "l"), "trusted.link"], ["list", join(other, "d")]])).toEqual([
      "green",
      "on a symlink",
      ["user.dir"],
    ]);
    // A removal commits too.
    expect(await xattrs([["remove", join(other, "f"), "user.color"]])).toEqual(["ok"]);
    await mounts.unmount(other);
    await mounts.mount("xattrs", dir, "--commit-interval-ms", "0");
    expect(await xattrs([["list", f], ["get", d, "user.dir"]])).toEqual([[name255, "trusted.t"].sort(), "on a directory"]);
    await mounts.unmount(dir);
  });

  it("an attribute followed by fsync survives kill -9 of the daemon: the next mount recovers it from the journal", async () => {
    const vol = await fx.silo.volumes.fromName("xattrs-crash", { createIfMissing: true });
    const dir = join(root, "crash");
    await mounts.mount("xattrs-crash", dir, "--commit-interval-ms", "0");
    const f = join(dir, "f");
    writeFileSync(f, "x");
    expect(await xattrs([["set", f, "user.kept", "after a crash", 0], ["fsync", f]])).toEqual(["ok", "ok"]);
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    await mounts.mount("xattrs-crash", dir, "--commit-interval-ms", "0");
    expect(await xattrs([["get", f, "user.kept"]])).toEqual(["after a crash"]);
    await mounts.unmount(dir);
    const entry = (await vol.blocks.tree(await vol.blocks.latestVersion())).entries.find((e) => e.path === "f");
    expect(entry?.xattrs).toEqual({ "user.kept": Buffer.from("after a crash").toString("base64") });
  });
});
