
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { readMountRecord } from "../fuse/common/mount-records.js";
import { committedText, Job, mountsFixture, within } from "./helpers/volume-mounts.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-journal-test-");

afterEach(async () => {
  // A test that stopped the server (and failed before starting it again).
  const proc = fx.server.proc;
  if (proc && (proc.exitCode !== null || proc.signalCode !== null)) await fx.server.launch();
});

async function readAll(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}

const errCode = (p: Promise<unknown>) => p.then(() => "ok", (err: NodeJS.ErrnoException) => err.code);

async function writeDurably(path: string, data: string | Buffer, how: "fsync" | "close"): Promise<void> {
  const fh = await open(path, "w");
  await fh.writeFile(data);
  if (how === "fsync") await fh.sync();
  await fh.close();
}

describe("the mount refuses at the system call what a commit would refuse", () => {
  it("names and paths too long, absurd sizes; later commits are unaffected", async () => {
    const vol = await fx.silo.volumes.fromName("limits", { createIfMissing: true });
    const dir = join(root, "limits");
    await mounts.mount("limits", dir, "--commit-interval-ms", "0");
    const long = "a".repeat(256);
    expect(await errCode(writeFile(join(dir, long), "x"))).toBe("ENAMETOOLONG");
    expect(await errCode(mkdir(join(dir, long)))).toBe("ENAMETOOLONG");
    await writeFile(join(dir, "ok.txt"), "fine");
    expect(await errCode(rename(join(dir, "ok.txt"), join(dir, long)))).toBe("ENAMETOOLONG");
    // 255 bytes is allowed, also as multi-byte characters.
    await writeFile(join(dir, "é".repeat(127)), "two-byte name");
    expect(await errCode(writeFile(join(dir, "é".repeat(128)), "x"))).toBe("ENAMETOOLONG");
    // A directory whose move would make a path below it longer than 4096 bytes.
    const seg = "d".repeat(250);
    let deep = dir;
    for (let i = 0; i < 15; i++) await mkdir((deep = join(deep, seg)));
    await mkdir(join(dir, "x"));
    await mkdir(join(dir, "x", seg));
    expect(await errCode(rename(join(dir, "x"), join(deep, "y".repeat(200))))).toBe("ENAMETOOLONG");
    await rename(join(dir, "x"), join(deep, "y".repeat(50)));

    // Sparse: 1 TiB - 1 is the largest file; beyond, EFBIG; the hole costs nothing to commit.
    const sparse = join(dir, "sparse");
    await writeFile(sparse, "");
    await truncate(sparse, 2 ** 40 - 1);
    expect(await errCode(truncate(sparse, 2 ** 40))).toBe("EFBIG");
    expect(await errCode(truncate(sparse, 999_999_999_999_999))).toBe("EFBIG");
    const fh = await open(sparse, "r+");
    await fh.write(Buffer.alloc(1 << 20, 7), 0, 1 << 20, 2 ** 39);
    expect(await errCode(fh.write(Buffer.from("x"), 0, 1, 2 ** 40 - 1))).toBe("EFBIG");
    await fh.close();
    expect((await stat(sparse)).size).toBe(2 ** 40 - 1);

    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "limits", "ok.txt")).toBe("fine");
    expect(await committedText(fx.silo, "limits", "é".repeat(127))).toBe("two-byte name");
    const [entry] = await vol.listdir("sparse");
    expect(entry?.size).toBe(2 ** 40 - 1);
    const chunks: Buffer[] = [];
    for await (const c of vol.readFile("sparse", { start: 2 ** 39 - 10, end: 2 ** 39 + (1 << 20) + 10 })) chunks.push(c);
    const got = Buffer.concat(chunks);
    expect(got.length).toBe((1 << 20) + 20);
    expect(got.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(got.subarray(10, 10 + (1 << 20)).equals(Buffer.alloc(1 << 20, 7))).toBe(true);
  });
});

describe("the local journal", () => {
  it("kill -9 of the daemon after fsync and close: remounting recovers both files", async () => {
    await fx.silo.volumes.fromName("killed", { createIfMissing: true });
    const dir = join(root, "killed");
    await mounts.mount("killed", dir, "--commit-interval-ms", "0");
    await writeDurably(join(dir, "synced.txt"), "fsync'd", "fsync");
    await mkdir(join(dir, "sub"));
    await writeDurably(join(dir, "sub", "closed.txt"), "closed", "close");
    await writeDurably(join(dir, "moved.txt"), "renamed", "close");
    await rename(join(dir, "moved.txt"), join(dir, "sub", "moved.txt"));
    const big = Buffer.alloc(9 * 1024 * 1024 + 5, 3);
    await writeDurably(join(dir, "big.bin"), big, "fsync");
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    expect(await committedText(fx.silo, "killed", "synced.txt")).toBe(null);

    await mounts.mount("killed", dir, "--commit-interval-ms", "0");
    expect(await readFile(join(dir, "synced.txt"), "utf8")).toBe("fsync'd");
    expect(await readFile(join(dir, "sub", "closed.txt"), "utf8")).toBe("closed");
    expect(await readFile(join(dir, "sub", "moved.txt"), "utf8")).toBe("renamed");
    expect(await errCode(stat(join(dir, "moved.txt")))).toBe("ENOENT");
    expect((await readFile(join(dir, "big.bin"))).equals(big)).toBe(true);
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "killed", "synced.txt")).toBe("fsync'd");
    expect(await committedText(fx.silo, "killed", "sub/moved.txt")).toBe("renamed");
    expect(await committedText(fx.silo, "killed", "moved.txt")).toBe(null);
  });

  it("kill -9 after small files were created and closed (no fsync): each close's state is recovered, empty files too", async () => {
    await fx.silo.volumes.fromName("small-killed", { createIfMissing: true });
    const dir = join(root, "small-killed");
    await mounts.mount("small-killed", dir, "--commit-interval-ms", "0");
    await mkdir(join(dir, "d"));
    const want = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const p = join("d", `f${i}`);
      // Every third file is created and closed without a write: no upper file, only its journal record.
      const data = i % 3 === 0 ? "" : `small file ${i}\n`.repeat(1 + (i % 7));
      const fh = await open(join(dir, p), "w");
      if (data) await fh.write(data);
      await fh.close();
      want.set(p, data);
    }
    // Unlinked and renamed after their close: the last state before the last close counts.
    for (let i = 1; i < 200; i += 10) {
      await rm(join(dir, "d", `f${i}`));
      want.delete(join("d", `f${i}`));
    }
    await rename(join(dir, "d", "f2"), join(dir, "f2-moved"));
    want.set("f2-moved", want.get(join("d", "f2"))!);
    want.delete(join("d", "f2"));
    await writeDurably(join(dir, "last.txt"), "the last close", "close");
    want.set("last.txt", "the last close");
    // Small files keep their bytes in memory and in the journal's records: no upper file each.
    const { journal } = (await readMountRecord(dir))!;
    expect(await readdir(join(journal!, "upper"))).toEqual([]);
    process.kill(await mounts.daemonPid(dir), "SIGKILL");

    await mounts.mount("small-killed", dir, "--commit-interval-ms", "0");
    for (const [p, data] of want) expect([p, await readFile(join(dir, p), "utf8")]).toEqual([p, data]);
    expect((await readdir(join(dir, "d"))).length).toBe(want.size - 2);
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "small-killed", "d/f0")).toBe("");
    expect(await committedText(fx.silo, "small-killed", "d/f4")).toBe(want.get(join("d", "f4"))!);
    expect(await committedText(fx.silo, "small-killed", "d/f1")).toBe(null);
  });

  it("kill -9 after a commit: the journal replays nothing the commit holds, so another client's later change stands", async () => {
    const vol = await fx.silo.volumes.fromName("replay-stale", { createIfMissing: true });
    const dir = join(root, "replay-stale");
    // No periodic journal append: the change stays marked, not appended, until the commit's checkpoint.
    await mounts.mountWithEnv({ SILO_JOURNAL_FLUSH_MS: String(3_600_000) }, "replay-stale", dir, "--commit-interval-ms", "0");
    const control = async (op: "commit" | "reload") =>
      within(60_000, op, controlRequest(join((await import("../fuse/volume/daemon.js")).stateDirFor(dir), "control.sock"), op));
    // Written and committed while open, closed after the commit: the commit holds "mine".
    const fh = await open(join(dir, "p.txt"), "w");
    try {
      await fh.write("mine");
      await control("commit");
    } finally {
      await fh.close();
    }
    expect(await committedText(fx.silo, "replay-stale", "p.txt")).toBe("mine");
    // Another client replaces it; the mount reloads and serves theirs; then its daemon dies.
    await vol.batchUpload({ force: true }).putFile(Buffer.from("theirs"), "p.txt").commit();
    await control("reload");
    expect(await readFile(join(dir, "p.txt"), "utf8")).toBe("theirs");
    process.kill(await mounts.daemonPid(dir), "SIGKILL");

    // The next mount recovers the dead daemon's journal: nothing in it is older than what the server has.
    await mounts.mount("replay-stale", dir, "--commit-interval-ms", "0");
    expect(await readFile(join(dir, "p.txt"), "utf8")).toBe("theirs");
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "replay-stale", "p.txt")).toBe("theirs");
  });

  it("server down at unmount: non-zero exit saying what is pending; the next mount commits it", async () => {
    await fx.silo.volumes.fromName("downed", { createIfMissing: true });
    const dir = join(root, "downed");
    await mounts.mount("downed", dir, "--commit-interval-ms", "0", "--final-commit-retry-ms", "500");
    await writeFile(join(dir, "kept.txt"), "kept");
    await fx.server.stop();
    const r = await within(120_000, "unmount", fx.server.cli(["volume", "unmount", dir]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/final commit FAILED/);
    expect(r.stderr).toMatch(/silo volume recover downed/);
    await fx.server.launch();
    expect(await committedText(fx.silo, "downed", "kept.txt")).toBe(null);

    await mounts.mount("downed", dir, "--commit-interval-ms", "0");
    expect(await readFile(join(dir, "kept.txt"), "utf8")).toBe("kept");
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "downed", "kept.txt")).toBe("kept");
  });

  it("silo run: a failed final commit exits non-zero saying what is pending; the next job's mount commits it", async () => {
    await fx.silo.volumes.fromName("jobvol", { createIfMissing: true });
    const path = join(root, "jobmnt");
    const job = await Job.start(fx.server, ["--commit-interval-ms", "0", "--final-commit-retry-ms", "500", "-v", `jobvol:${path}`], "jobvol");
    try {
      expect((await job.send(`write ${path}/from-job.txt from the job`)).ok).toBe(true);
      await fx.server.stop();
      expect(await job.stop()).not.toBe(0);
      expect(job.stderr).toMatch(/final commit FAILED/);
      expect(job.stderr).toMatch(/silo volume recover jobvol/);
    } finally {
      job.kill();
    }
    await fx.server.launch();
    expect(await committedText(fx.silo, "jobvol", "from-job.txt")).toBe(null);
    const next = await Job.start(fx.server, ["--commit-interval-ms", "0", "-v", `jobvol:${path}`], "jobvol");
    try {
      expect(await next.send(`read ${path}/from-job.txt`)).toEqual({ ok: true, value: "from the job" });
      expect(await next.stop()).toBe(0);
    } finally {
      next.kill();
    }
    expect(await committedText(fx.silo, "jobvol", "from-job.txt")).toBe("from the job");
  });

  it("silo volume recover commits a failed final commit's changes without mounting", async () => {
    await fx.silo.volumes.fromName("recov", { createIfMissing: true });
    const dir = join(root, "recov");
    await mounts.mount("recov", dir, "--commit-interval-ms", "0", "--final-commit-retry-ms", "500");
    await writeFile(join(dir, "a.txt"), "alpha");
    await fx.server.stop();
    expect((await within(120_000, "unmount", fx.server.cli(["volume", "unmount", dir]))).code).toBe(1);
    await fx.server.launch();
    const r = await fx.server.cli(["volume", "recover", "recov"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/Recovered 1 journal/);
    expect(await committedText(fx.silo, "recov", "a.txt")).toBe("alpha");
    expect((await fx.server.cli(["volume", "recover", "recov"])).stdout).toMatch(/Nothing to recover/);
  });

  it("a server restart during a job loses nothing (transient errors are retried)", async () => {
    await fx.silo.volumes.fromName("restart", { createIfMissing: true });
    const dir = join(root, "restart");
    await mounts.mount("restart", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "r.txt"), "survives");
    await fx.server.stop();
    const socket = join((await import("../fuse/volume/daemon.js")).stateDirFor(dir), "control.sock");
    const committing = controlRequest(socket, "commit", 120_000);
    await fx.server.launch();
    await within(120_000, "commit across a restart", committing);
    expect(await committedText(fx.silo, "restart", "r.txt")).toBe("survives");
    await mounts.unmount(dir);
  });
});

describe("commit and reload reach mounts made by hand", () => {
  it("silo volume commit|reload DIR and Volume.commit()/reload() act on a 'silo volume mount'", async () => {
    const vol = await fx.silo.volumes.fromName("hand", { createIfMissing: true });
    const dir = join(root, "hand");
    await mounts.mount("hand", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "one.txt"), "one");
    const c = await fx.server.cli(["volume", "commit", dir]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/Committed .*1 change/);
    expect(await committedText(fx.silo, "hand", "one.txt")).toBe("one");

    await writeFile(join(dir, "two.txt"), "two");
    const script = `
      import { SiloClient } from ${JSON.stringify(join(import.meta.dirname, "../dist/client/index.js"))};
      const silo = new SiloClient();
      const vol = await silo.volumes.fromName("hand");
      await vol.commit();
      await vol.reload();
      console.log("done");
      await silo.close();`;
    const { execFile } = await import("node:child_process");
    const out = await new Promise<string>((res, rej) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], { env: fx.server.env }, (err, stdout, stderr) => (err ? rej(new Error(stderr)) : res(stdout))),
    );
    expect(out.trim()).toBe("done");
    expect(await committedText(fx.silo, "hand", "two.txt")).toBe("two");

    // Another writer commits through the API; reload DIR shows it.
    await vol.batchUpload().putFile(Buffer.from("api"), "three.txt").commit();
    const r = await fx.server.cli(["volume", "reload", dir]);
    expect(r.code).toBe(0);
    expect(await readFile(join(dir, "three.txt"), "utf8")).toBe("api");

    const none = await fx.server.cli(["volume", "commit", join(root, "not-a-mount")]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/No silo volume mount at/);
    await mounts.unmount(dir);
  });
});

describe("commits are snapshots that never wait for writers", () => {
  it("a small file commits within two background commits while another file is written continuously", async () => {
    const vol = await fx.silo.volumes.fromName("busywriter", { createIfMissing: true });
    const dir = join(root, "busywriter");
    await mounts.mount("busywriter", dir, "--commit-interval-ms", "300");
    const MiB = 1 << 20;
    let stop = false;
    let written = 0;
    const writer = (async () => {
      const fh = await open(join(dir, "stream.bin"), "w");
      try {
        while (!stop) {
          await fh.write(Buffer.alloc(MiB, written % 251), 0, MiB, written * MiB);
          written++;
        }
      } finally {
        await fh.close();
      }
    })();
    try {
      // Let the writer get going so commits run while it writes.
      while (written < 20) await new Promise((r) => setImmediate(r));
      await writeFile(join(dir, "small.txt"), "small");
      const before = await vol.blocks.latestVersion();
      let seenIn = 0;
      for (let v = before; !seenIn; ) {
        const now = await vol.blocks.latestVersion();
        for (; v <= now; v++) {
          const entries = await vol.blocks.tree(v).catch(() => undefined);
          if (entries?.entries.some((e) => e.path === "small.txt")) {
            seenIn = v;
            break;
          }
        }
        if (!seenIn) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seenIn - before).toBeLessThanOrEqual(2);
      const status = await controlRequest<{ lastCommitError: string | null }>(join((await import("../fuse/volume/daemon.js")).stateDirFor(dir), "control.sock"), "status");
      expect(status.lastCommitError).toBe(null);
    } finally {
      stop = true;
      await writer;
    }
    // Every version committed meanwhile holds a prefix of the stream with the right bytes (the
    // kernel splits each 1 MiB write into smaller FUSE writes, so a prefix may end mid-MiB).
    const check = async (version: number) => {
      const entry = (await vol.blocks.tree(version)).entries.find((e) => e.path === "stream.bin");
      if (!entry) return;
      const data = await readAll(vol.readFile("stream.bin", { start: 0, end: entry.size }));
      expect(data.length).toBe(entry.size);
      for (let i = 0; i * MiB < data.length; i++) {
        const chunk = data.subarray(i * MiB, Math.min(data.length, (i + 1) * MiB));
        expect(chunk.equals(Buffer.alloc(chunk.length, i % 251))).toBe(true);
      }
    };
    await check(await vol.blocks.latestVersion());
    await mounts.unmount(dir);
    const data = await readAll(vol.readFile("stream.bin"));
    expect(data.length).toBe(written * MiB);
    for (let i = 0; i < written; i++) expect(data[i * MiB]).toBe(i % 251);
  });
});
