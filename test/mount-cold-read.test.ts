/**
 * Cold reads through a volume mount (docs/mounts.md, "Reading"): a sequential reader has several
 * blocks fetched ahead of it, readers of one block share its fetch, and a block whose fetch
 * fails fails the read (EIO) without being kept, so the next read fetches it again.
 */
import { createHash } from "node:crypto";
import { readdirSync, renameSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { waitFor } from "./helpers/eventually.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";

const MiB = 1024 * 1024;
// Local blobs: the test moves a block's file aside to make its fetch fail.
const fx = siloServerFixture([], { blobs: "local" });
const { mounts, root } = mountsFixture(fx, "silo-mount-cold-");

/** A committed file of `blocks` distinct 8 MiB blocks on a fresh read-only mount: its bytes and the mount dir. */
async function coldFile(name: string, blocks: number): Promise<{ data: Buffer; dir: string }> {
  const data = bytes(blocks * BLOCK_SIZE);
  const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
  await vol.batchUpload().putFile(data, "f").commit();
  const dir = join(root, name);
  await mounts.mount(name, dir, "--read-only");
  return { data, dir };
}

const blockOf = (data: Buffer, i: number) => data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
const hashOf = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function cacheStats(dir: string): Promise<{ hits: number; misses: number; bytesFetched: number }> {
  const status = (await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as { cache: { hits: number; misses: number; bytesFetched: number } };
  return status.cache;
}

/** `len` bytes at `at` of the file, through a descriptor of its own. */
async function readAt(path: string, at: number, len: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, at);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The server's file of a stored block (the local blob backend). */
function blobFile(hash: string): string {
  const base = join(fx.server.home, "data/blobs");
  for (const ws of readdirSync(base)) {
    for (const prefix of readdirSync(join(base, ws))) if (readdirSync(join(base, ws, prefix)).includes(hash)) return join(base, ws, prefix, hash);
  }
  throw new Error(`no blob ${hash}`);
}

describe("cold reads through a mount", { timeout: 180_000 }, () => {
  it("a sequential reader has the next three blocks fetched ahead of it, and reads the committed bytes", async () => {
    const { data, dir } = await coldFile("cold-ahead", 5);
    const fh = await within(30_000, "open", open(join(dir, "f"), "r"));
    try {
      const buf = Buffer.alloc(MiB);
      // The first 2 MiB only: the kernel's own read-ahead stays within block 0.
      for (let at = 0; at < 2 * MiB; at += MiB) {
        const { bytesRead } = await within(30_000, "read", fh.read(buf, 0, MiB, at));
        expect(bytesRead).toBe(MiB);
        expect(buf.equals(data.subarray(at, at + MiB)), `bytes at ${at}`).toBe(true);
      }
      // Block 0 and blocks 1-3 ahead of the reader; never block 4 (the bound of read-ahead).
      await waitFor("read-ahead", async () => (await cacheStats(dir)).bytesFetched === 4 * BLOCK_SIZE);
      for (let at = 2 * MiB; at < data.length; at += MiB) {
        const { bytesRead } = await within(30_000, "read", fh.read(buf, 0, MiB, at));
        expect(bytesRead).toBe(MiB);
        expect(buf.equals(data.subarray(at, at + MiB)), `bytes at ${at}`).toBe(true);
      }
    } finally {
      await fh.close();
    }
    expect((await cacheStats(dir)).bytesFetched, "each block fetched once").toBe(5 * BLOCK_SIZE);
  });

  it("readers of one block at once share its fetch", async () => {
    const { data, dir } = await coldFile("cold-shared", 2);
    // Eight readers, each through its own descriptor, of different MiBs of block 1 (the kernel would merge reads of one page).
    const reads = Array.from({ length: 8 }, (_, k) => readAt(join(dir, "f"), BLOCK_SIZE + k * MiB, MiB));
    const got = await within(60_000, "reads", Promise.all(reads));
    for (const [k, b] of got.entries()) expect(b.equals(data.subarray(BLOCK_SIZE + k * MiB, BLOCK_SIZE + (k + 1) * MiB)), `MiB ${k}`).toBe(true);
    expect((await cacheStats(dir)).bytesFetched, "block 1 fetched once").toBe(BLOCK_SIZE);
  });

  it("a block whose fetch fails gives EIO and is not kept: the next read fetches it again", async () => {
    const { data, dir } = await coldFile("cold-fail", 2);
    const file = blobFile(hashOf(blockOf(data, 1)));
    renameSync(file, `${file}.aside`);
    try {
      const err = await within(30_000, "failing read", readAt(join(dir, "f"), BLOCK_SIZE, MiB)).catch((e: NodeJS.ErrnoException) => e);
      expect((err as NodeJS.ErrnoException).code).toBe("EIO");
      // Every read of it fails while the server cannot give it.
      const again = await within(30_000, "failing read", readAt(join(dir, "f"), BLOCK_SIZE + 2 * MiB, MiB)).catch((e: NodeJS.ErrnoException) => e);
      expect((again as NodeJS.ErrnoException).code).toBe("EIO");
    } finally {
      renameSync(`${file}.aside`, file);
    }
    expect((await within(30_000, "read", readAt(join(dir, "f"), BLOCK_SIZE, MiB))).equals(data.subarray(BLOCK_SIZE, BLOCK_SIZE + MiB))).toBe(true);
    expect((await within(30_000, "read", readAt(join(dir, "f"), 0, MiB))).equals(data.subarray(0, MiB))).toBe(true);
    expect((await cacheStats(dir)).bytesFetched, "only whole blocks are counted").toBe(2 * BLOCK_SIZE);
  });
});
