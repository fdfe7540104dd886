import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { open, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { describeMountStatus, mountStatus } from "../cli/mount-status.js";
import { BLOCK_SIZE, NotFoundError, VersionGoneError, type Volume } from "../client/index.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import Database from "better-sqlite3";
import { eventually } from "./helpers/eventually.js";
import { InProcessServer, inProcessFixture } from "./helpers/in-process-server.js";
import { bytes, readAll } from "./helpers/volume-data.js";
import { Mounts, within } from "./helpers/volume-mounts.js";

// Versions are kept only while latest or pinned, unreferenced blocks for 0.5 s, GC runs every
// 100 ms, and a pin lapses 3 s after its last renewal (a mount renews every second of real time).
// The server runs in this process on a TestClock: its time moves only when a test advances it.
const PIN_TTL_MS = 3000;
const OPTIONS = { volumeRetentionMs: 0, volumeBlockGraceMs: 500, volumeGcIntervalMs: 100, volumePinTtlMs: PIN_TTL_MS };
let mounts: Mounts;
let root: string;
const fx = inProcessFixture(OPTIONS);
beforeAll(async () => {
  mounts = new Mounts(fx.server);
  root = mkdtempSync(join(tmpdir(), "silo-pins-test-"));
});
const nfsMounted = new Set<string>();
afterEach(async () => {
  await mounts.cleanup();
  for (const dir of nfsMounted) await within(60_000, `nfs unmount ${dir}`, fx.server.cli(["nfs", "unmount", dir, "--timeout-ms", "30000"])).catch(() => {});
  nfsMounted.clear();
});
// afterEach unmounted everything (also after a failure).
afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Whether the blob store holds this block as a blob of its own (blocks over 64 KiB are). */
const stored = async (hash: string, on = fx.server) => (await on.storedBlobs()).has(hash);

/** The block hash of a one-block file in a version. */
async function blockOf(vol: Volume, version: number, path: string): Promise<string> {
  return (await vol.blocks.tree(version)).entries.find((e) => e.path === path)!.blocks![0] as string;
}

/**
 * Resolves once a GC pass has run everything that follows a change made now: a block only this
 * call's volume held is removed, and then collected (expiry and collection both ran after it).
 * Time moves a GC interval at a time until then (ticks that come while a pass runs join it).
 */
async function gcPassed(on = fx.server, client = fx.silo): Promise<void> {
  const control = await client.volumes.fromName(`gc-control-${Math.random().toString(36).slice(2)}`, { createIfMissing: true });
  await control.batchUpload().putFile(bytes(100_000), "c").commit();
  const hash = await blockOf(control, 1, "c");
  await control.removeFile("c");
  await eventually(async () => {
    await on.clock.advance(100);
    expect(await stored(hash, on), "the control block, collected by a GC pass").toBe(false);
  }, 20_000);
}

/** Like `eventually`, with the server's time moving on at about the pace of real time meanwhile (GC passes run). */
const meanwhile = (check: () => Promise<void>, on = fx.server) =>
  eventually(async () => {
    await on.clock.advance(100);
    await check();
  }, 20_000);

/** Mounts a network file system (close-to-open) with no background commits: a file open for writing stays pending until it is closed. */
async function nfsMount(name: string, dir: string): Promise<void> {
  nfsMounted.add(dir);
  const r = await within(60_000, `nfs mount ${name}`, fx.server.cli(["nfs", "mount", name, dir, "--commit-interval-ms", "0"]));
  if (r.code !== 0) throw new Error(`silo nfs mount failed (${r.code}): ${r.stderr}`);
}

/** The block hashes of a file in a version (every block stored: no holes). */
async function blocksOf(vol: Volume, version: number, path: string): Promise<string[]> {
  return (await vol.blocks.tree(version)).entries.find((e) => e.path === path)!.blocks as string[];
}

/** The block cache counters of a mount's daemon. */
async function cacheStats(dir: string): Promise<{ misses: number; bytesFetched: number }> {
  const status = (await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as { cache: { misses: number; bytesFetched: number } };
  return status.cache;
}

/** The versions a volume's pins hold, as the server stored them. */
function pinVersions(on: InProcessServer, volumeId: string): number[] {
  const db = new Database(join(on.home, "data/volumes.sqlite"), { readonly: true });
  try {
    return db.prepare("SELECT version FROM version_pins WHERE volume = ?").pluck().all(volumeId) as number[];
  } finally {
    db.close();
  }
}

/** The expiry times of a volume's pins, as the server stored them. */
function pinExpiries(on: InProcessServer, volumeId: string): number[] {
  const db = new Database(join(on.home, "data/volumes.sqlite"), { readonly: true });
  try {
    return db.prepare("SELECT expires_at FROM version_pins WHERE volume = ?").pluck().all(volumeId) as number[];
  } finally {
    db.close();
  }
}

/**
 * Moves the server's time forward by `ms`, a third of the pin TTL at a time, each time waiting
 * until the volume's mount renewed its pin at the new time (the mount renews on real time).
 */
async function advanceWithRenewals(on: InProcessServer, volumeId: string, ms: number): Promise<void> {
  for (let done = 0; done < ms; done += PIN_TTL_MS / 3) {
    await on.clock.advance(PIN_TTL_MS / 3);
    await eventually(() => expect(pinExpiries(on, volumeId)).toContain(on.clock.now() + PIN_TTL_MS), 10_000, 20);
  }
}

describe("version pins", () => {
  it("a mount keeps serving the bytes of its version while others replace and delete them; after unmount GC collects them", async () => {
    const vol = await fx.silo.volumes.fromName("pinned", { createIfMissing: true });
    const [oldA, oldB] = [bytes(200_000), bytes(150_000)];
    await vol.batchUpload().putFile(oldA, "a").putFile(oldB, "dir/b").commit();
    const [hashA, hashB] = [await blockOf(vol, 1, "a"), await blockOf(vol, 1, "dir/b")];
    const dir = join(root, "pinned");
    await mounts.mount("pinned", dir);

    // Another client replaces one file and deletes the other; the mount has read neither yet.
    const newA = bytes(200_000);
    await vol.batchUpload({ force: true }).putFile(newA, "a").commit();
    await vol.removeFile("dir/b");
    await gcPassed();
    // Well past a pin's TTL too: the mount's renewals keep its pin alive.
    await advanceWithRenewals(fx.server, vol.id, PIN_TTL_MS + 500);
    await gcPassed();

    // Read through the mount (the daemon is another process): still version 1's bytes.
    expect((await within(30_000, "read a", readFile(join(dir, "a")))).equals(oldA)).toBe(true);
    expect((await within(30_000, "read dir/b", readFile(join(dir, "dir/b")))).equals(oldB)).toBe(true);
    expect(await stored(hashA)).toBe(true);
    expect(await stored(hashB)).toBe(true);
    expect((await vol.info()).oldestVersion).toBe(1);

    await mounts.unmount(dir);
    await meanwhile(async () => {
      expect(await stored(hashA), "the replaced block, after unmount").toBe(false);
      expect(await stored(hashB), "the deleted block, after unmount").toBe(false);
    });
    const info = await vol.info();
    expect(info.oldestVersion).toBe(info.version);
    await expect(vol.blocks.pinVersion(1)).rejects.toBeInstanceOf(VersionGoneError);
  });

  it("a mount moves its pin along when it reloads and when it commits; older versions then go", async () => {
    const vol = await fx.silo.volumes.fromName("moving", { createIfMissing: true });
    await vol.batchUpload().putFile(bytes(100_000), "f").commit();
    const dir = join(root, "moving");
    await mounts.mount("moving", dir);
    const control = (op: "commit" | "reload") => within(30_000, op, controlRequest(join(stateDirFor(dir), "control.sock"), op));
    await vol.batchUpload({ force: true }).putFile(bytes(100_000), "f").commit();
    await vol.batchUpload().putFile(Buffer.from("new"), "g").commit();
    await gcPassed();
    expect((await vol.info()).oldestVersion).toBe(1);

    await control("reload");
    expect((await readdir(dir)).sort()).toEqual(["f", "g"]);
    await meanwhile(async () => expect((await vol.info()).oldestVersion, "the oldest version, following the reload").toBe(3));
    await writeFile(join(dir, "h"), "from the mount");
    await control("commit");
    await meanwhile(async () => expect((await vol.info()).oldestVersion, "the oldest version, following the commit").toBe(4));
  });

  it("a pin that is not renewed lapses and stops protecting its version", async () => {
    const vol = await fx.silo.volumes.fromName("lapsing", { createIfMissing: true });
    await vol.batchUpload().putFile(bytes(100_000), "x").commit();
    const oldHash = await blockOf(vol, 1, "x");
    const pin = await vol.blocks.pinVersion();
    expect(pin).toMatchObject({ version: 1, ttlMs: PIN_TTL_MS });
    await vol.batchUpload({ force: true }).putFile(bytes(100_000), "x").commit();
    await gcPassed();
    expect((await vol.info()).oldestVersion).toBe(1);
    expect(await stored(oldHash)).toBe(true);

    // Not renewed: past its TTL the pin lapses (the clock moves on), and GC collects what only it held.
    await meanwhile(async () => expect(await stored(oldHash), "the block only the lapsed pin held").toBe(false));
    expect((await vol.info()).oldestVersion).toBe(2);
    await expect(vol.blocks.renewPin(pin.pinId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.blocks.pinVersion(1)).rejects.toBeInstanceOf(VersionGoneError);
    await expect(vol.blocks.tree(1)).rejects.toThrow(/no longer retained/);
  });

  it("renews and moves a pin; refuses versions that do not exist", async () => {
    const vol = await fx.silo.volumes.fromName("renewing", { createIfMissing: true });
    await vol.batchUpload().putFile(Buffer.from("1"), "v").commit();
    const pin = await vol.blocks.pinVersion(1);
    await vol.batchUpload({ force: true }).putFile(Buffer.from("2"), "v").commit();
    const renewed = await vol.blocks.renewPin(pin.pinId);
    expect(renewed.version).toBe(1);
    expect(renewed.expiresAt).toBeGreaterThanOrEqual(pin.expiresAt);
    expect((await vol.blocks.renewPin(pin.pinId, 2)).version).toBe(2);
    await expect(vol.blocks.pinVersion(3)).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.blocks.renewPin(pin.pinId, 3)).rejects.toBeInstanceOf(NotFoundError);
    await vol.blocks.unpin(pin.pinId);
    await vol.blocks.unpin(pin.pinId);
    await expect(vol.blocks.renewPin(pin.pinId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("another workspace can neither create, renew nor delete a volume's pins", async () => {
    const vol = await fx.silo.volumes.fromName("private-pins", { createIfMissing: true });
    const pin = await vol.blocks.pinVersion();
    await using admin = fx.server.client();
    const ws = await admin.workspaces.create("pin-tenant");
    const call = (method: string, suffix: string) =>
      fetch(`${fx.server.url}/v1/volumes/${vol.id}/pins${suffix}`, {
        method,
        headers: {
          authorization: `Bearer ${ws.tokenId}:${ws.tokenSecret}`,
          ...(method === "DELETE" ? {} : { "content-type": "application/json" }),
        },
        body: method === "DELETE" ? undefined : "{}",
      });
    for (const [method, suffix] of [["POST", ""], ["PUT", `/${pin.pinId}`], ["DELETE", `/${pin.pinId}`]] as const) {
      const res = await call(method, suffix);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    }
    // The owner's pin is untouched.
    expect((await vol.blocks.renewPin(pin.pinId)).version).toBe(pin.version);
  });

  it("a mount whose renewals fail while the server is away keeps serving and renews again", async () => {
    // Its own server on a fixed port, so the daemon finds it again after a restart.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const away = await InProcessServer.start({ ...OPTIONS, port });
    const awayMounts = new Mounts(away);
    try {
      await using client = away.client();
      const vol = await client.volumes.fromName("away", { createIfMissing: true });
      const old = bytes(100_000);
      await vol.batchUpload().putFile(old, "a").commit();
      const dir = join(root, "away");
      await awayMounts.mount("away", dir);
      await away.stop();
      const daemonLog = `${stateDirFor(dir)}.log`;
      await eventually(async () => expect(await readFile(daemonLog, "utf8").catch(() => "")).toContain("will retry"));
      await away.launch();
      // Two TTLs: only renewals after the restart can keep the pin alive that long.
      await advanceWithRenewals(away, vol.id, 2 * PIN_TTL_MS);
      await vol.batchUpload({ force: true }).putFile(bytes(100_000), "a").commit();
      await gcPassed(away, client);
      expect((await within(30_000, "read a", readFile(join(dir, "a")))).equals(old)).toBe(true);
    } finally {
      await awayMounts.cleanup();
      await away.cleanup();
    }
  });

  it("a file open for writing keeps the blocks it came from while the mount's view moves past them: its close commits the old bytes with the write", async () => {
    const nfs = await fx.silo.networkFileSystems.fromName("pins-writer", { createIfMissing: true });
    const vol = nfs.treeHandle();
    const old = bytes(2 * BLOCK_SIZE + 300_000);
    await vol.batchUpload().putFile(old, "f").commit();
    const oldBlocks = await blocksOf(vol, 1, "f");
    expect(oldBlocks).toHaveLength(3);
    const dir = join(root, "pins-writer");
    await nfsMount("pins-writer", dir);

    // 4 KiB into the middle block: it becomes partial over its committed base, nothing is fetched.
    const patch = bytes(4096);
    const at = BLOCK_SIZE + 1_048_576;
    const fh = await within(30_000, "open f", open(join(dir, "f"), "r+"));
    try {
      await within(30_000, "write f", fh.write(patch, 0, patch.length, at));
      expect(await cacheStats(dir), "nothing fetched for the write").toMatchObject({ misses: 0, bytesFetched: 0 });

      // Another client replaces f; a listing on the mount catches up with it (f, open for writing, keeps its local state).
      await vol.batchUpload({ force: true }).putFile(bytes(100_000), "f").commit();
      await within(30_000, "list", readdir(dir));
      // A renewal after the catch-up, then GC passes: with retention 0 only the mount's pin can keep version 1's blocks.
      await advanceWithRenewals(fx.server, vol.id, PIN_TTL_MS / 3);
      await gcPassed();
      await gcPassed();
      for (const [i, hash] of oldBlocks.entries()) expect(await stored(hash), `old block ${i}, still needed by the open file`).toBe(true);
      // `silo volume status` shows the version the server's pin keeps (read before and after it: the pin may move meanwhile).
      // Its report is built here, not by spawning the CLI: a child spawned while this process holds
      // f open for writing closes its inherited copy at exec, a flush, and a flush on a network file
      // system commits, through the server that runs in this process, which waits for that exec.
      const before = pinVersions(fx.server, vol.id);
      const status = describeMountStatus(await within(30_000, "volume status", mountStatus(dir)));
      const shown = Number(/^pinned version\s+(\d+)/m.exec(status)?.[1]);
      expect([...before, ...pinVersions(fx.server, vol.id)]).toContain(shown);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    // close(2) commits (EIO if that failed).
    await within(60_000, "close f", fh.close());
    const expected = Buffer.from(old);
    patch.copy(expected, at);
    expect((await readAll(vol, "f")).equals(expected), "f on the server: the old bytes with the 4 KiB written").toBe(true);

    // The unchanged blocks are the old ones; committed and closed, the mount holds nothing old
    // any more, and GC collects what only version 1 named: the written block's old base.
    const newBlocks = await blocksOf(vol, await vol.blocks.latestVersion(), "f");
    expect([newBlocks[0], newBlocks[2]]).toEqual([oldBlocks[0], oldBlocks[2]]);
    await meanwhile(async () => expect(await stored(oldBlocks[1]!), "the old base, after the commit").toBe(false));
  });

  it("a file open for reading whose node a catch-up replaced keeps reading its old bytes after GC", async () => {
    const nfs = await fx.silo.networkFileSystems.fromName("pins-reader", { createIfMissing: true });
    const vol = nfs.treeHandle();
    const old = bytes(2 * BLOCK_SIZE + 300_000);
    await vol.batchUpload().putFile(old, "f").commit();
    const oldBlocks = await blocksOf(vol, 1, "f");
    const dir = join(root, "pins-reader");
    await nfsMount("pins-reader", dir);

    // Opened, nothing read yet (so nothing is in the block cache).
    const fh = await within(30_000, "open f", open(join(dir, "f"), "r"));
    try {
      await vol.batchUpload({ force: true }).putFile(bytes(100_000), "f").commit();
      await within(30_000, "list", readdir(dir));
      await advanceWithRenewals(fx.server, vol.id, PIN_TTL_MS / 3);
      await gcPassed();
      await gcPassed();
      for (const [i, hash] of oldBlocks.entries()) expect(await stored(hash), `old block ${i}, still needed by the open reader`).toBe(true);
      // Positioned reads (a stat of the inode would show the new file's size), as many as it takes.
      const got = Buffer.alloc(old.length);
      for (let done = 0; done < got.length; ) {
        const { bytesRead } = await within(60_000, "read f", fh.read(got, done, got.length - done, done));
        expect(bytesRead, `bytes read at ${done}`).toBeGreaterThan(0);
        done += bytesRead;
      }
      expect(got.equals(old), "the open reader reads version 1's bytes").toBe(true);
    } finally {
      await fh.close();
    }
    // The next open gets the new bytes.
    expect((await within(30_000, "read f", readFile(join(dir, "f")))).length).toBe(100_000);
    await meanwhile(async () => expect(await stored(oldBlocks[1]!), "an old block, after the reader closed").toBe(false));
  });

  it("a mount recovering a dead mount's changes holds the version they refer to while their commit keeps failing", async () => {
    // Room for f and one more file: the recovered changes (f changed, g new) do not fit beside x below.
    const vol = await fx.silo.volumes.fromName("pins-recover", { createIfMissing: true, inodeLimit: 2 });
    const old = bytes(2 * BLOCK_SIZE + 300_000);
    await vol.batchUpload().putFile(old, "f").commit();
    const oldBlocks = await blocksOf(vol, 1, "f");
    const dir = join(root, "pins-recover");
    await mounts.mount("pins-recover", dir, "--commit-interval-ms", "0");
    const patch = bytes(4096);
    const at = BLOCK_SIZE + 1_048_576;
    const fh = await within(30_000, "open f", open(join(dir, "f"), "r+"));
    await within(30_000, "write f", fh.write(patch, 0, patch.length, at));
    await within(30_000, "close f", fh.close());
    await within(30_000, "write g", writeFile(join(dir, "g"), "new"));
    // The daemon dies with f and g in its journal; its pin on version 1 lapses one TTL later.
    process.kill(await mounts.daemonPid(dir), "SIGKILL");

    // Meanwhile another client replaces f and fills the volume.
    await vol.batchUpload({ force: true }).putFile(bytes(100_000), "f").commit();
    await vol.batchUpload().putFile(Buffer.from("x"), "x").commit();
    // The next mount recovers f and g; their commit is refused (inode limit) and they stay pending.
    await mounts.mount("pins-recover", dir, "--commit-interval-ms", "0");
    await eventually(async () => expect(await readFile(`${stateDirFor(dir)}.log`, "utf8")).toMatch(/inode limit/));
    // Past the dead mount's pin: only the recovering mount's can keep version 1 now.
    await advanceWithRenewals(fx.server, vol.id, PIN_TTL_MS + 500);
    await gcPassed();
    await gcPassed();
    for (const [i, hash] of oldBlocks.entries()) expect(await stored(hash), `old block ${i}, which the recovered f refers to`).toBe(true);

    // Room again: the commit goes through, with version 1's bytes under the write.
    await vol.removeFile("x");
    await within(60_000, "commit", controlRequest(join(stateDirFor(dir), "control.sock"), "commit"));
    const expected = Buffer.from(old);
    patch.copy(expected, at);
    expect((await readAll(vol, "f")).equals(expected), "f on the server: the old bytes with the 4 KiB written").toBe(true);
    expect((await readAll(vol, "g")).toString()).toBe("new");
  });

  it("a file open for reading that the new version has as it is holds nothing older: a commit still moves the pin", async () => {
    const vol = await fx.silo.volumes.fromName("pins-open", { createIfMissing: true });
    await vol.batchUpload().putFile(bytes(100_000), "f").commit();
    const dir = join(root, "pins-open");
    await mounts.mount("pins-open", dir, "--commit-interval-ms", "0");
    const fh = await within(30_000, "open f", open(join(dir, "f"), "r"));
    try {
      await writeFile(join(dir, "h"), "from the mount");
      await within(30_000, "commit", controlRequest(join(stateDirFor(dir), "control.sock"), "commit"));
      await meanwhile(async () => expect((await vol.info()).oldestVersion, "the oldest version, following the commit").toBe(2));
    } finally {
      await fh.close();
    }
  });
});
