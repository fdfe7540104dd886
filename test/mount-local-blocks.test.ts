/**
 * Local block reads through a mount (docs/volumes.md, "Local block reads"): on the server's host
 * a mount reads committed blocks from the server's own blob files (passed over its unix socket)
 * and keeps no cache files of them; whenever that path fails (server restarted, socket gone) the
 * blocks come over HTTP, and reads stay correct; SILO_LOCAL_BLOCKS=0 turns it off.
 */
import { unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { LOCAL_BLOCKS } from "../protocol/local-blocks.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { waitFor } from "./helpers/eventually.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";

const MiB = 1024 * 1024;
const fx = siloServerFixture([], { blobs: "local" });
const { mounts, root } = mountsFixture(fx, "silo-mount-local-");

interface Status {
  cacheBytes: number;
  cache: { bytesFetched: number; localBlocks: number };
  wholeFiles: { built: number; failed: number } | null;
}
const status = async (dir: string) => (await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as Status;

/** A committed file of `blocks` distinct blocks and its mount dir (read-only, or with `env` for the daemon). */
async function committed(name: string, blocks: number, env: NodeJS.ProcessEnv = {}): Promise<{ data: Buffer; dir: string }> {
  const data = bytes(blocks * BLOCK_SIZE);
  const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
  await vol.batchUpload().putFile(data, "f").commit();
  const dir = join(root, name);
  await mounts.mountWithEnv(env, name, dir, "--read-only");
  return { data, dir };
}

/** Bytes [from, to) of the file, read in 1 MiB requests through one descriptor. */
async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const fh = await within(30_000, "open", open(path, "r"));
  try {
    const out = Buffer.alloc(to - from);
    for (let at = from; at < to; at += MiB) {
      const { bytesRead } = await within(30_000, "read", fh.read(out, at - from, Math.min(MiB, to - at), at));
      expect(bytesRead).toBe(Math.min(MiB, to - at));
    }
    return out;
  } finally {
    await fh.close();
  }
}

describe("local block reads through a mount", { timeout: 240_000 }, () => {
  it("a cold read is served from the server's files, none kept as cache files, and the whole-file copy still builds", async () => {
    const { data, dir } = await committed("local-cold", 6);
    expect((await readRange(join(dir, "f"), 0, data.length)).equals(data)).toBe(true);
    const s = await status(dir);
    expect(s.cache.localBlocks, "every block read locally").toBe(6);
    expect(s.cache.bytesFetched).toBe(6 * BLOCK_SIZE);
    expect(s.cacheBytes, "no cache files of local blocks").toBe(0);
    // The whole-file copy (passthrough's backing file) reads the blocks that left memory again from the server's files.
    if (s.wholeFiles) {
      await waitFor("whole-file copy", async () => {
        const w = (await status(dir)).wholeFiles!;
        expect(w.failed).toBe(0);
        return w.built === 1;
      });
    }
    // A second read gives the same bytes (through the copy or the server's files).
    expect((await readRange(join(dir, "f"), 0, data.length)).equals(data)).toBe(true);
  });

  it("reads stay correct over HTTP when the server restarts (new instance) or its socket is gone", async () => {
    // Files of two blocks each: read-ahead never crosses a file, so each file's reads fetch its own blocks.
    const files = { a: bytes(2 * BLOCK_SIZE), b: bytes(2 * BLOCK_SIZE), c: bytes(2 * BLOCK_SIZE), d: bytes(2 * BLOCK_SIZE) };
    const vol = await fx.silo.volumes.fromName("local-restart", { createIfMissing: true });
    const up = vol.batchUpload();
    for (const [name, data] of Object.entries(files)) up.putFile(data, name);
    await up.commit();
    const dir = join(root, "local-restart");
    await mounts.mount("local-restart", dir, "--read-only");
    const readWhole = async (name: keyof typeof files) => expect((await readRange(join(dir, name), 0, 2 * BLOCK_SIZE)).equals(files[name]), name).toBe(true);

    await readWhole("a");
    const first = await status(dir);
    expect(first.cache.localBlocks).toBe(2);

    // A new server process: the socket answers with another instance; the mount reads over HTTP and looks the socket up again.
    await fx.server.restart();
    await readWhole("b");
    await readWhole("c");
    const again = await status(dir);
    expect(again.cache.bytesFetched).toBe(6 * BLOCK_SIZE);
    expect(again.cache.localBlocks, "local again after the restart").toBeGreaterThan(first.cache.localBlocks);

    // The socket deleted: every block over HTTP from then on, into cache files.
    unlinkSync(join(fx.server.home, LOCAL_BLOCKS.socketPath));
    await readWhole("d");
    const after = await status(dir);
    expect(after.cache.bytesFetched).toBe(8 * BLOCK_SIZE);
    expect(after.cache.localBlocks, "nothing local without the socket").toBe(again.cache.localBlocks);
    await waitFor("cache files of the blocks over HTTP", async () => (await status(dir)).cacheBytes >= 2 * BLOCK_SIZE);
    // The next start makes the socket again.
    await fx.server.restart();
  });

  it("SILO_LOCAL_BLOCKS=0: every block over HTTP, into cache files", async () => {
    const { data, dir } = await committed("local-off", 2, { SILO_LOCAL_BLOCKS: "0" });
    expect((await readRange(join(dir, "f"), 0, data.length)).equals(data)).toBe(true);
    const s = await status(dir);
    expect(s.cache.localBlocks).toBe(0);
    expect(s.cache.bytesFetched).toBe(2 * BLOCK_SIZE);
    await waitFor("cache files", async () => (await status(dir)).cacheBytes === 2 * BLOCK_SIZE);
  });
});
