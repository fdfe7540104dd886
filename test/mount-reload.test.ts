
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-reload-");

const text = (p: string) => readFile(p, "utf8");
const missing = (p: string) => stat(p).then(
  () => false,
  (err: NodeJS.ErrnoException) => err.code === "ENOENT",
);

describe("volume mount reload", () => {
  it("shows another writer's changes the moment reload returns (names, sizes, bytes, deletions)", async () => {
    const vol = await fx.silo.volumes.fromName("inval", { createIfMissing: true });
    await vol.batchUpload().putFile(Buffer.from("one"), "a.txt").putFile(Buffer.from("gone soon"), "c.txt").putFile(Buffer.from("deep v1"), "d/e/f.txt").commit();
    const dir = join(root, "m");
    await mounts.mount("inval", dir, "--commit-interval-ms", "0");
    // Fill the kernel's caches: names (also a missing one), attributes, pages, a listing.
    expect(await text(join(dir, "a.txt"))).toBe("one");
    expect(await text(join(dir, "c.txt"))).toBe("gone soon");
    expect(await text(join(dir, "d/e/f.txt"))).toBe("deep v1");
    expect((await stat(join(dir, "a.txt"))).size).toBe(3);
    expect(await missing(join(dir, "b.txt"))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(["a.txt", "c.txt", "d"]);

    // Another writer: a changed size and content, a new file, a deletion, a change deep down.
    await vol.batchUpload({ force: true }).putFile(Buffer.from("one, but longer"), "a.txt").putFile(Buffer.from("new"), "b.txt").putFile(Buffer.from("deep v2!"), "d/e/f.txt").commit();
    await vol.removeFile("c.txt");
    // Not visible before the reload (the mount serves the version it pinned).
    expect(await text(join(dir, "a.txt"))).toBe("one");

    const reloaded = (await within(30_000, "reload", controlRequest(join(stateDirFor(dir), "control.sock"), "reload"))) as { version: number };
    expect(reloaded.version).toBe((await vol.info()).version);
    expect((await stat(join(dir, "a.txt"))).size).toBe("one, but longer".length);
    expect(await text(join(dir, "a.txt"))).toBe("one, but longer");
    expect(await text(join(dir, "b.txt"))).toBe("new");
    expect(await missing(join(dir, "c.txt"))).toBe(true);
    expect(await text(join(dir, "d/e/f.txt"))).toBe("deep v2!");
    expect((await readdir(dir)).sort()).toEqual(["a.txt", "b.txt", "d"]);
    await mounts.unmount(dir);
  });
});
