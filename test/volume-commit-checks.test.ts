import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, type Volume } from "../client/index.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { allPaths, bytes, readAll, sha256 } from "./helpers/volume-data.js";

const fx = siloServerFixture();
let seq = 0;

async function fresh(): Promise<Volume> {
  return fx.server.client().volumes.fromName(`checks-${seq++}`, { createIfMissing: true });
}

/** A commit sent as raw JSON, as any HTTP client could. */
async function rawCommit(server: SiloServer, vol: Volume, body: unknown): Promise<{ status: number; json: { error?: { code: string; message: string }; version?: number } }> {
  const res = await fetch(`${server.url}/v1/volumes/${vol.id}/commit`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.profile.tokenId}:${server.profile.tokenSecret}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string }; version?: number } };
}

const put = (path: string, size: number, blocks: unknown[], extra: Record<string, unknown> = {}) => ({
  op: "put",
  entry: { path, type: "file", mode: 0o644, size, mtimeMs: 1000, blocks, ...extra },
});

describe("the server trusts no commit", () => {
  it("refuses with 400 and applies nothing: a file whose size is not what its blocks hold, or a malformed entry", async () => {
    const vol = await fresh();
    const ten = bytes(10);
    const twenty = bytes(20);
    await vol.blocks.uploadBlocks([
      { hash: sha256(ten), data: ten },
      { hash: sha256(twenty), data: twenty },
    ]);
    const good = put("good", 10, [sha256(ten)]);
    const base = await vol.blocks.latestVersion();
    const before = await allPaths(vol);

    const bad: Array<[string, unknown]> = [
      ["size beyond the block", put("f", 11, [sha256(ten)])],
      ["size short of the block", put("f", 9, [sha256(ten)])],
      ["a block that is not the last holds less than BLOCK_SIZE", put("f", BLOCK_SIZE + 10, [sha256(twenty), sha256(ten)])],
      ["too few blocks", put("f", BLOCK_SIZE + 10, [sha256(ten)])],
      ["too many blocks", put("f", 10, [sha256(ten), sha256(ten)])],
      ["no blocks for bytes", put("f", 10, [])],
      ["a hole of 0 blocks", put("f", 10, [0])],
      ["a negative hole", put("f", 10, [-1])],
      ["a fractional hole", put("f", 10, [0.5])],
      ["a hole longer than the file", put("f", 10, [2])],
      ["an empty hash", put("f", 10, [""])],
      ["an upper-case hash", put("f", 10, [sha256(ten).toUpperCase()])],
      ["a hash that would read back as a hole", put("f", 10, [`${"0".repeat(48)}${"1".repeat(16)}`])],
      ["a block never uploaded", put("f", 10, [sha256(bytes(10))])],
      ["a block list that is not a list", put("f", 10, "abc" as unknown as unknown[])],
      ["a negative size", put("f", -1, [])],
      ["a size of 1 TiB", put("f", 2 ** 40, [2 ** 40 / BLOCK_SIZE])],
      ["a path with ..", put("a/../../f", 10, [sha256(ten)])],
      ["a bad mode", put("f", 10, [sha256(ten)], { mode: 0o70000 })],
      ["an unknown type", { op: "put", entry: { path: "f", type: "door", mode: 0o644, size: 0, mtimeMs: 0 } }],
      ["a symlink without a target", { op: "put", entry: { path: "f", type: "symlink", mode: 0o777, size: 0, mtimeMs: 0 } }],
      ["a put without an entry", { op: "put" }],
      ["an entry that is not an object", { op: "put", entry: 5 }],
      ["an unknown op", { op: "chmod", path: "f" }],
      ["a delete of the root", { op: "delete", path: "/" }],
    ];
    for (const [why, change] of bad) {
      // The good change first: it must not land either.
      const { status, json } = await rawCommit(fx.server, vol, { baseVersion: base, changes: [good, change] });
      expect([400, 413], `${why}: ${status} ${json.error?.message}`).toContain(status);
      expect(await vol.blocks.latestVersion(), why).toBe(base);
    }
    for (const body of ["{", "null", "[]", JSON.stringify({ baseVersion: base }), JSON.stringify({ baseVersion: base, changes: [null] })]) {
      const { status } = await rawCommit(fx.server, vol, body);
      expect(status, body).toBe(400);
    }
    expect(await vol.blocks.latestVersion()).toBe(base);
    expect(await allPaths(vol)).toEqual(before);
    // The same good change alone lands.
    expect((await rawCommit(fx.server, vol, { baseVersion: base, changes: [good] })).status).toBe(200);
    expect((await readAll(vol, "good")).equals(ten)).toBe(true);
  });

  it("holes are explicit and cheap: a sparse file of 1 TiB − 1 bytes commits as two items and reads as zeros around its data", async () => {
    const vol = await fresh();
    const tail = bytes(1000);
    await vol.blocks.uploadBlocks([{ hash: sha256(tail), data: tail }]);
    const size = 2 ** 40 - BLOCK_SIZE + 1000;
    const holes = Math.ceil(size / BLOCK_SIZE) - 1;
    const { status, json } = await rawCommit(fx.server, vol, { baseVersion: 0, changes: [put("sparse", size, [holes, sha256(tail)])] });
    expect(status).toBe(200);
    const entry = (await vol.listdir("/sparse"))[0]!;
    expect(entry.size).toBe(size);
    // Stored and sent back as it was committed: one hole item, one hash.
    expect((await vol.blocks.tree(json.version!)).entries[0]!.blocks).toEqual([holes, sha256(tail)]);
    expect((await readAll(vol, "sparse", { start: size - 1000 })).equals(tail)).toBe(true);
    const around = await readAll(vol, "sparse", { start: size - 1000 - 5000, end: size - 990 });
    expect(around.subarray(0, 5000).equals(Buffer.alloc(5000))).toBe(true);
    expect(around.subarray(5000).equals(tail.subarray(0, 10))).toBe(true);
    expect((await readAll(vol, "sparse", { start: 3 * BLOCK_SIZE - 7, end: 3 * BLOCK_SIZE + 7 })).equals(Buffer.alloc(14))).toBe(true);
  });

  it("a hole at the end of a file, and a small sparse file read whole (POST …/files)", async () => {
    const vol = await fresh();
    const head = bytes(BLOCK_SIZE);
    await vol.blocks.uploadBlock(sha256(head), head);
    const small = bytes(100);
    await vol.blocks.uploadBlocks([{ hash: sha256(small), data: small }]);
    const v = await vol.blocks.latestVersion();
    const r = await rawCommit(fx.server, vol, {
      baseVersion: v,
      changes: [put("head-then-hole", BLOCK_SIZE + 123, [sha256(head), 1]), put("zeros", 5000, [1]), put("mixed", 100, [sha256(small)])],
    });
    expect(r.status).toBe(200);
    const whole = await readAll(vol, "head-then-hole");
    expect(whole.length).toBe(BLOCK_SIZE + 123);
    expect(whole.subarray(0, BLOCK_SIZE).equals(head)).toBe(true);
    expect(whole.subarray(BLOCK_SIZE).equals(Buffer.alloc(123))).toBe(true);
    const files = await vol.readSmallFiles(["zeros", "mixed"]);
    expect(files.map((f) => f.data.length)).toEqual([5000, 100]);
    expect(files[0]!.data.equals(Buffer.alloc(5000))).toBe(true);
  });
});

describe("readers of a short file (written before commits were checked)", () => {
  it("fail at once instead of waiting for bytes that are not there", async () => {
    // The run's blob backend: with S3 the client reads the large block from the bucket itself.
    const server = await SiloServer.start();
    try {
      const vol = await server.client().volumes.fromName("short", { createIfMissing: true });
      await vol.batchUpload().putFile(Buffer.from("0123456789"), "/short.txt").putFile(bytes(100_000), "/large.bin").commit();
      await server.stop();
      // What an unchecked commit could leave behind: sizes beyond the blocks' bytes.
      const db = new Database(join(server.home, "data", "volumes.sqlite"));
      expect(db.prepare("UPDATE entries SET size = 1000 WHERE path = 'short.txt'").run().changes).toBe(1);
      expect(db.prepare("UPDATE entries SET size = 150000 WHERE path = 'large.bin'").run().changes).toBe(1);
      db.close();
      await server.launch();
      const v = await server.client().volumes.fromName("short");
      const auth = { authorization: `Bearer ${server.profile.tokenId}:${server.profile.tokenSecret}` };
      const res = await fetch(`${server.url}/v1/volumes/${v.id}/file?path=short.txt`, { headers: auth });
      // The header promised 1000 bytes; the body must end in an error, not hang.
      await expect(res.arrayBuffer()).rejects.toThrow();
      const files = await fetch(`${server.url}/v1/volumes/${v.id}/files`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ paths: ["short.txt"] }),
      });
      expect(files.status).toBe(500);
      expect(((await files.json()) as { error: { message: string } }).error.message).toMatch(/holds 10 of the 1000 bytes/);
      // Through the client (with S3: straight from the bucket), the read fails too instead of coming back short.
      await expect(readAll(v, "large.bin")).rejects.toThrow(/100000 of the 150000 bytes|terminated|other side closed|aborted/);
      await expect(readAll(v, "short.txt")).rejects.toThrow();
    } finally {
      await server.cleanup();
    }
  });
});
