
import { type FileHandle, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, InvalidError, NotFoundError, SiloClient, type Volume } from "../client/index.js";
import { VOLUME_ROUTE_LIMITS } from "../protocol/volume-limits.js";
import { InProcessServer } from "./helpers/in-process-server.js";
import { mulberry32 } from "./helpers/prng.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes, readAll, sha256 } from "./helpers/volume-data.js";
import { cacheStats, committedWithReference, commitMount, Mounts, mountsFixture, within } from "./helpers/volume-mounts.js";

const SEED = Number(process.env.SILO_COMPOSE_SEED ?? Date.now() % 1_000_000);

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-compose-", { afterEachTest: false });

describe(`a commit has the server compose partly rewritten blocks (seed ${SEED})`, () => {
  it("random small writes, a truncate and a regrow: the commit fetches no base but the one of a block written over a quarter; the file matches a local reference through the API, `silo volume get` and a fresh mount", async () => {
    const random = mulberry32(SEED);
    const int = (n: number) => Math.floor(random() * n);
    const size = 4 * BLOCK_SIZE + 654_321;
    const ref = join(root, "ref.bin");
    const vol = await committedWithReference(fx.silo, "compose", "big.bin", size, ref);
    const dir = join(root, "mnt");
    const file = join(dir, "big.bin");
    const both = async (op: (fh: FileHandle) => Promise<unknown>) => {
      for (const p of [file, ref]) {
        const fh = await open(p, "r+");
        try {
          await op(fh);
        } finally {
          await fh.close();
        }
      }
    };

    await mounts.mount("compose", dir, "--commit-interval-ms", "0");
    // 4 KiB writes all over the file (some across a block boundary), a few bytes at the very end…
    const writes = Array.from({ length: 200 }, () => ({ pos: int(size - 4096), data: bytes(4096) }));
    writes.push({ pos: size - 7, data: bytes(7) });
    // …3 MiB into block 1 (more than a quarter: composed here, its base fetched)…
    writes.push({ pos: BLOCK_SIZE + 1000, data: bytes(3 << 20) });
    await both(async (fh) => {
      for (const w of writes) await fh.write(w.data, 0, w.data.length, w.pos);
    });
    // …then block 3 cut short and the file grown past the cut with a write: the server pads the
    // base's remaining bytes with zeros up to the written range. The tail block 4 is gone.
    const cut = 3 * BLOCK_SIZE + 100_000;
    await both(async (fh) => {
      await fh.truncate(cut);
      await fh.write(bytes(1).fill(7), 0, 1, cut + 50_000);
    });
    expect(await cacheStats(dir), "nothing fetched for the writes").toMatchObject({ misses: 0, bytesFetched: 0 });

    await commitMount(dir);
    expect(await cacheStats(dir), "the commit fetched only block 1's base").toMatchObject({ misses: 1, bytesFetched: BLOCK_SIZE });
    const want = await readFile(ref);
    expect((await readAll(vol, "big.bin")).equals(want), "committed bytes (API)").toBe(true);
    await mounts.unmount(dir);

    const out = join(root, "got.bin");
    const r = await fx.server.cli(["volume", "get", "compose", "big.bin", out]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(out)).equals(want), "committed bytes (silo volume get)").toBe(true);

    await mounts.mount("compose", dir, "--commit-interval-ms", "0");
    const got = await within(120_000, "read through a fresh mount", readFile(file));
    expect(got.equals(want), "committed bytes (a fresh mount)").toBe(true);
    await mounts.unmount(dir);
  });
});

describe("a compose the server refuses", () => {
  it("(here: a request past its body limit) is composed by the mount itself: the commit goes through with the right bytes", async () => {
    const server = await InProcessServer.start({ bodyLimit: 256 * 1024 });
    const own = new Mounts(server);
    try {
      await using silo = server.client();
      const size = 2 * BLOCK_SIZE + 1000;
      const ref = join(root, "ref-refused.bin");
      const vol = await committedWithReference(silo, "refused", "f.bin", size, ref);
      const dir = join(root, "mnt-refused");
      await own.mount("refused", dir, "--commit-interval-ms", "0");
      // 600 KiB into block 1: under a quarter of the block, so the server is asked, but the
      // request is larger than this server takes.
      const data = bytes(600 * 1024);
      for (const p of [join(dir, "f.bin"), ref]) {
        const fh = await open(p, "r+");
        await fh.write(data, 0, data.length, BLOCK_SIZE + 4096);
        await fh.close();
      }
      await commitMount(dir);
      expect(await cacheStats(dir), "the mount fetched block 1's base to compose it").toMatchObject({ misses: 1, bytesFetched: BLOCK_SIZE });
      expect((await readAll(vol, "f.bin")).equals(await readFile(ref)), "committed bytes").toBe(true);
      await own.unmount(dir);
    } finally {
      await own.cleanup();
      await server.cleanup();
    }
  });
});

describe("POST /v1/volumes/:id/blocks/compose", () => {
  /** A stored block of `n` random bytes in `vol`'s workspace. */
  async function storedBlock(vol: Volume, n: number): Promise<{ hash: string; data: Buffer }> {
    const data = bytes(n);
    const hash = sha256(data);
    await vol.blocks.uploadBlock(hash, data);
    return { hash, data };
  }

  it("composes a base, zeros and ranges into a stored block, large or small", async () => {
    const vol = await fx.silo.volumes.fromName("compose-route", { createIfMissing: true });
    const base = await storedBlock(vol, BLOCK_SIZE - 1000);
    const ranges = [
      { offset: 0, data: bytes(10) },
      { offset: 10, data: bytes(5000) },
      { offset: BLOCK_SIZE - 2000, data: bytes(2000) },
    ];
    const want = Buffer.alloc(BLOCK_SIZE);
    base.data.copy(want);
    for (const r of ranges) r.data.copy(want, r.offset);
    const made = await vol.blocks.composeBlock({ base: base.hash, baseLength: base.data.length, length: BLOCK_SIZE, ranges });
    expect(made).toEqual({ hash: sha256(want), size: BLOCK_SIZE });
    expect((await vol.blocks.readBlock(made.hash)).equals(want)).toBe(true);
    expect(await vol.blocks.missingBlocks([made.hash])).toEqual([]);

    // Small (stored inline): 100 bytes of the base, zeros, one range.
    const small = Buffer.alloc(300);
    base.data.copy(small, 0, 0, 100);
    small.fill(9, 200, 250);
    const made2 = await vol.blocks.composeBlock({ base: base.hash, baseLength: 100, length: 300, ranges: [{ offset: 200, data: Buffer.alloc(50, 9) }] });
    expect(made2).toEqual({ hash: sha256(small), size: 300 });
    expect((await vol.blocks.readBlock(made2.hash)).equals(small)).toBe(true);
  });

  it("bad input is a 400, an unknown base or another workspace's a 404", async () => {
    const vol = await fx.silo.volumes.fromName("compose-bad", { createIfMissing: true });
    const base = await storedBlock(vol, 100_000);
    const ok = { base: base.hash, baseLength: 100_000, length: 200_000, ranges: [{ offset: 0, data: bytes(10) }] };
    const bad: Array<[string, object]> = [
      ["a malformed hash", { base: "xyz" }],
      ["an offset past the block size", { ranges: [{ offset: BLOCK_SIZE, data: bytes(1) }] }],
      ["a range past the length", { ranges: [{ offset: 199_990, data: bytes(11) }] }],
      ["overlapping ranges", { ranges: [{ offset: 0, data: bytes(10) }, { offset: 9, data: bytes(10) }] }],
      ["unsorted ranges", { ranges: [{ offset: 100, data: bytes(10) }, { offset: 0, data: bytes(10) }] }],
      ["too many ranges", { ranges: Array.from({ length: VOLUME_ROUTE_LIMITS.composeRanges + 1 }, (_, k) => ({ offset: k, data: bytes(1) })) }],
      ["a baseLength past the base's size", { baseLength: 100_001 }],
      ["a baseLength past the length", { length: 50_000, baseLength: 60_000, ranges: [] }],
      ["a length past the block size", { length: BLOCK_SIZE + 1 }],
      ["a length of 0", { length: 0, baseLength: 0, ranges: [] }],
      ["a negative offset", { ranges: [{ offset: -1, data: bytes(1) }] }],
      ["data that is not bytes", { ranges: [{ offset: 0, data: 12 }] }],
      ["no ranges field", { ranges: undefined }],
    ];
    for (const [what, change] of bad) {
      await expect(vol.blocks.composeBlock({ ...ok, ...change } as typeof ok), what).rejects.toBeInstanceOf(InvalidError);
    }
    await expect(vol.blocks.composeBlock({ ...ok, base: sha256(bytes(10)) }), "an unknown base").rejects.toBeInstanceOf(NotFoundError);

    // Another workspace knows the hash but holds no such block: no composing from it.
    const ws = await fx.silo.workspaces.create("compose-tenant");
    await using tenant = new SiloClient({ serverUrl: fx.server.url, tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    const theirs = await tenant.volumes.fromName("compose-bad", { createIfMissing: true });
    await expect(theirs.blocks.composeBlock(ok), "another workspace's base").rejects.toBeInstanceOf(NotFoundError);
    // Nor through the owner's volume id.
    const res = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/blocks/compose`, {
      method: "POST",
      headers: { authorization: `Bearer ${ws.tokenId}:${ws.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ ...ok, ranges: [{ offset: 0, data: Buffer.from("hello").toString("base64") }] }),
    });
    expect(res.status).toBe(404);

    // The good request still works, after all that.
    expect((await vol.blocks.composeBlock(ok)).size).toBe(200_000);
  });
});
