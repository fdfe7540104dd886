/**
 * READs spliced from files (fuse/kernel/session.ts, sendSlice): on the server's host a mount
 * answers reads of committed blocks by splicing the server's blob file to /dev/fuse. The bytes
 * read through the mount are the file's, for reads across block boundaries, unaligned ones and
 * ones past the end; SILO_FUSE_SPLICE=copy sends the same slices by copying (the fallback path),
 * SILO_FUSE_SPLICE=off reads blocks into memory as before.
 */
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";

const MiB = 1024 * 1024;
const fx = siloServerFixture([], { blobs: "local" });
const { mounts, root } = mountsFixture(fx, "silo-mount-splice-");

interface Status {
  cache: { localBlocks: number };
  fuseReplies: { spliced: number; copied: number };
}
const status = async (dir: string) => (await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as Status;

/** A committed file of 2 blocks and a tail (not a whole block), mounted read-only with `env` for the daemon. */
async function committed(name: string, env: NodeJS.ProcessEnv): Promise<{ data: Buffer; file: string; dir: string }> {
  const data = bytes(2 * BLOCK_SIZE + 12_345);
  const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
  await vol.batchUpload().putFile(data, "f").commit();
  const dir = join(root, name);
  // No whole-file copy: every read goes to the daemon, none through passthrough.
  await mounts.mountWithEnv({ SILO_WHOLE_FILE_CACHE: "off", ...env }, name, dir, "--read-only");
  return { data, file: join(dir, "f"), dir };
}

/**
 * Reads through a descriptor opened with O_DIRECT (each read goes to the daemon as it is, no page
 * cache in between): unaligned, across the block boundary, at and past the end; each compared to the source.
 */
async function readPieces(file: string, data: Buffer): Promise<void> {
  const fh = await within(30_000, "open", open(file, "r"));
  try {
    const pieces: Array<[number, number]> = [
      [0, MiB],
      [BLOCK_SIZE - 1000, 5000], // across the boundary between blocks 0 and 1
      [12_345, 777_777], // unaligned start and length
      [2 * BLOCK_SIZE - 3, 100], // across into the tail block
      [data.length - 100, MiB], // past the end: a short read
      [data.length + 10, 4096], // wholly past the end: nothing
    ];
    for (const [at, len] of pieces) {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await within(30_000, "read", fh.read(buf, 0, len, at));
      const want = data.subarray(Math.min(at, data.length), Math.min(at + len, data.length));
      expect(bytesRead, `read of ${len} at ${at}`).toBe(want.length);
      expect(buf.subarray(0, bytesRead).equals(want), `bytes of ${len} at ${at}`).toBe(true);
    }
    // And the whole file in 1 MiB reads.
    const whole = Buffer.alloc(data.length);
    for (let at = 0; at < data.length; at += MiB) await fh.read(whole, at, Math.min(MiB, data.length - at), at);
    expect(whole.equals(data), "the whole file").toBe(true);
  } finally {
    await fh.close();
  }
}

describe("READs spliced from the server's files", { timeout: 240_000 }, () => {
  it("are spliced, and give the file's bytes across blocks, unaligned and past the end", async () => {
    const { data, file, dir } = await committed("splice-on", {});
    await readPieces(file, data);
    const s = await status(dir);
    expect(s.cache.localBlocks, "blocks opened on this host").toBeGreaterThanOrEqual(2);
    expect(s.fuseReplies.spliced, "READs spliced").toBeGreaterThan(0);
    expect(s.fuseReplies.copied, "none copied").toBe(0);
  });

  it("SILO_FUSE_SPLICE=copy: the same slices are copied, with the same bytes", async () => {
    const { data, file, dir } = await committed("splice-copy", { SILO_FUSE_SPLICE: "copy" });
    await readPieces(file, data);
    const s = await status(dir);
    expect(s.fuseReplies.spliced).toBe(0);
    expect(s.fuseReplies.copied, "READs copied from the files").toBeGreaterThan(0);
  });

  it("SILO_FUSE_SPLICE=off: blocks read into memory, nothing spliced", async () => {
    const { data, file, dir } = await committed("splice-off", { SILO_FUSE_SPLICE: "off" });
    await readPieces(file, data);
    const s = await status(dir);
    expect(s.cache.localBlocks).toBeGreaterThan(0);
    expect(s.fuseReplies).toEqual({ spliced: 0, copied: 0 });
  });
});
