import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetworkFileSystem } from "../client/index.js";
import { readMountRecord } from "../fuse/common/mount-records.js";
import { lazyUnmount, mountPointState } from "../fuse/common/mount-table.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { eventually } from "./helpers/eventually.js";
import { within } from "./helpers/volume-mounts.js";

/**
 * Close-to-open consistency of network file system mounts: what one mount (or client, or job)
 * closed is what the next open anywhere sees, with no commit, no reload and no waiting. Every
 * read below follows the write's close at once; none retries.
 */
const sh = promisify(execFile);
const fx = siloServerFixture();
let root: string;
let a: string;
let b: string;
let nfs: NetworkFileSystem;
const mounted = new Set<string>();

async function mount(name: string, dir: string, ...flags: string[]): Promise<void> {
  mounted.add(dir);
  const r = await within(60_000, `nfs mount ${dir}`, fx.server.cli(["nfs", "mount", name, dir, ...flags]));
  expect(r.code, r.stderr).toBe(0);
}
async function unmount(dir: string): Promise<void> {
  const r = await within(120_000, `nfs unmount ${dir}`, fx.server.cli(["nfs", "unmount", dir]));
  expect(r.code, r.stderr).toBe(0);
  mounted.delete(dir);
}
/** A shell command in its own process: its writes are closed when it exits. */
const run = async (script: string) => (await within(30_000, script, sh("sh", ["-c", script]))).stdout;
const text = async (nfs: NetworkFileSystem, path: string) => {
  const chunks: Buffer[] = [];
  for await (const c of nfs.readFile(path)) chunks.push(c);
  return Buffer.concat(chunks).toString();
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "silo-nfs-mount-"));
  a = join(root, "a");
  b = join(root, "b");
  nfs = await fx.silo.networkFileSystems.fromName("shared", { createIfMissing: true });
  await mount("shared", a);
  await mount("shared", b);
});
afterAll(async () => {
  for (const dir of mounted) {
    await within(60_000, `unmount ${dir}`, fx.server.cli(["nfs", "unmount", dir, "--timeout-ms", "30000"])).catch(() => {});
    if ((await mountPointState(dir).catch(() => "stale")) !== "free") await lazyUnmount(dir).catch(() => {});
  }
  rmSync(root, { recursive: true, force: true });
});

describe("nfs mounts: close-to-open", () => {
  it("a file closed in one mount is read in the other at once; overwrites and appends too", async () => {
    await run(`echo first > ${a}/f.txt`);
    expect(await readFile(join(b, "f.txt"), "utf8")).toBe("first\n");
    // Same size, new bytes: the reader's page cache must not serve the old ones.
    await run(`echo secnd > ${a}/f.txt`);
    expect(await readFile(join(b, "f.txt"), "utf8")).toBe("secnd\n");
    await run(`echo more >> ${b}/f.txt`);
    expect(await readFile(join(a, "f.txt"), "utf8")).toBe("secnd\nmore\n");
    expect((await stat(join(a, "f.txt"))).size).toBe(11);
  });

  it("new directories and names show in listings and lookups; deletes and renames too", async () => {
    await run(`mkdir -p ${a}/d/e && echo 1 > ${a}/d/one && echo 2 > ${a}/d/e/two`);
    expect((await readdir(join(b, "d"))).sort()).toEqual(["e", "one"]);
    expect(await readFile(join(b, "d/e/two"), "utf8")).toBe("2\n");
    await run(`mv ${b}/d/one ${b}/d/uno && rm ${b}/d/e/two && rmdir ${b}/d/e`);
    // The other side may have cached these names: they must be gone for the next lookup anyway.
    expect((await readdir(join(a, "d"))).sort()).toEqual(["uno"]);
    await expect(readFile(join(a, "d/e/two"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readFile(join(a, "d/uno"), "utf8")).toBe("1\n");
  });

  it("the client API and the mounts see each other's writes without commit", async () => {
    await run(`echo from-mount > ${a}/m.txt`);
    expect(await text(nfs, "m.txt")).toBe("from-mount\n");
    await nfs.writeFile("/c/from-client.txt", Buffer.from("from-client"));
    expect(await readFile(join(b, "c/from-client.txt"), "utf8")).toBe("from-client");
    await nfs.removeFile("/c", { recursive: true });
    await expect(readFile(join(b, "c/from-client.txt"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(readdir(join(b, "c"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a file still open for writing keeps its bytes; its close wins over a write closed meanwhile", async () => {
    const fh = await open(join(a, "held.txt"), "w");
    await fh.write("local-1 ");
    await nfs.writeFile("/held.txt", Buffer.from("remote write"));
    // Another open in the writer's mount catches up, but must not drop the open file's bytes.
    await readdir(a);
    await fh.write("local-2");
    await fh.close();
    expect(await text(nfs, "held.txt")).toBe("local-1 local-2");
    expect(await readFile(join(b, "held.txt"), "utf8")).toBe("local-1 local-2");
  });

  it("a reader keeps its open file's bytes while another mount replaces it; the next open gets the new ones", async () => {
    await run(`printf old-content > ${a}/r.txt`);
    const reader = await open(join(b, "r.txt"), "r");
    const first = Buffer.alloc(3);
    await reader.read(first, 0, 3, 0);
    await run(`printf NEW > ${a}/r.txt`);
    await readdir(b); // b catches up while the reader is open
    const rest = Buffer.alloc(8);
    const { bytesRead } = await reader.read(rest, 0, 8, 3);
    await reader.close();
    expect(first.toString() + rest.subarray(0, bytesRead).toString()).toBe("old-content");
    expect(await readFile(join(b, "r.txt"), "utf8")).toBe("NEW");
  });

  it("large files: 20 MiB written in one mount read back whole in the other", async () => {
    await run(`head -c 20971520 /dev/urandom > ${a}/big.bin && sha256sum ${a}/big.bin | cut -d' ' -f1 > ${root}/big.sha`);
    const want = (await readFile(join(root, "big.sha"), "utf8")).trim();
    expect((await run(`sha256sum ${b}/big.bin | cut -d' ' -f1`)).trim()).toBe(want);
  });

  it("two jobs under silo run --nfs see each other's files; the first to end leaves the other's mount in place", async () => {
    // A path no job used before, so the first job creates it (and the second finds it).
    const at = `/mnt/silo-nfs-jobs-${Math.random().toString(36).slice(2)}`;
    const job = (script: string) => {
      const child = spawn(process.execPath, [join(process.cwd(), "bin/silo.js"), "run", "--nfs", `shared:${at}`, "--", "sh", "-c", script], {
        env: fx.server.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const r = { out: "", err: "", code: new Promise<number | null>((res) => child.once("exit", res)) };
      child.stdout.on("data", (d: Buffer) => (r.out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (r.err += d.toString()));
      return r;
    };
    try {
      for (const f of ["payload", "reader-up", "go", "reply"]) await rm(join(a, f), { force: true });
      // The jobs wait for each other's files with their own polls; the test waits on events.
      const writer = job(`echo payload-from-job-1 > ${at}/payload && while [ ! -e ${at}/reader-up ]; do sleep 0.05; done; echo "$SILO_MOUNTS"`);
      await eventually(() => stat(join(a, "payload")), 60_000);
      const reader = job(`cat ${at}/payload; touch ${at}/reader-up; while [ -d ${at} ] && [ ! -e ${at}/go ]; do sleep 0.05; done; echo reply > ${at}/reply`);
      expect(await within(60_000, "writer job", writer.code), writer.err).toBe(0);
      expect(JSON.parse(writer.out)).toMatchObject({ [at]: { kind: "nfs", name: "shared", id: nfs.id, readOnly: false } });
      // The writer created the mount path and has ended: the reader's mount must still be there.
      await run(`touch ${a}/go`);
      expect(await within(60_000, "reader job", reader.code), reader.err).toBe(0);
      expect(reader.out).toBe("payload-from-job-1\n");
      expect(await readFile(join(a, "reply"), "utf8")).toBe("reply\n");
    } finally {
      await rm(at, { recursive: true, force: true });
    }
  });

  it("a closed file is on the server: kill -9 of its mount daemon right after close loses nothing", async () => {
    const doomed = join(root, "doomed");
    await mount("shared", doomed, "--commit-interval-ms", "0");
    await run(`printf acknowledged > ${doomed}/ack.txt && mkdir ${doomed}/ackdir`);
    const record = await readMountRecord(doomed);
    process.kill(record!.pid, "SIGKILL");
    expect(await text(nfs, "ack.txt")).toBe("acknowledged");
    expect((await nfs.listdir("ackdir")).length).toBe(0); // the directory exists (listing it does not fail)
    expect(await readFile(join(a, "ack.txt"), "utf8")).toBe("acknowledged");
    // The dead mount is cleared by unmount (it detaches a mount whose daemon is gone).
    await unmount(doomed);
    expect(await mountPointState(doomed)).toBe("free");
  });

  it("kill -9 at a random point of a writing loop: every close that returned is on the server (ledger)", async () => {
    const victim = join(root, "victim");
    await mount("shared", victim, "--commit-interval-ms", "0");
    await run(`mkdir -p ${victim}/ledger`);
    // Prints i once file i's close returned: that line is the acknowledgement the ledger keeps.
    const script = `const fs = require("fs"); for (let i = 0; i < 100000; i++) { const fd = fs.openSync(${JSON.stringify(`${victim}/ledger/f`)} + i, "w"); fs.writeSync(fd, "content-" + i); fs.closeSync(fd); console.log(i); }`;
    const writer = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    const acked: number[] = [];
    const killAt = 5 + Math.floor(Math.random() * 40);
    const pid = (await readMountRecord(victim))!.pid;
    let daemonKilled = false;
    const killed = new Promise<void>((resolve) => {
      let buf = "";
      writer.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const l of lines) acked.push(Number(l));
        if (acked.length >= killAt && !daemonKilled) {
          daemonKilled = true;
          process.kill(pid, "SIGKILL");
          resolve();
        }
      });
    });
    await within(120_000, "writer reaches the kill point", killed);
    await within(30_000, "writer ends", new Promise((r) => writer.once("exit", r)));
    expect(acked.length).toBeGreaterThanOrEqual(killAt);
    for (const i of acked) expect(await text(nfs, `ledger/f${i}`)).toBe(`content-${i}`);
    await unmount(victim);
    expect(await mountPointState(victim)).toBe("free");
  });

  it("read-only mounts see changes but refuse writes; unmount leaves no mount behind", async () => {
    const ro = join(root, "ro");
    await mount("shared", ro, "--read-only");
    await run(`echo seen > ${a}/ro-check`);
    expect(await readFile(join(ro, "ro-check"), "utf8")).toBe("seen\n");
    await expect(writeFile(join(ro, "nope"), "x")).rejects.toMatchObject({ code: "EROFS" });
    await unmount(ro);
    expect(await mountPointState(ro)).toBe("free");
  });
});
