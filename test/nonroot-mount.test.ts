/**
 * Mounts by a user who is not root: no CAP_SYS_ADMIN, so silo mounts through fusermount3 and
 * receives the /dev/fuse fd over a unix socket (native/fuse-fd). The user owns the mount
 * points; as root the suite acts as `nobody` (test/helpers/unprivileged-user.ts). The mount is
 * the user's alone (no user_allow_other in /etc/fuse.conf here), so every file operation on it
 * runs as the user, in a child process. Covered: the transport itself (the probe file system:
 * INIT, 1 MiB requests), volumes (write/read/commit, kill -9 and fusermount3 -uz, journal
 * recovery, silo run), a bucket, and the error without fusermount3.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMounted } from "../fuse/common/mount-table.js";
import { userAllowOther } from "../fuse/kernel/fusermount.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { UnprivilegedUser } from "./helpers/unprivileged-user.js";
import { committedText, within } from "./helpers/volume-mounts.js";
import { emptyBucket, freshBucket, listObjects, s3Env, startS3 } from "./helpers/s3.js";
import { eventually } from "./helpers/eventually.js";
import type { S3Client } from "@aws-sdk/client-s3";

const PROBE = resolve(import.meta.dirname, "../dist/fuse/kernel/probe/main.js");
const MiB = 1024 * 1024;
const fx = siloServerFixture();
let user: UnprivilegedUser;
let serverEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  user = await UnprivilegedUser.create();
  serverEnv = { SILO_SERVER_URL: fx.server.url, SILO_TOKEN_ID: fx.server.profile.tokenId, SILO_TOKEN_SECRET: fx.server.profile.tokenSecret };
  await fx.silo.volumes.fromName("mine", { createIfMissing: true });
});
afterAll(async () => {
  await user?.cleanup();
});

const silo = (args: string[], env: NodeJS.ProcessEnv = {}) => within(90_000, `silo ${args.join(" ")}`, user.silo(args, { ...serverEnv, ...env }));
const sh = (script: string) => within(60_000, script, user.sh(script));

/** The mountinfo options of `dir` (fusermount3 writes user_id= of the user who mounted). */
async function mountOptions(dir: string): Promise<string> {
  const line = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").find((l) => l.split(" ")[4] === dir);
  if (!line) throw new Error(`${dir} is not mounted`);
  return line.split(" - ")[1] ?? "";
}

/** The pid in the one mount record the user's run dir holds for a daemon. */
async function daemonPid(): Promise<number> {
  const run = join(user.home, "run");
  const records = (await readdir(run)).filter((f) => f.endsWith(".json"));
  expect(records).toHaveLength(1);
  return (JSON.parse(await readFile(join(run, records[0]!), "utf8")) as { pid: number }).pid;
}

describe("silo's FUSE transport mounted through fusermount3", () => {
  it("negotiates INIT as under root and serves 1 MiB writes and reads", async () => {
    const dir = join(user.dir("probe"), "m");
    // The probe file system (test/fuse-protocol.test.ts), served by a process of the user.
    const proc = user.spawn(process.execPath, [user.path(PROBE), dir], { UV_THREADPOOL_SIZE: "12" });
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const next = async () => JSON.parse(((await within(30_000, "probe", lines.next())) as IteratorResult<string>).value ?? "null") as Record<string, unknown> | null;
    try {
      const ready = await next();
      expect(ready, stderr).toMatchObject({ ready: true, info: { major: 7, maxWrite: MiB } });
      expect(await mountOptions(dir)).toContain(`user_id=${user.uid}`);
      const io = await sh(`dd if=/dev/zero of=${dir}/big bs=4M count=2 2>/dev/null && dd if=${dir}/big of=/dev/null bs=1M iflag=direct 2>/dev/null && stat -c %s ${dir}/big`);
      expect(io.stdout, io.stderr).toBe(`${8 * MiB}\n`);
      proc.stdin.write(`${JSON.stringify({ cmd: "stats" })}\n`);
      expect(await next()).toMatchObject({ maxWrite: MiB, maxRead: MiB });
      proc.stdin.write(`${JSON.stringify({ cmd: "unmount" })}\n`);
      expect(await next()).toEqual({ ended: true });
      expect(await isMounted(dir)).toBe(false);
    } finally {
      proc.kill("SIGKILL");
    }
  });
});

describe("a volume mounted by a user who is not root", () => {
  it("mounts through fusermount3, writes, reads, commits and unmounts", async () => {
    const dir = user.dir("vol");
    const m = await silo(["volume", "mount", "mine", dir]);
    expect(m.code, m.stderr).toBe(0);
    // Made by fusermount3 for this user (a root mount(2) would say user_id=0).
    expect(await mountOptions(dir)).toContain(`user_id=${user.uid},group_id=${user.gid}`);
    if (process.getuid?.() === 0 && !(await userAllowOther())) {
      // Without user_allow_other only the user reaches it: the daemon dropped allow_other.
      await expect(readdir(dir)).rejects.toMatchObject({ code: "EACCES" });
    }

    const w = await sh(`printf 'from %s\\n' "$(id -u)" > ${dir}/hello.txt && mkdir ${dir}/d && cat ${dir}/hello.txt && stat -c '%u' ${dir}/hello.txt`);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toBe(`from ${user.uid}\n${user.uid}\n`);

    const c = await silo(["volume", "commit", dir]);
    expect(c.code, c.stderr).toBe(0);
    expect(await committedText(fx.silo, "mine", "hello.txt")).toBe(`from ${user.uid}\n`);

    const u = await silo(["volume", "unmount", dir]);
    expect(u.code, u.stderr).toBe(0);
    expect(await isMounted(dir)).toBe(false);
  });

  it("after kill -9 of its daemon, fusermount3 -uz frees the mount point and the next mount recovers the journal", async () => {
    const dir = user.dir("killed");
    expect((await silo(["volume", "mount", "mine", dir, "--commit-interval-ms", "0"])).code).toBe(0);
    // Closed, so acknowledged: it is in the local journal even though never committed.
    const w = await sh(`echo unsaved > ${dir}/unsaved.txt`);
    expect(w.code, w.stderr).toBe(0);
    process.kill(await daemonPid(), "SIGKILL");

    // The dead mount stays in the table and answers ENOTCONN.
    await eventually(async () => expect((await sh(`stat ${dir}/.`)).stderr).toMatch(/not connected/), 30_000);
    expect(await isMounted(dir)).toBe(true);
    const z = await within(30_000, "fusermount3 -uz", user.run("fusermount3", ["-uz", dir]));
    expect(z.code, z.stderr).toBe(0);
    expect(await isMounted(dir)).toBe(false);

    expect((await silo(["volume", "mount", "mine", dir])).code).toBe(0);
    expect((await sh(`cat ${dir}/unsaved.txt`)).stdout).toBe("unsaved\n");
    expect((await silo(["volume", "unmount", dir])).code).toBe(0);
    expect(await committedText(fx.silo, "mine", "unsaved.txt")).toBe("unsaved\n");
  });

  it("silo run mounts, runs the command and commits", async () => {
    const dir = join(user.dir("job"), "vol");
    const r = await silo(["run", "-v", `mine:${dir}`, "--", "sh", "-c", `cat ${dir}/hello.txt && echo job > ${dir}/job.txt`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`from ${user.uid}\n`);
    expect(await committedText(fx.silo, "mine", "job.txt")).toBe("job\n");
    expect(await isMounted(dir)).toBe(false);
  });

  it("without fusermount3 the mount fails with one line saying what to install", async () => {
    const dir = user.dir("nofm");
    // A PATH without fusermount3 (node is called by its full path).
    const r = await silo(["volume", "mount", "mine", dir], { PATH: join(user.home, "empty-bin") });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/fusermount3 is not installed: install Debian's fuse3/);
    expect(await isMounted(dir)).toBe(false);
  });
});

describe("a bucket mounted by a user who is not root", () => {
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    s3 = await startS3();
    bucket = await freshBucket(s3, "nonroot");
  });
  afterAll(async () => {
    if (bucket) await emptyBucket(s3, bucket);
    s3?.destroy();
  });

  it("mounts through fusermount3, writes an object, unmounts; after kill -9, fusermount3 -uz recovers", async () => {
    const dir = user.dir("bucket");
    const m = await silo(["bucket", "mount", bucket, dir], s3Env());
    expect(m.code, m.stderr).toBe(0);
    expect(await mountOptions(dir)).toContain(`user_id=${user.uid}`);
    const w = await sh(`echo object > ${dir}/o.txt && cat ${dir}/o.txt`);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toBe("object\n");
    expect((await silo(["bucket", "unmount", dir], s3Env())).code).toBe(0);
    expect(await isMounted(dir)).toBe(false);
    expect((await listObjects(s3, bucket)).map((o) => o.Key)).toEqual(["o.txt"]);

    expect((await silo(["bucket", "mount", bucket, dir], s3Env())).code).toBe(0);
    process.kill(await daemonPid(), "SIGKILL");
    await eventually(async () => expect((await sh(`stat ${dir}/.`)).stderr).toMatch(/not connected/), 30_000);
    const z = await within(30_000, "fusermount3 -uz", user.run("fusermount3", ["-uz", dir]));
    expect(z.code, z.stderr).toBe(0);
    expect(await isMounted(dir)).toBe(false);
  });
});
