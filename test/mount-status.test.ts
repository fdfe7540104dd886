import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { readMountRecord } from "../fuse/common/mount-records.js";
import { mountPointState } from "../fuse/common/mount-table.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

interface Status {
  version: number;
  kernelInodes: number;
  dirtyPaths: number;
  lastCommitError: string | null;
  cache: { hits: number; misses: number; hitRatio: number; bytesFetched: number };
  commits: { commits: number; failures: number; lastCommitMs: number; lastCommitAt: number };
  fuseRequests: Record<string, number>;
}

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-status-", { afterEachTest: false });

async function status(dir: string): Promise<Status> {
  const r = await fx.server.cli(["volume", "status", dir, "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Status;
}

describe("silo volume status DIR", () => {
  it("reports cache hits and bytes fetched, pending changes, and commits with their latency", async () => {
    const data = bytes(300_000);
    const vol = await fx.silo.volumes.fromName("status-vol", { createIfMissing: true });
    await vol.batchUpload().putFile(data, "big.bin").putFile(data, "twin.bin").commit();
    const dir = join(root, "m1");
    // No background commits: the test decides when one happens.
    await mounts.mount("status-vol", dir, "--commit-interval-ms", "0");

    let s = await status(dir);
    expect(s).toMatchObject({ version: 1, dirtyPaths: 0, lastCommitError: null });
    expect(s.cache).toMatchObject({ hits: 0, misses: 0, bytesFetched: 0 });

    // First read fetches the block; a second read of the same block is served from the cache.
    expect((await within(30_000, "read", readFile(join(dir, "big.bin")))).equals(data)).toBe(true);
    s = await status(dir);
    expect(s.cache.bytesFetched).toBe(300_000);
    expect(s.cache.misses).toBeGreaterThanOrEqual(1);
    const before = s.cache;
    // The twin has the same content, so the same block: another inode (the kernel's page cache
    // does not have it), served from the daemon's block cache without a fetch.
    expect((await within(30_000, "read twin", readFile(join(dir, "twin.bin")))).equals(data)).toBe(true);
    s = await status(dir);
    expect(s.cache.hits).toBeGreaterThan(before.hits);
    expect(s.cache.misses).toBe(before.misses);
    expect(s.cache.bytesFetched).toBe(300_000);
    expect(s.cache.hitRatio).toBeGreaterThan(0);

    await within(30_000, "write", writeFile(join(dir, "copy.bin"), data));
    s = await status(dir);
    expect(s.dirtyPaths).toBe(1);

    const record = await readMountRecord(dir);
    expect(record?.socket).toBeTruthy();
    await controlRequest(record!.socket!, "commit", 60_000);
    s = await status(dir);
    expect(s.dirtyPaths).toBe(0);
    expect(s.version).toBe(2);
    expect(s.commits).toMatchObject({ commits: 1, failures: 0 });
    expect(s.commits.lastCommitMs).toBeGreaterThan(0);
    expect(s.commits.lastCommitAt).toBeGreaterThan(0);
    // Nothing was fetched to commit a file written here.
    expect(s.cache.bytesFetched).toBe(300_000);

    const text = await fx.server.cli(["volume", "status", dir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^volume\s+status-vol \(vo-/m);
    expect(text.stdout).toMatch(/^pending changes\s+0 paths$/m);
    expect(text.stdout).toMatch(/^commits\s+1 \(0 failed\); last: \S+, took \d+ ms$/m);
    expect(text.stdout).toMatch(/^bytes fetched\s+300000 /m);
    expect(text.stdout).toMatch(/^block cache\s+.*hit ratio \d+\.\d%/m);
    // Without DIR: every volume mount of this user (other tests' mounts may be listed too).
    const all = await fx.server.cli(["volume", "status", "--json"]);
    expect(all.code, all.stderr).toBe(0);
    const mine = (JSON.parse(all.stdout) as Array<{ dir: string; status?: Status }>).find((m) => m.dir === dir);
    expect(mine?.status).toMatchObject({ version: 2, dirtyPaths: 0 });
    const table = await fx.server.cli(["volume", "status"]);
    expect(table.stdout).toContain(dir);
    await mounts.unmount(dir);
    const after = JSON.parse((await fx.server.cli(["volume", "status", "--json"])).stdout) as Array<{ dir: string }>;
    expect(after.map((m) => m.dir)).not.toContain(dir);
  });

  it("counts a commit the server refuses as a failure, with its error, and keeps the change", async () => {
    const vol = await fx.silo.volumes.fromName("status-fail", { createIfMissing: true });
    await vol.batchUpload().putFile(bytes(10), "a").commit();
    const dir = join(root, "m2");
    await mounts.mount("status-fail", dir, "--commit-interval-ms", "0");
    await within(30_000, "write", writeFile(join(dir, "b"), "not committable"));
    // The volume is gone on the server: a commit there is refused (404, not retried).
    await fx.silo.volumes.delete("status-fail");
    const record = await readMountRecord(dir);
    await expect(controlRequest(record!.socket!, "commit", 60_000)).rejects.toThrow(/not found/i);

    const s = await status(dir);
    expect(s.commits).toMatchObject({ commits: 0, failures: 1 });
    expect(s.commits.lastCommitMs).toBeGreaterThan(0);
    expect(s.lastCommitError).toMatch(/not found/i);
    expect(s.dirtyPaths).toBe(1);
    const text = await fx.server.cli(["volume", "status", dir]);
    expect(text.stdout).toMatch(/^commits\s+0 \(1 failed\); last: none yet$/m);
    expect(text.stdout).toMatch(/^last commit error\s+.*not found/im);
    expect(text.stdout).toMatch(/^pending changes\s+1 path$/m);
    // Its final commit fails too: the unmount says so (the change stays in the journal) and the mount goes.
    const r = await within(120_000, "unmount", fx.server.cli(["volume", "unmount", dir]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/final commit FAILED/);
    expect(await mountPointState(dir)).toBe("free");
  });

  it("a plain listing of a large directory registers no inode number per name; each name's d_ino is the number stat then gives", async () => {
    const vol = await fx.silo.volumes.fromName("status-listing", { createIfMissing: true });
    const changes = Array.from({ length: 3000 }, (_, i) => ({ op: "put" as const, entry: { path: `big/f${i}`, type: "file" as const, mode: 0o644, size: 0, mtimeMs: 1_700_000_000_000, blocks: [] } }));
    await vol.blocks.commitChanges({ baseVersion: await vol.blocks.latestVersion(), changes });
    const dir = join(root, "m3");
    await mounts.mount("status-listing", dir, "--commit-interval-ms", "0", "--read-only");
    // In another process (never sync fs calls on a mount from here): scandir gives each name's
    // d_ino from the listing alone, then a stat of each name looks it up.
    const list = `import json, os, sys\nprint(json.dumps({e.name: e.inode() for e in os.scandir(sys.argv[1])}), flush=True)\nsys.stdin.readline()\nprint(json.dumps({n: os.stat(os.path.join(sys.argv[1], n)).st_ino for n in os.listdir(sys.argv[1])}), flush=True)`;
    const py = spawn(PYTHON, ["-c", list, join(dir, "big")], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
    const listed = JSON.parse((await within(60_000, "scandir", lines.next())).value as string) as Record<string, number>;
    expect(Object.keys(listed).length).toBe(3000);
    // The kernel asked for the first page with attributes (READDIRPLUS: those names are looked
    // up, and numbered), the rest as plain names: far fewer numbers than names.
    const s1 = await status(dir);
    expect(s1.kernelInodes).toBeLessThan(1000);
    py.stdin!.write("\n");
    const stated = JSON.parse((await within(60_000, "stat", lines.next())).value as string) as Record<string, number>;
    expect(Object.entries(stated).filter(([n, ino]) => listed[n] !== ino)).toEqual([]);
    expect(new Set(Object.values(stated)).size).toBe(3000);
    // (Not asserted: how many numbers the kernel holds after the stats. Any process's drop_caches,
    // as other suites run, makes it forget them at once.)
    await mounts.unmount(dir);
  });

  it("counts the FUSE requests it served by opcode: the difference between two reports is a workload's", async () => {
    await fx.silo.volumes.fromName("status-requests", { createIfMissing: true });
    const dir = join(root, "m4");
    await mounts.mount("status-requests", dir, "--commit-interval-ms", "0");
    const before = (await status(dir)).fuseRequests;
    // Another process creates and writes 20 files (never sync fs calls on a mount from here).
    const py = spawn(PYTHON, ["-c", "import sys\nfor i in range(20): open(f'{sys.argv[1]}/f{i}', 'w').write('x')", dir], { stdio: "inherit" });
    expect(await within(60_000, "python", new Promise((res) => py.once("close", res)))).toBe(0);
    const after = (await status(dir)).fuseRequests;
    const served = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    expect(served("CREATE")).toBe(20);
    expect(served("WRITE")).toBe(20);
    expect(served("FLUSH")).toBeGreaterThanOrEqual(20);
    await mounts.unmount(dir);
  });

  it("says so in one line when nothing is mounted there", async () => {
    const r = await fx.server.cli(["volume", "status", join(root, "nothing")]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^Error: No volume mount answers at /)]);
  });
});
