/**
 * Protocol-level tests of silo's FUSE transport (fuse/kernel): a real kernel mount of the probe
 * file system, served by a child process (dist/fuse/kernel/probe/main.js), probed from here and
 * from further child processes.
 */
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import { waitFor } from "./helpers/eventually.js";
import { InitFlag } from "../fuse/kernel/abi.js";
import { isMounted, lazyUnmount, mountPointState } from "../fuse/common/mount-table.js";
import { within } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

const PROBE = resolve(import.meta.dirname, "../dist/fuse/kernel/probe/main.js");
const MiB = 1024 * 1024;

type Reply = Record<string, unknown>;

/** The serving process: one JSON command per line in, one JSON answer per line out. */
class Probe {
  private readonly waiters: Array<(r: Reply) => void> = [];
  private readonly queue: Reply[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  private constructor(
    readonly proc: ChildProcessWithoutNullStreams,
    readonly dir: string,
  ) {
    createInterface({ input: proc.stdout }).on("line", (l) => {
      const r = JSON.parse(l) as Reply;
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    proc.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => proc.once("exit", (code) => r(code)));
  }

  static async start(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ probe: Probe; ready: Reply }> {
    const proc = spawn(process.execPath, [PROBE, dir], { env: { ...process.env, UV_THREADPOOL_SIZE: "12", ...env }, stdio: "pipe" });
    const probe = new Probe(proc, dir);
    const ready = await within(20_000, "probe mount", Promise.race([probe.next(), probe.exited.then((c) => Promise.reject(new Error(`probe exited ${c}: ${probe.stderr}`)))]));
    return { probe, ready };
  }

  next(): Promise<Reply> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((res) => this.waiters.push(res));
  }

  send(cmd: Reply): Promise<Reply> {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    return within(20_000, `probe ${String(cmd.cmd)}`, this.next());
  }

  stats(): Promise<Reply> {
    return this.send({ cmd: "stats" });
  }
}

/** `cat FILE` in its own process (it blocks in the kernel; the test process must not). */
function cat(file: string): { proc: ChildProcess; out: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const proc = spawn("cat", [file], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const out = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res) =>
    proc.once("close", (code, signal) => res({ code, signal, stdout, stderr })),
  );
  return { proc, out };
}

/** Opens argv[1], says "open", and on a line from stdin writes to it: "wrote N" or "error ERRNO". */
const HOLDER = [
  "import errno, os, sys",
  "fd = os.open(sys.argv[1], os.O_RDWR)",
  "print('open', flush=True)",
  "sys.stdin.readline()",
  "try:",
  "    print('wrote', os.pwrite(fd, b'late bytes', 0), flush=True)",
  "except OSError as e:",
  "    print('error', errno.errorcode[e.errno], flush=True)",
].join("\n");

let root: string;
const probes: Probe[] = [];
const children: ChildProcess[] = [];

/**
 * The transports every test runs on: /dev/fuse reads and writes, and FUSE over io_uring where
 * the kernel has it (the fuse module's enable_uring, an operator's switch: docs/mounts.md; switched on
 * here for these tests and put back as found).
 */
const ENABLE_URING = "/sys/module/fuse/parameters/enable_uring";
const TRANSPORTS = existsSync(ENABLE_URING) && process.getuid?.() === 0 ? ["dev", "ring"] : ["dev"];

let transport = "dev";

async function mountProbe(name: string, env: NodeJS.ProcessEnv = {}): Promise<{ probe: Probe; ready: Reply; dir: string }> {
  const dir = join(root, `${name}-${transport}`);
  const { probe, ready } = await Probe.start(dir, { SILO_FUSE_RING: transport === "ring" ? "on" : "off", ...env });
  probes.push(probe);
  // The ring serves only with the poll reader; a test that asks for threads gets /dev/fuse.
  expect(ready.ring).toBe(transport === "ring" && env.SILO_FUSE_READER !== "threads");
  return { probe, ready, dir };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "silo-fuse-protocol-"));
  chmodSync(root, 0o755); // other users reach the mounts below it

});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const p of probes.splice(0)) {
    p.proc.stdin.end();
    p.proc.kill("SIGKILL");
    await p.exited;
    if ((await mountPointState(p.dir).catch(() => "stale")) !== "free") await lazyUnmount(p.dir).catch(() => {});
  }
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.each(TRANSPORTS)("silo's FUSE transport (%s)", (which) => {
  // A machine-wide switch: put back as found (only sessions that ask for the ring notice it).
  let wasOff = false;
  beforeAll(() => {
    transport = which;
    wasOff = which === "ring" && readFileSync(ENABLE_URING, "utf8").trim() !== "Y";
    if (wasOff) writeFileSync(ENABLE_URING, "Y");
  });
  afterAll(() => {
    if (wasOff) writeFileSync(ENABLE_URING, "N");
  });

  it("INIT: takes the kernel's minor version and the flags asked for (max_pages, readdirplus, parallel dirops)", async () => {
    const { ready, dir } = await mountProbe("init");
    const info = ready.info as { major: number; minor: number; kernelMinor: number; kernelFlags: number; flags: number; maxWrite: number };
    expect(info.major).toBe(7);
    expect(info.kernelMinor).toBeGreaterThanOrEqual(31);
    expect(info.minor).toBe(Math.min(info.kernelMinor, 45));
    const has = (flags: number, f: number) => (BigInt(flags) & BigInt(f)) !== 0n;
    for (const f of [InitFlag.MAX_PAGES, InitFlag.DO_READDIRPLUS, InitFlag.PARALLEL_DIROPS, InitFlag.ASYNC_READ, InitFlag.BIG_WRITES]) {
      expect(has(info.kernelFlags, f)).toBe(true);
      expect(has(info.flags, f)).toBe(true);
    }
    // Never more than the kernel offered.
    expect(BigInt(info.flags) & ~BigInt(info.kernelFlags)).toBe(0n);
    expect(info.maxWrite).toBe(MiB);
    expect(await isMounted(dir)).toBe(true);
    const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
    expect(mountinfo.split("\n").find((l) => l.split(" ")[4] === dir)).toMatch(/ - fuse\.silo-probe silo-probe /);
  });

  it("an op that returns its errno (the probe's lookup and getxattr) is answered with it, once each", async () => {
    const { probe, dir } = await mountProbe("returned-errno");
    const before = (await probe.stats()).requests as Record<string, number>;
    // A burst of lookups of missing names in flight at once, each answered ENOENT.
    const missing = await Promise.all(Array.from({ length: 32 }, (_, i) => stat(join(dir, `missing-${i}`)).catch((e: NodeJS.ErrnoException) => e.code)));
    expect(missing).toEqual(Array(32).fill("ENOENT"));
    await writeFile(join(dir, "plain"), "x");
    const py = spawn(PYTHON, ["-c", `import os\ntry:\n os.getxattr(${JSON.stringify(join(dir, "plain"))}, "user.none")\nexcept OSError as e:\n print(e.errno)`], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(py);
    let out = "";
    py.stdout.on("data", (d: Buffer) => (out += d.toString()));
    expect(await within(20_000, "python getxattr", new Promise((res) => py.once("close", res)))).toBe(0);
    expect(Number(out.trim())).toBe(61); // ENODATA
    const after = (await probe.stats()).requests as Record<string, number>;
    expect((after.LOOKUP ?? 0) - (before.LOOKUP ?? 0)).toBeGreaterThanOrEqual(32);
    expect((after.GETXATTR ?? 0) - (before.GETXATTR ?? 0)).toBeGreaterThanOrEqual(1);
    expect((await probe.stats()).inFlight).toBe(0);
  });

  it("reads and writes in 1 MiB requests, and the caller's uid/gid own what it creates", async () => {
    const { probe, dir } = await mountProbe("big");
    const data = Buffer.alloc(16 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    // One write(2) of 16 MiB (writeFile would cut it into 512 KiB calls): the kernel sends 1 MiB requests.
    const w = await open(join(dir, "big"), "w");
    expect((await w.write(data, 0, data.length, 0)).bytesWritten).toBe(data.length);
    await w.close();
    expect((await readFile(join(dir, "big"))).equals(data)).toBe(true);
    // Another process reads it in 1 MiB pieces, bypassing the page cache: each is one request.
    const dd = spawn("dd", [`if=${join(dir, "big")}`, "of=/dev/null", "bs=1M", "iflag=direct"], { stdio: "ignore" });
    children.push(dd);
    expect(await within(20_000, "dd", new Promise((res) => dd.once("close", res)))).toBe(0);
    const s = await probe.stats();
    expect(s.maxWrite).toBe(MiB);
    expect(s.maxRead).toBe(MiB);
    // Each WRITE's data was read from a buffer that is read into again once the op settled:
    // the 16 writes of 1 MiB took no fresh 1 MiB buffer each (one per reader, a few spares).
    expect(s.readBuffers).toBeLessThanOrEqual(8);
    // Every request carries its caller: a file another user creates is theirs.
    const touch = spawn("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "touch", join(dir, "by-nobody")], { stdio: "ignore" });
    children.push(touch);
    expect(await within(10_000, "touch as nobody", new Promise((res) => touch.once("close", res)))).toBe(0);
    const own = await stat(join(dir, "by-nobody"));
    expect([own.uid, own.gid]).toEqual([65534, 65534]);
  });

  // "poll": requests read on the main thread when /dev/fuse is readable (the native addon);
  // "threads": fs.reads outstanding in libuv's pool (the fallback without the addon).
  it.each(["poll", "threads"])("serves many requests while one is held: a slow read never stalls the others (%s reader)", async (reader) => {
    const { probe, dir, ready } = await mountProbe(`slow-${reader}`, { SILO_FUSE_READER: reader });
    expect(ready.reader).toBe(reader);
    const slow = cat(join(dir, "slow"));
    children.push(slow.proc);
    await waitFor("the slow read reaches the file system", async () => (await probe.stats()).slowPending === 1);
    // 300 requests of every kind from this process while the slow one is held.
    await within(
      30_000,
      "requests beside the slow one",
      Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          await writeFile(join(dir, `f${i}`), `file ${i}`);
          expect(await readFile(join(dir, `f${i}`), "utf8")).toBe(`file ${i}`);
          expect((await stat(join(dir, `f${i}`))).size).toBe(`file ${i}`.length);
        }),
      ),
    );
    expect((await readdir(dir)).length).toBe(102); // the 100 files, slow and slow-open
    const s = await probe.stats();
    expect(s.slowPending).toBe(1);
    expect(s.inFlight).toBe(1);
    // On the ring, the requests came through it (the kernel uses /dev/fuse only before it is registered).
    if (ready.ring) expect(s.ringRequests as number).toBeGreaterThan(300);
    else expect(s.ringRequests).toBe(0);
    await probe.send({ cmd: "release" });
    const out = await within(20_000, "slow cat", slow.out);
    expect([out.code, out.stdout]).toEqual([0, "slow bytes\n"]);
  });

  it("more requests held than the ring has entries: the rest wait in the kernel and are served as entries free up, or fail at kill -9", async () => {
    // The ring has 8 entries per possible CPU (session.ts RING_DEPTH): hold more reads than that.
    const cpus = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim().split("-").map(Number);
    const entries = 8 * ((cpus[1] ?? cpus[0]!) + 1);
    const count = entries + 8;
    for (const ending of ["release", "kill"]) {
      const { probe, dir } = await mountProbe(`held-${ending}`);
      const cats = Array.from({ length: count }, () => cat(join(dir, "slow")));
      for (const c of cats) children.push(c.proc);
      // Requests go to the queue of the caller's CPU: at least one queue's entries fill up.
      await waitFor("a queue's entries (or all reads) are held", async () => ((await probe.stats()).slowPending as number) >= 8);
      if (ending === "release") {
        // Each release answers the held reads; the ones queued behind them arrive as entries free up.
        const done = Promise.all(cats.map((c) => c.out));
        let settled = false;
        void done.then(() => (settled = true));
        await waitFor("every read answered", async () => {
          await probe.send({ cmd: "release" });
          return settled;
        });
        for (const out of await done) expect([out.code, out.stdout]).toEqual([0, "slow bytes\n"]);
        expect((await probe.stats()).inFlight).toBe(0);
      } else {
        probe.proc.kill("SIGKILL");
        for (const out of await within(15_000, "every waiting cat fails", Promise.all(cats.map((c) => c.out)))) expect(out.code).not.toBe(0);
        expect(await mountPointState(dir)).toBe("stale");
        await lazyUnmount(dir);
        expect(await mountPointState(dir)).toBe("free");
      }
    }
  });

  it("an interrupted request (the caller killed) is aborted in the file system and answered at once", async () => {
    const { probe, dir } = await mountProbe("intr");
    const slow = cat(join(dir, "slow"));
    children.push(slow.proc);
    await waitFor("the slow read reaches the file system", async () => (await probe.stats()).slowPending === 1);
    slow.proc.kill("SIGTERM");
    // Without INTERRUPT handling the killed cat would hang in the kernel until the read is released.
    const out = await within(15_000, "the interrupted cat exits", slow.out);
    expect(out.signal).toBe("SIGTERM");
    const s = await probe.stats();
    expect(s.interrupted).toBe(1);
    expect(s.slowPending).toBe(0);
    expect((s.requests as Record<string, number>).INTERRUPT).toBeGreaterThanOrEqual(1);
    // The mount goes on serving.
    await writeFile(join(dir, "after"), "still here");
    expect(await readFile(join(dir, "after"), "utf8")).toBe("still here");
  });

  it("an open answered after the session gave up on it (ETIMEDOUT) is handed back to the file system: no handle leaks", async () => {
    const { probe, dir } = await mountProbe("late-open", { PROBE_OP_TIMEOUT_MS: "500" });
    const late = cat(join(dir, "slow-open"));
    children.push(late.proc);
    await waitFor("the open reaches the file system", async () => (await probe.stats()).slowPending === 1);
    const out = await within(15_000, "the timed-out cat exits", late.out);
    expect(out.stderr).toMatch(/timed out/i);
    await probe.send({ cmd: "release" });
    await waitFor("the late open is abandoned", async () => (await probe.stats()).abandoned === 1);
  });

  it("a request racing an unmount is still answered; the session then ends and leaves no mount", async () => {
    const { probe, dir } = await mountProbe("race");
    const slow = cat(join(dir, "slow"));
    children.push(slow.proc);
    await waitFor("the slow read reaches the file system", async () => (await probe.stats()).slowPending === 1);
    // The file is open: umount(8) refuses (busy), so the mount is detached lazily.
    probe.proc.stdin.write(`${JSON.stringify({ cmd: "unmount" })}\n`);
    await waitFor("the mount point is detached", async () => !(await isMounted(dir)));
    await probe.send({ cmd: "release" });
    const out = await within(20_000, "slow cat", slow.out);
    expect([out.code, out.stdout]).toEqual([0, "slow bytes\n"]);
    // Closing the last file ends the connection: the daemon reports the end and exits.
    expect(await within(20_000, "probe exits", probe.exited)).toBe(0);
    expect(await mountPointState(dir)).toBe("free");
  });

  it("an unmount that outlives its wait with a file still open aborts the connection: the holder gets ENOTCONN, nothing hangs", async () => {
    const { probe, dir } = await mountProbe("abort");
    await writeFile(join(dir, "held"), "held bytes");
    // A process holds the file open across the unmount, then writes to it once told to.
    const holder = spawn(PYTHON, ["-c", HOLDER, join(dir, "held")], { stdio: ["pipe", "pipe", "pipe"] });
    children.push(holder);
    const lines = createInterface({ input: holder.stdout! });
    const said: string[] = [];
    const heard = (line: string) => waitFor(`holder says ${line}`, async () => said.some((l) => l.startsWith(line)));
    lines.on("line", (l) => said.push(l));
    await heard("open");
    probe.proc.stdin.write(`${JSON.stringify({ cmd: "unmount", waitMs: 200 })}\n`);
    // Root's mount is aborted once the wait is over: the serving process ends without the holder closing.
    expect(await within(20_000, "probe exits", probe.exited)).toBe(0);
    expect(await mountPointState(dir)).toBe("free");
    holder.stdin!.write("write\n");
    await heard("error");
    expect(said.find((l) => l.startsWith("error"))).toMatch(/ENOTCONN|ECONNABORTED/);
  });

  it("kill -9 of the serving process fails a waiting request (no hang) and leaves a stale mount that is cleared", async () => {
    const { probe, dir } = await mountProbe("kill");
    const slow = cat(join(dir, "slow"));
    children.push(slow.proc);
    await waitFor("the slow read reaches the file system", async () => (await probe.stats()).slowPending === 1);
    probe.proc.kill("SIGKILL");
    const out = await within(15_000, "the waiting cat fails", slow.out);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/Transport endpoint is not connected|Software caused connection abort|Input\/output error/);
    expect(await mountPointState(dir)).toBe("stale");
    await lazyUnmount(dir);
    expect(await mountPointState(dir)).toBe("free");
  });

  it("notifications: a change behind the kernel's cache shows only after inval_inode, then at once", async () => {
    const { probe, dir } = await mountProbe("inval");
    const file = join(dir, "doc");
    await probe.send({ cmd: "set", name: "doc", data: Buffer.from("version one").toString("base64"), notify: false });
    expect(await readFile(file, "utf8")).toBe("version one");
    // Changed without telling the kernel: it still serves its cached size and pages (TTL 1 h).
    await probe.send({ cmd: "set", name: "doc", data: Buffer.from("version two").toString("base64"), notify: false });
    expect(await readFile(file, "utf8")).toBe("version one");
    // Changed with inval_inode + inval_entry: the next read sees it.
    await probe.send({ cmd: "set", name: "doc", data: Buffer.from("version three, longest").toString("base64"), notify: true });
    expect(await readFile(file, "utf8")).toBe("version three, longest");
    const fh = await open(file);
    expect((await fh.stat()).size).toBe("version three, longest".length);
    await fh.close();
  });
});
