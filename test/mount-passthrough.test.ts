import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, readFileSync } from "node:fs";
import { open, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { BLOCK_SIZE } from "../client/index.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import type { PassthroughStats } from "../fuse/volume/passthrough.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { committedBytes, commitMount, mountsFixture } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-passthrough-");

const passthrough = async (dir: string) => ((await controlRequest(join(stateDirFor(dir), "control.sock"), "status")) as { passthrough: PassthroughStats }).passthrough;

/** A mounted volume `name` with `file` written on the mount (its bytes all in the upper file), and those bytes. */
async function written(name: string, size: number, env: NodeJS.ProcessEnv = {}): Promise<{ dir: string; file: string; data: Buffer }> {
  await fx.silo.volumes.fromName(name, { createIfMissing: true });
  const dir = join(root, name);
  await mounts.mountWithEnv(env, name, dir, "--commit-interval-ms", "0");
  const file = join(dir, "f.bin");
  const data = randomBytes(size);
  await writeFile(file, data);
  return { dir, file, data };
}

/** Stores `data` at `offset` of `file` through a shared writable mapping (no write(2)): python's mmap. */
function mmapWrite(file: string, offset: number, data: Buffer): void {
  const script = "import mmap,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nm=mmap.mmap(fd,0)\no=int(sys.argv[2])\nd=bytes.fromhex(sys.argv[3])\nm[o:o+len(d)]=d\nm.flush()\nm.close()\nos.close(fd)\n";
  execFileSync(PYTHON, ["-c", script, file, String(offset), data.toString("hex")]);
}

/** A process holding `file` open read-write and mapped (python's mmap), storing into it on request. */
class MappedWriter {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  readonly opened: Promise<void>;
  constructor(file: string) {
    const script = "import mmap,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nm=mmap.mmap(fd,0)\nprint('open',flush=True)\nfor line in sys.stdin:\n  if line.strip()=='exit': break\n  o,h=line.split()\n  d=bytes.fromhex(h)\n  m[int(o):int(o)+len(d)]=d\n  m.flush()\n  print('stored',flush=True)\n";
    this.proc = spawn(PYTHON, ["-c", script, file]);
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
    this.opened = this.expect("open");
  }
  private async expect(word: string): Promise<void> {
    const { value } = await this.lines.next();
    if (value !== word) throw new Error(`mapped writer: expected ${word}, got ${value}`);
  }
  async store(offset: number, data: Buffer): Promise<void> {
    this.proc.stdin.write(`${offset} ${data.toString("hex")}\n`);
    await this.expect("stored");
  }
  async exit(): Promise<void> {
    const done = new Promise((res) => this.proc.once("exit", res));
    this.proc.stdin.end("exit\n");
    await done;
  }
}

describe("FUSE passthrough on a volume mount", () => {
  it("serves a read-only open of a file whose bytes are local from its upper file: right bytes, no READ reaches the daemon, the backing id goes at close", async () => {
    const stats = join(root, "stats-read.txt");
    const { dir, file, data } = await written("pt-read", 2 * BLOCK_SIZE + 12_345, { SILO_FUSE_STATS: stats });
    const fh = await open(file, "r");
    expect(await passthrough(dir)).toMatchObject({ enabled: true, reads: 1, backingIds: 1 });
    const got = Buffer.alloc(data.length + 10);
    const { bytesRead } = await fh.read(got, 0, got.length, 0);
    expect(bytesRead).toBe(data.length);
    expect(got.subarray(0, bytesRead).equals(data)).toBe(true);
    await fh.close();
    expect(await passthrough(dir)).toMatchObject({ backingIds: 0, backingOpened: 1, backingClosed: 1 });
    await mounts.unmount(dir);
    // The session's request counts (written at its end): the writes came, no read did.
    const line = readFileSync(stats, "utf8");
    expect(line).toMatch(/WRITE \d+/);
    expect(line).not.toMatch(/\bREAD \d+/);
  });

  it("SILO_FUSE_PASSTHROUGH=off serves every read from the daemon", async () => {
    const { dir, file, data } = await written("pt-off", 100_000, { SILO_FUSE_PASSTHROUGH: "off" });
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await passthrough(dir)).toMatchObject({ enabled: false, reads: 0, backingOpened: 0 });
  });

  it("an O_DIRECT reader is ordinary (ext4's alignment rules would apply through the upper file): unaligned reads still work", async () => {
    const { dir, file, data } = await written("pt-odirect", 100_000);
    const fh = await open(file, constants.O_RDONLY | constants.O_DIRECT);
    const b = Buffer.alloc(1000);
    expect((await fh.read(b, 0, 1000, 333)).bytesRead).toBe(1000);
    expect(b.equals(data.subarray(333, 1333))).toBe(true);
    expect(await passthrough(dir)).toMatchObject({ reads: 0, backingOpened: 0 });
    await fh.close();
  });

  it("a reader of a file open for writing is ordinary, and sees the writer's bytes (no EIO)", async () => {
    const { dir, file, data } = await written("pt-writer-first", 300_000);
    const w = await open(file, "r+");
    await w.write(Buffer.from("written"), 0, 7, 1000);
    expect((await readFile(file)).subarray(1000, 1007).toString()).toBe("written");
    expect(await passthrough(dir)).toMatchObject({ reads: 0, backingOpened: 0 });
    await w.close();
    data.write("written", 1000);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await passthrough(dir)).toMatchObject({ reads: 1, backingIds: 0 });
  });

  it("a writer joining a passthrough reader writes through the daemon (the reader sees it at once), and what it stores through a mapping is committed", async () => {
    const { dir, file, data } = await written("pt-join", BLOCK_SIZE + 5000);
    // Committed: every block's hash is known, so only a block marked changed is uploaded again.
    await commitMount(dir);
    const r = await open(file, "r");
    expect(await passthrough(dir)).toMatchObject({ reads: 1, backingIds: 1 });
    const w = await open(file, "r+");
    expect(await passthrough(dir)).toMatchObject({ joined: 1, backingIds: 1 });
    await w.write(Buffer.from("joined"), 0, 6, 10);
    data.write("joined", 10);
    const head = Buffer.alloc(16);
    await r.read(head, 0, 16, 0);
    expect(head.equals(data.subarray(0, 16))).toBe(true);
    // Another writer (a new open joins the period too) stores into block 1 through mmap.
    const mapped = Buffer.from("mapped!");
    mmapWrite(file, BLOCK_SIZE + 100, mapped);
    mapped.copy(data, BLOCK_SIZE + 100);
    await w.close();
    await r.close();
    expect(await passthrough(dir)).toMatchObject({ backingIds: 0 });
    expect((await readFile(file)).equals(data)).toBe(true);
    await commitMount(dir);
    expect((await committedBytes(fx.silo, "pt-join", "f.bin"))!.equals(data)).toBe(true);
  });

  it("what a joined writer stores through a mapping survives kill -9 of the daemon, also after a commit while it was open", async () => {
    const { dir, file, data } = await written("pt-crash", BLOCK_SIZE + 5000);
    await commitMount(dir);
    const r = await open(file, "r");
    const writer = new MappedWriter(file);
    await writer.opened;
    await r.close();
    expect(await passthrough(dir)).toMatchObject({ joined: 1, backingIds: 1 });
    // A commit while the writer is open must neither take a hash for its blocks nor drop the file from the journal.
    await commitMount(dir);
    const mapped = Buffer.from("stored through the map");
    await writer.store(BLOCK_SIZE + 7, mapped);
    mapped.copy(data, BLOCK_SIZE + 7);
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    await writer.exit();
    await mounts.mount("pt-crash", dir, "--commit-interval-ms", "0");
    expect((await readFile(file)).equals(data)).toBe(true);
    await mounts.unmount(dir);
    expect((await committedBytes(fx.silo, "pt-crash", "f.bin"))!.equals(data)).toBe(true);
  });

  it("a passthrough reader reads the file's new length after a truncate (zeros where it grew), and the right bytes across a commit", async () => {
    const { dir, file, data } = await written("pt-truncate", 70_000);
    const r = await open(file, "r");
    expect(await passthrough(dir)).toMatchObject({ reads: 1 });
    await commitMount(dir);
    const all = Buffer.alloc(200_000);
    expect((await r.read(all, 0, all.length, 0)).bytesRead).toBe(data.length);
    expect(all.subarray(0, data.length).equals(data)).toBe(true);
    await truncate(file, 150_000);
    const grown = Buffer.alloc(200_000, 1);
    expect((await r.read(grown, 0, grown.length, 0)).bytesRead).toBe(150_000);
    expect(grown.subarray(0, data.length).equals(data)).toBe(true);
    expect(grown.subarray(data.length, 150_000).equals(Buffer.alloc(150_000 - data.length))).toBe(true);
    await truncate(file, 1000);
    expect((await r.read(grown, 0, grown.length, 0)).bytesRead).toBe(1000);
    await r.close();
    await commitMount(dir);
    expect((await committedBytes(fx.silo, "pt-truncate", "f.bin"))!.equals(data.subarray(0, 1000))).toBe(true);
  });

  it("releases every backing id over many opens and closes, also of files not local (committed, fetched through the cache)", async () => {
    const { dir, file, data } = await written("pt-cycles", 50_000);
    for (let i = 0; i < 200; i++) {
      const fh = await open(file, "r");
      const b = Buffer.alloc(100);
      await fh.read(b, 0, 100, i * 100);
      expect(b.equals(data.subarray(i * 100, i * 100 + 100))).toBe(true);
      await fh.close();
    }
    expect(await passthrough(dir)).toMatchObject({ reads: 200, backingOpened: 200, backingClosed: 200, backingIds: 0 });
    await mounts.unmount(dir);
    // Remounted: the file is committed and not local any more, so it does not qualify.
    await mounts.mount("pt-cycles", dir);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await passthrough(dir)).toMatchObject({ reads: 0, backingOpened: 0 });
  });
});
