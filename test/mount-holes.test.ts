
import { open, readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { readAll, sha256 } from "./helpers/volume-data.js";
import { mountsFixture } from "./helpers/volume-mounts.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-holes-");

describe("holes on a mount", () => {
  it("a file committed with holes reads as zeros around its data; zero blocks written on the mount commit as holes", async () => {
    const vol = await fx.silo.volumes.fromName("holes", { createIfMissing: true });
    const tail = Buffer.from("the end");
    await vol.blocks.uploadBlocks([{ hash: sha256(tail), data: tail }]);
    const size = 2 * BLOCK_SIZE + tail.length;
    await vol.blocks.commitChanges({
      baseVersion: 0,
      changes: [{ op: "put", entry: { path: "sparse", type: "file", mode: 0o644, size, mtimeMs: 1000, blocks: [2, sha256(tail)] } }],
    });
    const dir = join(root, "m1");
    await mounts.mount("holes", dir, "--commit-interval-ms", "0");
    const read = await readFile(join(dir, "sparse"));
    expect(read.length).toBe(size);
    expect(read.subarray(0, 2 * BLOCK_SIZE).equals(Buffer.alloc(2 * BLOCK_SIZE))).toBe(true);
    expect(read.subarray(2 * BLOCK_SIZE).equals(tail)).toBe(true);

    // Write into the middle of a hole, and make a new file by truncate (zeros) plus one byte at its end.
    const fh = await open(join(dir, "sparse"), "r+");
    await fh.write(Buffer.from("hi"), 0, 2, BLOCK_SIZE + 10);
    await fh.close();
    await (await open(join(dir, "grown"), "w")).close();
    await truncate(join(dir, "grown"), 3 * BLOCK_SIZE + 4);
    const g = await open(join(dir, "grown"), "r+");
    await g.write(Buffer.from("x"), 0, 1, 3 * BLOCK_SIZE + 4);
    await g.close();
    await mounts.unmount(dir);

    const tree = new Map((await vol.blocks.tree(await vol.blocks.latestVersion())).entries.map((e) => [e.path, e]));
    const sparse = tree.get("sparse")!;
    expect(sparse.blocks).toHaveLength(3);
    expect(sparse.blocks![0]).toBe(1);
    expect(sparse.blocks![2]).toBe(sha256(tail));
    const grown = tree.get("grown")!;
    expect(grown.size).toBe(3 * BLOCK_SIZE + 5);
    // Three blocks of zeros are one hole: nothing uploaded for them.
    expect(grown.blocks).toEqual([3, sha256(Buffer.concat([Buffer.alloc(4), Buffer.from("x")]))]);

    const whole = await readAll(vol, "sparse");
    const expected = Buffer.alloc(size);
    expected.write("hi", BLOCK_SIZE + 10);
    tail.copy(expected, 2 * BLOCK_SIZE);
    expect(whole.equals(expected)).toBe(true);
    const grownBytes = await readAll(vol, "grown", { start: 3 * BLOCK_SIZE - 3 });
    expect(grownBytes.equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, "x".charCodeAt(0)]))).toBe(true);
  });
});
