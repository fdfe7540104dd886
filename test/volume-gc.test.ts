import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../client/index.js";
import { eventually, waitFor } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes, readAll } from "./helpers/volume-data.js";

// Versions are kept only while latest, fresh blocks for 1.5 s, and GC runs every 100 ms.
const fx = siloServerFixture(["--volume-retention-ms", "0", "--volume-block-grace-ms", "1500", "--volume-gc-interval-ms", "100"]);

/** Whether the blob store (disk, or the bucket) holds this block as a blob of its own. */
const stored = async (hash: string) => (await fx.server.storedBlobs()).has(hash);

/** The same settings in this process on a TestClock: grace periods pass when the test advances time. */
const GRACE_MS = 1500;
const ip = inProcessFixture({ volumeRetentionMs: 0, volumeBlockGraceMs: GRACE_MS, volumeGcIntervalMs: 100 });
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("garbage collection", () => {
  it("drops versions outside retention and deletes blocks no row references; referenced blocks stay", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("gc-1", { createIfMissing: true });
    // One small block (kept inline in the index) and one large (a blob of its own) of each kind.
    const keep = bytes(4000);
    const drop = bytes(5000);
    const dropLarge = bytes(200_000);
    await vol.batchUpload().putFile(keep, "keep").putFile(drop, "drop").putFile(dropLarge, "drop-large").commit();
    const tree = await vol.blocks.tree(1);
    const hashOf = (p: string) => tree.entries.find((e) => e.path === p)!.blocks![0] as string;
    const [keepHash, dropHash, dropLargeHash] = [hashOf("keep"), hashOf("drop"), hashOf("drop-large")];
    // A copy shares the block: removing one of two references must not free it.
    await vol.copyFiles(["keep"], "keep-copy");
    await vol.removeFile("keep");
    await vol.removeFile("drop");
    await vol.removeFile("drop-large");
    // (Not checked here that the dropped blocks are still there: their 1.5 s grace runs on real
    // time, and on a loaded machine GC may already have taken them; the grace itself is tested
    // on a TestClock below.)

    const gone = (hash: string) => vol.blocks.readBlock(hash).then(() => false, (err: Error) => err instanceof NotFoundError);
    await waitFor("the dropped blocks to be collected", async () => (await gone(dropHash)) && !(await stored(dropLargeHash)));
    expect(await gone(dropLargeHash)).toBe(true);
    expect((await vol.blocks.readBlock(keepHash)).equals(keep)).toBe(true);
    expect((await readAll(vol, "keep-copy")).equals(keep)).toBe(true);
    const info = await vol.info();
    expect(info.oldestVersion).toBe(info.version);
    await expect(vol.blocks.delta(1, info.version)).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.blocks.tree(1)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("deleting a volume frees its blocks; blocks another volume of the workspace uses stay", async () => {
    await using silo = fx.server.client();
    const shared = bytes(100_000);
    const own = bytes(100_000);
    const a = await silo.volumes.fromName("gc-a", { createIfMissing: true });
    const b = await silo.volumes.fromName("gc-b", { createIfMissing: true });
    await a.batchUpload().putFile(shared, "s").putFile(own, "o").commit();
    await b.batchUpload().putFile(shared, "s").commit();
    const hashes = (await a.blocks.tree(1)).entries.map((e) => e.blocks![0] as string);
    await silo.volumes.delete("gc-a");
    const treeB = await b.blocks.tree(1);
    const sharedHash = treeB.entries[0]!.blocks![0] as string;
    const ownOnly = hashes.find((h) => h !== sharedHash)!;
    await waitFor("the deleted volume's own block to be collected", async () => !(await stored(ownOnly)));
    expect(await stored(sharedHash)).toBe(true);
    expect((await readAll(b, "s")).equals(shared)).toBe(true);
  });

  it("a block uploaded but not yet committed survives GC during its grace period", async () => {
    const { clock } = ip.server;
    const vol = await ip.silo.volumes.fromName("gc-2", { createIfMissing: true });
    /** Uploads a block nobody references (a blob of its own): a GC pass that runs once its grace is over collects it. */
    const marker = async () => {
      const data = bytes(100_000);
      await vol.blocks.uploadBlock(sha256(data), data);
      expect((await ip.server.storedBlobs()).has(sha256(data))).toBe(true);
      return sha256(data);
    };
    /**
     * Moves time on a GC interval at a time (never to `until` or past it) until a pass has
     * collected `hash`: a pass is async work, and ticks that come while one runs join it.
     */
    const collectedBefore = (hash: string, until: number) =>
      eventually(async () => {
        if (clock.now() + 100 < until) await clock.advance(100);
        expect((await ip.server.storedBlobs()).has(hash)).toBe(false);
      }, 20_000, 20);

    const early = await marker();
    await clock.advance(GRACE_MS + 1);
    const data = bytes(2000);
    const hash = sha256(data);
    await vol.blocks.uploadBlock(hash, data);
    const graceEnds = clock.now() + GRACE_MS;
    // A GC pass runs while the block is within its grace period: it collects the earlier marker, not the block.
    await collectedBefore(early, graceEnds);
    expect(clock.now()).toBeLessThan(graceEnds);
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: { path: "late", type: "file", mode: 0o644, size: 2000, mtimeMs: 0, blocks: [hash] } }] });
    // Past the grace period (a later marker shows a pass ran): now it is referenced, so it stays.
    const late = await marker();
    await clock.advance(GRACE_MS);
    await collectedBefore(late, Number.POSITIVE_INFINITY);
    expect((await readAll(vol, "late")).equals(data)).toBe(true);
  });
});
