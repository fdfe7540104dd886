import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { link, mkdir, open, readFile, readdir, rename, rmdir, stat, symlink, chmod, truncate, unlink, writeFile } from "node:fs/promises";
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { eventually } from "./helpers/eventually.js";
import { SmallDisk } from "./helpers/tmpfs.js";
import { bucketCli, cliMount, daemonPid, forceUnmount, mountedBucketFixture, newMountPoint, waitForExit, withMount } from "./helpers/bucket-mount.js";

const sh = promisify(execFile);
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

// Objects put into the bucket directly become visible in a mount within its metadata TTL
// (1 s): these are put before the mount, so every test sees them at once.
const fx = mountedBucketFixture("mount", async (s3, bucket) => {
  const put = (key: string, body: Buffer | string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  await Promise.all([
    put("hello.txt", "hello world\n"),
    put("data/big.bin", big),
    put("data/nested/deep.txt", "deep"),
    put("shadow", "a file hidden by the directory of the same name"),
    put("shadow/inside.txt", "inside"),
    put("p/inside.txt", "in the prefix"),
    put("p/sub/x.txt", "x"),
    put("outside.txt", "not in the prefix"),
    put("overwrite.txt", "old contents"),
    put("existing.txt", "keep me"),
    put("doomed.txt", "bye"),
  ]);
});

async function put(key: string, body: Buffer | string): Promise<void> {
  await fx.s3.send(new PutObjectCommand({ Bucket: fx.bucket, Key: key, Body: body }));
}
async function get(key: string): Promise<Buffer> {
  const res = await fx.s3.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}
async function exists(key: string): Promise<boolean> {
  return fx.s3.send(new HeadObjectCommand({ Bucket: fx.bucket, Key: key })).then(
    () => true,
    (err: Error) => {
      if (err.name === "NotFound") return false;
      throw err;
    },
  );
}
/** The errno code a promise fails with. */
async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: NodeJS.ErrnoException) => err.code,
  );
}

const big = randomBytes(20 * 1024 * 1024 + 12345);

describe("reads", () => {
  it("lists objects as files and prefixes as directories; a directory shadows a file of the same name", async () => {
    expect((await readdir(fx.mnt)).sort()).toEqual(["data", "doomed.txt", "existing.txt", "hello.txt", "outside.txt", "overwrite.txt", "p", "shadow"]);
    expect((await readdir(join(fx.mnt, "data"))).sort()).toEqual(["big.bin", "nested"]);
    expect((await stat(join(fx.mnt, "data"))).isDirectory()).toBe(true);
    expect((await stat(join(fx.mnt, "shadow"))).isDirectory()).toBe(true);
    const st = await stat(join(fx.mnt, "hello.txt"));
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(12);
    expect(await codeOf(stat(join(fx.mnt, "missing")))).toBe("ENOENT");
  });

  it("objects put into the bucket by others appear once the metadata TTL (1 s) has passed", async () => {
    await readdir(join(fx.mnt, "data")); // cached listing
    await put("data/late.txt", "late");
    await eventually(async () => expect(await readdir(join(fx.mnt, "data"))).toContain("late.txt"));
    expect(await readFile(join(fx.mnt, "data/late.txt"), "utf8")).toBe("late");
  });

  it("in a directory in use for several TTLs, own files stay visible through re-listings and others' files appear", async () => {
    const dir = join(fx.mnt, "busy");
    await mkdir(dir);
    const own: string[] = [];
    const others: string[] = [];
    for (let i = 0, until = Date.now() + 3000; Date.now() < until; i++) {
      await writeFile(join(dir, `own-${i}`), `${i}`);
      own.push(`own-${i}`);
      // The recent ones: some were written while a background re-listing was under way.
      for (const name of own.slice(-20)) expect((await stat(join(dir, name))).size).toBe(name.length - 4);
      if (i % 10 === 0) {
        await put(`busy/other-${i}`, "x");
        others.push(`other-${i}`);
      }
    }
    await eventually(async () => expect((await readdir(dir)).sort()).toEqual([...own, ...others].sort()));
  });

  it("reads a small file, a large file sequentially (read-ahead) and at random offsets, from another process too", async () => {
    expect(await readFile(join(fx.mnt, "hello.txt"), "utf8")).toBe("hello world\n");
    expect(md5(await readFile(join(fx.mnt, "data/big.bin")))).toBe(md5(big));
    const { stdout } = await sh("md5sum", [join(fx.mnt, "data/big.bin")]);
    expect(stdout.split(" ")[0]).toBe(md5(big));
    const fh = await open(join(fx.mnt, "data/big.bin"), "r");
    try {
      for (const pos of [big.length - 100, 7, 15 * 1024 * 1024 + 3, 123_456, big.length - 1]) {
        const buf = Buffer.alloc(100);
        const { bytesRead } = await fh.read(buf, 0, 100, pos);
        expect(bytesRead).toBe(Math.min(100, big.length - pos));
        expect(buf.subarray(0, bytesRead).equals(big.subarray(pos, pos + bytesRead))).toBe(true);
      }
    } finally {
      await fh.close();
    }
  });
});

describe("writes", () => {
  it("a new file is uploaded on close, not before (multipart while writing for large files)", async () => {
    const path = join(fx.mnt, "new/large.bin");
    await mkdir(join(fx.mnt, "new"));
    const data = randomBytes(13 * 1024 * 1024);
    const fh = await open(path, "w");
    try {
      for (let off = 0; off < data.length; off += 1024 * 1024) await fh.write(data, off, Math.min(1024 * 1024, data.length - off));
      expect((await stat(path)).size).toBe(data.length); // this mount sees it, growing
      expect(await exists("new/large.bin")).toBe(false); // the bucket does not, yet
    } finally {
      await fh.close();
    }
    expect(md5(await get("new/large.bin"))).toBe(md5(data));
    expect(md5(await readFile(path))).toBe(md5(data));
  });

  it("shell redirection and cp write new files; fsync makes a file visible", async () => {
    await sh("sh", ["-c", `echo from-shell > ${join(fx.mnt, "shell.txt")} && cp ${join(fx.mnt, "hello.txt")} ${join(fx.mnt, "copy.txt")}`]);
    expect((await get("shell.txt")).toString()).toBe("from-shell\n");
    expect((await get("copy.txt")).toString()).toBe("hello world\n");
    const fh = await open(join(fx.mnt, "synced.txt"), "w");
    try {
      await fh.write("synced");
      await fh.sync();
      expect((await get("synced.txt")).toString()).toBe("synced");
      expect(await codeOf(fh.write("more"))).toBe("EPERM"); // already uploaded
    } finally {
      await fh.close();
    }
  });

  it("overwrites an existing file when opened with O_TRUNC", async () => {
    await writeFile(join(fx.mnt, "overwrite.txt"), "new");
    expect((await get("overwrite.txt")).toString()).toBe("new");
    await sh("sh", ["-c", `echo again > ${join(fx.mnt, "overwrite.txt")}`]);
    expect((await get("overwrite.txt")).toString()).toBe("again\n");
  });

  it("refuses append, seek-and-write, and writing an existing file without O_TRUNC, with EPERM", async () => {
    expect(await codeOf(writeFile(join(fx.mnt, "existing.txt"), "x", { flag: "a" }))).toBe("EPERM");
    await expect(sh("sh", ["-c", `echo x >> ${join(fx.mnt, "existing.txt")}`])).rejects.toThrow(/not permitted/);
    const rw = await open(join(fx.mnt, "existing.txt"), "r+");
    try {
      expect(await codeOf(rw.write("x", 0))).toBe("EPERM");
    } finally {
      await rw.close();
    }
    const fh = await open(join(fx.mnt, "seek.txt"), "w");
    try {
      await fh.write("start", 0);
      expect(await codeOf(fh.write("gap", 1000))).toBe("EPERM");
      expect(await codeOf(fh.write("back", 0))).toBe("EPERM");
    } finally {
      await fh.close().catch(() => {});
    }
    expect((await get("existing.txt")).toString()).toBe("keep me");
  });

  it("refuses chmod/chown (EPERM), and rename, symlinks, hard links (ENOTSUP)", async () => {
    const f = join(fx.mnt, "hello.txt");
    expect(await codeOf(chmod(f, 0o600))).toBe("EPERM");
    expect(await codeOf(sh("chown", ["1234", f]))).toBeDefined();
    expect(await codeOf(rename(f, join(fx.mnt, "renamed.txt")))).toBe("ENOTSUP");
    expect(await codeOf(symlink("hello.txt", join(fx.mnt, "sym")))).toBe("ENOTSUP");
    expect(await codeOf(link(f, join(fx.mnt, "hard")))).toBe("ENOTSUP");
    expect(await codeOf(truncate(f, 3))).toBe("EPERM");
    expect((await get("hello.txt")).toString()).toBe("hello world\n");
  });

  it("unlink deletes the object; mkdir is local until a file is written in it; rmdir removes empty directories", async () => {
    await unlink(join(fx.mnt, "doomed.txt"));
    expect(await exists("doomed.txt")).toBe(false);
    expect(await codeOf(stat(join(fx.mnt, "doomed.txt")))).toBe("ENOENT");

    await mkdir(join(fx.mnt, "local/inner"), { recursive: true });
    expect((await stat(join(fx.mnt, "local/inner"))).isDirectory()).toBe(true);
    expect(await readdir(fx.mnt)).toContain("local");
    expect(await codeOf(mkdir(join(fx.mnt, "local")))).toBe("EEXIST");
    expect(await codeOf(rmdir(join(fx.mnt, "local")))).toBe("ENOTEMPTY");
    await rmdir(join(fx.mnt, "local/inner"));
    await rmdir(join(fx.mnt, "local"));
    expect(await codeOf(stat(join(fx.mnt, "local")))).toBe("ENOENT");

    await mkdir(join(fx.mnt, "made/sub"), { recursive: true });
    await writeFile(join(fx.mnt, "made/sub/file.txt"), "in a new dir");
    expect((await get("made/sub/file.txt")).toString()).toBe("in a new dir");
    expect(await codeOf(rmdir(join(fx.mnt, "made/sub")))).toBe("ENOTEMPTY");
    expect(await codeOf(writeFile(join(fx.mnt, "no-such-dir/f.txt"), "x"))).toBe("ENOENT");
  });
});

describe("mount options and lifecycle", () => {
  it("--prefix confines the mount to keys under it", async () => {
    await withMount(fx.bucket, ["--prefix", "p/"], async (dir) => {
      expect((await readdir(dir)).sort()).toEqual(["inside.txt", "sub"]);
      expect(await readFile(join(dir, "inside.txt"), "utf8")).toBe("in the prefix");
      expect(await codeOf(stat(join(dir, "outside.txt")))).toBe("ENOENT");
      expect(await readdir(join(dir, ".."))).not.toContain("outside.txt");
      await writeFile(join(dir, "written.txt"), "confined");
      expect((await get("p/written.txt")).toString()).toBe("confined");
      expect(await exists("written.txt")).toBe(false);
    });
  });

  it("--read-only refuses every write with EROFS and still reads", async () => {
    await withMount(fx.bucket, ["--read-only"], async (dir) => {
      expect(await readFile(join(dir, "hello.txt"), "utf8")).toBe("hello world\n");
      const f = join(dir, "hello.txt");
      const ops: Array<[string, () => Promise<unknown>]> = [
        ["create", () => writeFile(join(dir, "new.txt"), "x")],
        ["overwrite", () => writeFile(f, "x")],
        ["unlink", () => unlink(f)],
        ["mkdir", () => mkdir(join(dir, "d"))],
        ["rmdir", () => rmdir(join(dir, "data"))],
        ["chmod", () => chmod(f, 0o600)],
        ["rename", () => rename(f, join(dir, "r.txt"))],
        ["symlink", () => symlink("hello.txt", join(dir, "s"))],
        ["truncate", () => truncate(f, 0)],
      ];
      for (const [name, op] of ops) expect([name, await codeOf(op())]).toEqual([name, "EROFS"]);
      expect(await exists("new.txt")).toBe(false);
      expect((await get("hello.txt")).toString()).toBe("hello world\n");
    });
  });

  it("bad prefix, unknown bucket and wrong credentials fail the mount with a clear error", async () => {
    const dir = newMountPoint();
    try {
      let res = await bucketCli(["mount", fx.bucket, dir, "--prefix", "no-slash"]);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/must end in '\/'/);
      res = await bucketCli(["mount", "no-such-bucket-here", dir]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/NoSuchBucket/);
      res = await bucketCli(["mount", fx.bucket, dir], { AWS_SECRET_ACCESS_KEY: "wrong" });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/SignatureDoesNotMatch|AccessDenied/);
      res = await bucketCli(["mount", fx.bucket, dir, "--requester-pays"], { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/Requester Pays/);
      res = await bucketCli(["unmount", dir]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/not mounted/);
    } finally {
      await forceUnmount(dir);
    }
  });

  it("a daemon killed with -9 leaves a stale mount that the next mount clears; unmount stops the daemon", async () => {
    await withMount(fx.bucket, [], async (dir) => {
      const pid = await daemonPid(dir);
      process.kill(pid, "SIGKILL");
      await eventually(async () => expect(await codeOf(stat(dir))).toBe("ENOTCONN"));
      await cliMount(fx.bucket, dir);
      expect(await readFile(join(dir, "hello.txt"), "utf8")).toBe("hello world\n");
      const second = await daemonPid(dir);
      const res = await bucketCli(["unmount", dir]);
      expect(res.code).toBe(0);
      expect(await waitForExit(second)).toBe(true);
      expect(await readdir(dir)).toEqual([]);
    });
  });

  it("--write-back: close returns before the upload completes, the file appears in full, unmount waits for uploads", async () => {
    await withMount(fx.bucket, ["--write-back"], async (dir) => {
      const data = randomBytes(6 * 1024 * 1024 + 7);
      await writeFile(join(dir, "wb.bin"), data);
      expect((await stat(join(dir, "wb.bin"))).size).toBe(data.length); // visible here at once
      const fh = await open(join(dir, "wb-synced.txt"), "w");
      await fh.write("fsync waits");
      await fh.sync();
      expect((await get("wb-synced.txt")).toString()).toBe("fsync waits");
      await fh.close();
      for (let i = 0; i < 10; i++) await writeFile(join(dir, `wb-${i}.txt`), `n${i}`);
      expect((await bucketCli(["unmount", dir])).code).toBe(0);
      expect(md5(await get("wb.bin"))).toBe(md5(data));
      for (let i = 0; i < 10; i++) expect((await get(`wb-${i}.txt`)).toString()).toBe(`n${i}`);
    });
  });

  it("a daemon whose log is on a full disk drops the lines that do not fit and keeps serving", async () => {
    const disk = SmallDisk.mount(4 * 1024 * 1024);
    const env = { SILO_MOUNT_RUN_DIR: disk.dir };
    try {
      await withMount(
        fx.bucket,
        [],
        async (dir) => {
          const record = JSON.parse(readFileSync(join(disk.dir, readdirSync(disk.dir).find((n) => n.endsWith(".json"))!), "utf8")) as { pid: number; logFile: string };
          expect(record.logFile.startsWith(disk.dir)).toBe(true);
          disk.fill();
          // The log's last page too: the next line has no room.
          try {
            appendFileSync(record.logFile, Buffer.alloc(8192, "#"));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
          }
          // Each refusal is logged.
          for (let i = 0; i < 3; i++) expect(await codeOf(chmod(join(dir, "hello.txt"), 0o600 + i))).toBe("EPERM");
          expect(await readFile(join(dir, "hello.txt"), "utf8")).toBe("hello world\n");
          await writeFile(join(dir, "log-full.txt"), "written while the log's disk is full");
          expect((await get("log-full.txt")).toString()).toBe("written while the log's disk is full");
          await unlink(join(dir, "log-full.txt"));
          // With room again, lines are written again.
          disk.free();
          expect(await codeOf(chmod(join(dir, "existing.txt"), 0o600))).toBe("EPERM");
          await eventually(async () => expect(readFileSync(record.logFile, "utf8")).toContain("existing.txt"));
          expect((await bucketCli(["unmount", dir], env)).code).toBe(0);
          expect(await waitForExit(record.pid)).toBe(true);
        },
        env,
      );
    } finally {
      disk.free();
      disk.unmount();
    }
  });

  it("SIGTERM to the daemon unmounts cleanly", async () => {
    await withMount(fx.bucket, [], async (dir) => {
      const pid = await daemonPid(dir);
      process.kill(pid, "SIGTERM");
      expect(await waitForExit(pid)).toBe(true);
      expect(await readdir(dir)).toEqual([]);
    });
  });
});
