
import { type FileHandle, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../client/index.js";
import { mulberry32 } from "./helpers/prng.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes, readAll } from "./helpers/volume-data.js";
import { cacheStats, committedWithReference, commitMount as commit, mountsFixture, within } from "./helpers/volume-mounts.js";

const SEED = Number(process.env.SILO_INPLACE_SEED ?? Date.now() % 1_000_000);
const WRITES = 300;

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-inplace-", { afterEachTest: false });

describe(`writes in place on a mount (seed ${SEED})`, () => {
  it("random 4 KiB writes into a committed multi-block file fetch no block; the file matches a local reference after read-back, commit + remount, and kill -9 + recovery", async () => {
    const random = mulberry32(SEED);
    const int = (n: number) => Math.floor(random() * n);
    const size = 3 * BLOCK_SIZE + 123_457;
    const ref = join(root, "ref.bin");
    const vol = await committedWithReference(fx.silo, "inplace", "big.bin", size, ref);
    const dir = join(root, "mnt");
    const file = join(dir, "big.bin");

    /** The same writes into the mounted file and the reference: mostly aligned 4 KiB, some unaligned or across a block boundary, one past the end. */
    const writes = async (count: number) => {
      const fhs: FileHandle[] = [await open(file, "r+"), await open(ref, "r+")];
      try {
        const length = (await fhs[1]!.stat()).size;
        for (let k = 0; k < count; k++) {
          const r = random();
          const data = bytes(r < 0.9 ? 4096 : 1 + int(20_000));
          let pos: number;
          if (k === 0) pos = length + 5000; // grows the file: the short last block keeps its committed bytes
          else if (r < 0.7) pos = int(Math.floor(length / 4096)) * 4096;
          else if (r < 0.85) pos = int(length - data.length);
          else pos = (1 + int(3)) * BLOCK_SIZE - int(data.length);
          for (const fh of fhs) await fh.write(data, 0, data.length, pos);
        }
      } finally {
        for (const fh of fhs) await fh.close();
      }
    };
    const matches = async (what: string) => {
      const [got, want] = await Promise.all([within(120_000, `read ${what}`, readFile(file)), readFile(ref)]);
      expect(got.length, what).toBe(want.length);
      expect(got.equals(want), `${what}: bytes`).toBe(true);
    };
    const committedMatches = async (what: string) => {
      expect((await readAll(vol, "big.bin")).equals(await readFile(ref)), `${what}: committed bytes`).toBe(true);
    };

    // ---- Writes, read-back, commit, more writes over the new blocks, final commit. ----
    await mounts.mount("inplace", dir, "--commit-interval-ms", "0");
    await writes(WRITES);
    let s = await cacheStats(dir);
    expect(s, "nothing fetched for the writes").toMatchObject({ misses: 0, bytesFetched: 0 });
    await matches("after the writes");
    s = await cacheStats(dir);
    // The read-back fetched each committed block once (4 blocks).
    expect(s.bytesFetched).toBe(size);
    await commit(dir);
    await committedMatches("after a commit");
    await writes(WRITES);
    expect((await cacheStats(dir)).bytesFetched, "writes after a commit fetch nothing either").toBe(size);
    await matches("after writes over committed-here blocks");
    await mounts.unmount(dir);
    await committedMatches("after the final commit");

    // ---- A fresh mount reads the committed file; new writes, a truncate across written ranges. ----
    await mounts.mount("inplace", dir, "--commit-interval-ms", "0");
    await matches("after a remount");
    await mounts.unmount(dir);
    await mounts.mount("inplace", dir, "--commit-interval-ms", "0");
    await writes(WRITES);
    const cut = 2 * BLOCK_SIZE + 777;
    for (const p of [file, ref]) {
      const fh = await open(p, "r+");
      await fh.truncate(cut);
      await fh.truncate(cut + 10_000);
      await fh.close();
    }
    await writes(20);
    expect(await cacheStats(dir), "nothing fetched for the writes and truncates").toMatchObject({ misses: 0, bytesFetched: 0 });

    // ---- kill -9 after close: the journal holds the written ranges; the next mount recovers them. ----
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    await mounts.mount("inplace", dir, "--commit-interval-ms", "0");
    await matches("after kill -9 and recovery");
    await mounts.unmount(dir);
    await committedMatches("after recovery's commit");
  });
});
