import { describe, expect, it } from "vitest";
import { NotFoundError } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes, readAll } from "./helpers/volume-data.js";

// Versions are kept only while latest, fresh blocks for 1.5 s, and GC runs every 100 ms.
const fx = siloServerFixture(["--volume-retention-ms", "0", "--volume-block-grace-ms", "1500", "--volume-gc-interval-ms", "100"]);

/** Whether the blob store (disk, or the bucket) holds this block as a blob of its own. */
const stored = async (hash: string) => (await fx.server.storedBlobs()).has(hash);

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
    const hashOf = (p: string) => tree.entries.find((e) => e.path === p)!.blocks![0]!;
    const [keepHash, dropHash, dropLargeHash] = [hashOf("keep"), hashOf("drop"), hashOf("drop-large")];
    // A copy shares the block: removing one of two references must not free it.
    await vol.copyFiles(["keep"], "keep-copy");
    await vol.removeFile("keep");
    await vol.removeFile("drop");
    await vol.removeFile("drop-large");
    expect(await stored(dropLargeHash)).toBe(true);
    expect((await vol.blocks.readBlock(dropHash)).equals(drop)).toBe(true);

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
    const hashes = (await a.blocks.tree(1)).entries.map((e) => e.blocks![0]!);
    await silo.volumes.delete("gc-a");
    const treeB = await b.blocks.tree(1);
    const sharedHash = treeB.entries[0]!.blocks![0]!;
    const ownOnly = hashes.find((h) => h !== sharedHash)!;
    await waitFor("the deleted volume's own block to be collected", async () => !(await stored(ownOnly)));
    expect(await stored(sharedHash)).toBe(true);
    expect((await readAll(b, "s")).equals(shared)).toBe(true);
  });

  it("a block uploaded but not yet committed survives GC during its grace period", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("gc-2", { createIfMissing: true });
    const data = bytes(2000);
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256").update(data).digest("hex");
    await vol.blocks.uploadBlock(hash, data);
    await new Promise((r) => setTimeout(r, 500)); // several GC passes
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: { path: "late", type: "file", mode: 0o644, size: 2000, mtimeMs: 0, blocks: [hash] } }] });
    await new Promise((r) => setTimeout(r, 2000)); // past the grace period: now it is referenced
    expect((await readAll(vol, "late")).equals(data)).toBe(true);
  });
});
