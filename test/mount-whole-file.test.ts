import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { open, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { BLOCK_SIZE } from "../client/index.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import type { PassthroughStats } from "../fuse/volume/passthrough.js";
import type { WholeFileStats } from "../fuse/volume/whole-files.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { commitMount, mountsFixture, within } from "./helpers/volume-mounts.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-whole-file-");

interface Status {
  passthrough: PassthroughStats;
  wholeFiles: WholeFileStats | null;
  fuseRequests: Record<string, number>;
  cacheBytes: number;
  cache: { maxBytes: number };
}
const status = async (dir: string) => (await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as Status;

/** Waits (polling the mount's status, bounded) until `ok` holds for its whole-file counters. */
async function whenWhole(dir: string, ok: (s: WholeFileStats) => boolean): Promise<WholeFileStats> {
  return within(30_000, "whole-file cache", (async () => {
    for (;;) {
      const s = (await status(dir)).wholeFiles!;
      if (ok(s)) return s;
    }
  })());
}

/** Volume `name` holding `f.bin` = `data` and `more` files (committed through a writable mount at `<name>-w`, kept mounted), and a read-only mount of it. */
async function committed(name: string, data: Buffer, more: Record<string, Buffer>, ...roFlags: string[]): Promise<{ writer: string; dir: string; file: string }> {
  return committedWithEnv({}, name, data, more, ...roFlags);
}

/** committed() with variables added to the read-only mount's daemon environment. */
async function committedWithEnv(env: NodeJS.ProcessEnv, name: string, data: Buffer, more: Record<string, Buffer>, ...roFlags: string[]): Promise<{ writer: string; dir: string; file: string }> {
  await fx.silo.volumes.fromName(name, { createIfMissing: true });
  const writer = join(root, `${name}-w`);
  await mounts.mount(name, writer, "--commit-interval-ms", "0");
  for (const [f, bytes] of Object.entries({ "f.bin": data, ...more })) await writeFile(join(writer, f), bytes);
  await commitMount(writer);
  const dir = join(root, name);
  await mounts.mountWithEnv(env, name, dir, "--read-only", ...roFlags);
  return { writer, dir, file: join(dir, "f.bin") };
}

const reads = async (dir: string) => (await status(dir)).fuseRequests.READ ?? 0;

describe("whole-file cache on a read-only mount", () => {
  it("a committed file read through once is passed through on its next open: byte-exact, no READ reaches the daemon", async () => {
    // A block of zeros between two of data: it commits as a hole, which the copy writes as zeros.
    const data = Buffer.concat([randomBytes(BLOCK_SIZE), Buffer.alloc(BLOCK_SIZE), randomBytes(54_321)]);
    const { dir, file } = await committed("wf-read", data, {});
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await status(dir)).passthrough.wholeFile).toBe(0);
    await whenWhole(dir, (s) => s.built === 1);
    const before = await reads(dir);
    const got = await readFile(file);
    expect(got.equals(data)).toBe(true);
    const s = await status(dir);
    expect(s.passthrough).toMatchObject({ enabled: true, wholeFile: 1, backingIds: 0 });
    expect(s.fuseRequests.READ ?? 0).toBe(before);
    // The copy's bytes count against the block cache's budget, beside the blocks.
    expect(s.wholeFiles).toMatchObject({ files: 1, bytes: data.length, served: 1 });
  });

  it("after a reload that changed the file, its new bytes are read (the copy is keyed by content)", async () => {
    const data = randomBytes(BLOCK_SIZE + 1000);
    const { writer, dir, file } = await committed("wf-reload", data, {});
    expect((await readFile(file)).equals(data)).toBe(true);
    await whenWhole(dir, (s) => s.built === 1);
    // Same size, other bytes: only the block list tells them apart.
    const changed = randomBytes(data.length);
    await writeFile(join(writer, "f.bin"), changed);
    await commitMount(writer);
    await controlRequest(join(stateDirFor(dir), "control.sock"), "reload");
    expect((await readFile(file)).equals(changed)).toBe(true);
    expect((await status(dir)).passthrough.wholeFile).toBe(0);
    // Read through once more: the new content gets its own copy, served on the next open.
    await whenWhole(dir, (s) => s.built === 2);
    expect((await readFile(file)).equals(changed)).toBe(true);
    expect((await status(dir)).passthrough.wholeFile).toBe(1);
  });

  it("a whole-file copy cut short or changed in place is never served: the open reads through the daemon, and a new copy is made", async () => {
    const data = randomBytes(BLOCK_SIZE + 77_777);
    const { dir, file } = await committed("wf-corrupt", data, {});
    const wholeDir = join(stateDirFor(dir), "whole");
    expect((await readFile(file)).equals(data)).toBe(true);
    await whenWhole(dir, (s) => s.built === 1);
    const [name] = readdirSync(wholeDir);
    await truncate(join(wholeDir, name!), 4096);
    expect((await readFile(file)).equals(data)).toBe(true);
    // Refused, not served (the read-through's close may already have started the new copy).
    const refused = await status(dir);
    expect(refused.wholeFiles).toMatchObject({ refused: 1 });
    expect(refused.passthrough.wholeFile).toBe(0);
    await whenWhole(dir, (s) => s.built === 2);
    // Same size, bytes changed in place.
    const fh = await open(join(wholeDir, readdirSync(wholeDir)[0]!), "r+");
    await fh.write(Buffer.from("corrupt"), 0, 7, 100);
    await fh.close();
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await status(dir)).wholeFiles).toMatchObject({ refused: 2 });
    expect((await status(dir)).passthrough.wholeFile).toBe(0);
  });

  it("copies count against the block cache's budget and go before any block: the total never passes it", async () => {
    const budget = 40 * 1024 * 1024;
    // 2 blocks each: one file's blocks and copy fit (32 MiB), two files' blocks and a copy do not (48 MiB).
    const data = randomBytes(2 * BLOCK_SIZE - 5);
    const other = randomBytes(2 * BLOCK_SIZE - 7);
    // Blocks in cache files (local block reads keep the server's files open instead, outside the budget).
    const { dir, file } = await committedWithEnv({ SILO_LOCAL_BLOCKS: "0" }, "wf-budget", data, { "g.bin": other }, "--cache-size-mb", "40");
    expect((await readFile(file)).equals(data)).toBe(true);
    await whenWhole(dir, (s) => s.built === 1);
    let s = await status(dir);
    expect(s.wholeFiles).toMatchObject({ files: 1, evicted: 0 });
    expect(s.cacheBytes + s.wholeFiles!.bytes).toBeLessThanOrEqual(budget);
    // The other file's blocks push the copy out; its own copy then does not fit beside them.
    expect((await readFile(join(dir, "g.bin"))).equals(other)).toBe(true);
    await whenWhole(dir, (w) => w.built === 2);
    s = await status(dir);
    expect(s.wholeFiles).toMatchObject({ files: 0, evicted: 2 });
    expect(s.cacheBytes + s.wholeFiles!.bytes).toBeLessThanOrEqual(budget);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect((await status(dir)).passthrough.wholeFile).toBe(0);
  });

  it("a writable mount makes no copies: a writer joining a reader of a committed file works, and its bytes are read back", async () => {
    const data = randomBytes(BLOCK_SIZE + 4321);
    const { writer, dir } = await committed("wf-writable", data, {});
    await mounts.unmount(dir);
    // A second writable mount, where f.bin is committed only (not written here).
    const rw = join(root, "wf-writable-rw");
    await mounts.mount("wf-writable", rw, "--commit-interval-ms", "0");
    const file = join(rw, "f.bin");
    expect((await readFile(file)).equals(data)).toBe(true);
    // Were copies made here, the next reader would pass through on one once it is made.
    if ((await status(rw)).wholeFiles) await whenWhole(rw, (w) => w.built === 1);
    const r = await open(file, "r");
    // A copy there would be the reader's backing file, which a writer must not map.
    const w = await open(file, "r+");
    await w.write(Buffer.from("joined"), 0, 6, 100);
    await w.close();
    data.write("joined", 100);
    const got = Buffer.alloc(data.length);
    expect((await r.read(got, 0, got.length, 0)).bytesRead).toBe(data.length);
    await r.close();
    expect(got.equals(data)).toBe(true);
    expect((await readFile(file)).equals(data)).toBe(true);
    const s = await status(rw);
    expect(s.wholeFiles).toBeNull();
    expect(s.passthrough.wholeFile).toBe(0);
    void writer;
  });
});
