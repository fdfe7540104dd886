import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "./helpers/eventually.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { mountsFixture, within } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

/** fcntl(2) and flock(2) system call numbers, to see a process blocked in one (/proc/PID/syscall). */
const LOCK_SYSCALLS: Record<string, number[]> = { x64: [72, 73], arm64: [25, 32] };

/** A python process holding a descriptor of one file on the mount, taking locks when told (test/fixtures/lock-client.py). */
class Locker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;
  stderr = "";

  constructor(path: string) {
    this.proc = spawn(PYTHON, [join(import.meta.dirname, "fixtures/lock-client.py"), path]);
    createInterface({ input: this.proc.stdout }).on("line", (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
    this.proc.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => this.proc.once("exit", (code) => r(code)));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The next answer line. */
  async next(): Promise<string> {
    while (this.lines.length === 0) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`locker exited: ${this.stderr}`);
      await within(30_000, "locker answer", new Promise<void>((r) => this.waiters.push(r)));
    }
    return this.lines.shift()!;
  }

  /** Answers not read yet (a blocked lock has none). */
  get pending(): number {
    return this.lines.length;
  }

  send(cmd: string): void {
    this.proc.stdin.write(`${cmd}\n`);
  }

  async run(cmd: string): Promise<string> {
    this.send(cmd);
    return this.next();
  }

  /** Resolves once the process sits in fcntl(2)/flock(2) (waiting for a lock). */
  async blockedInLock(): Promise<void> {
    const numbers = LOCK_SYSCALLS[process.arch] ?? [];
    await eventually(() => {
      const nr = Number(readFileSync(`/proc/${this.pid}/syscall`, "utf8").split(" ")[0]);
      if (!numbers.includes(nr)) throw new Error(`process ${this.pid} is in syscall ${nr}, not a lock call`);
    }, 30_000, 20);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
  }
}

const lockers: Locker[] = [];
const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-locks-");

function locker(path: string): Promise<Locker> {
  const l = new Locker(path);
  lockers.push(l);
  return l.next().then((hello) => {
    expect(hello).toBe("ready");
    return l;
  });
}

/**
 * Ends every locker: before an unmount, as files still open would leave the daemon serving a
 * lazily unmounted tree.
 */
async function stopLockers(): Promise<void> {
  for (const l of lockers.splice(0)) {
    l.kill();
    await l.exited;
  }
}

afterEach(async () => {
  await stopLockers();
});

describe("file locks between processes on one mount", () => {
  it("fcntl record locks: byte ranges, read sharing, EAGAIN, F_GETLK with the holder's pid, a wait granted at release, a killed holder's and waiter's locks gone", async () => {
    await fx.silo.volumes.fromName("locks-fcntl", { createIfMissing: true });
    const dir = join(root, "fcntl");
    // The daemon's request counts show it held the locks (the kernel keeps them itself otherwise).
    const stats = join(root, "fcntl-stats");
    await mounts.mountWithEnv({ SILO_FUSE_STATS: stats }, "locks-fcntl", dir, "--commit-interval-ms", "0");
    const path = join(dir, "db");
    writeFileSync(path, "0123456789".repeat(10));
    const a = await locker(path);
    const b = await locker(path);

    expect(await a.run("fcntl w 0 10 nowait")).toBe("ok");
    expect(await b.run("fcntl w 5 1 nowait")).toBe("EAGAIN");
    expect(await b.run("fcntl w 10 10 nowait")).toBe("ok");
    expect(await b.run("getlk r 0 100")).toBe(`w ${a.pid} 0 10`);
    expect(await a.run("getlk w 15 1")).toBe(`w ${b.pid} 10 10`);
    // Read locks share; a write over part of them conflicts, and the lock splits on partial unlock.
    expect(await a.run("fcntl r 50 20 nowait")).toBe("ok");
    expect(await b.run("fcntl r 60 20 nowait")).toBe("ok");
    expect(await b.run("fcntl w 55 1 nowait")).toBe("EAGAIN");
    expect(await a.run("fcntl u 50 10 nowait")).toBe("ok");
    expect(await b.run("fcntl w 55 1 nowait")).toBe("ok");
    expect(await b.run("fcntl w 65 1 nowait")).toBe("EAGAIN");

    // F_SETLKW waits while a holds [0, 10), without holding up other requests, and gets the lock when a drops it.
    b.send("fcntl w 0 1 wait");
    await b.blockedInLock();
    expect(await a.run("getlk w 0 1")).toBe("unlocked"); // its own lock: no conflict
    expect(b.pending).toBe(0);
    expect(await a.run("fcntl u 0 10 nowait")).toBe("ok");
    expect(await b.next()).toBe("ok");
    expect(await a.run("getlk r 0 1")).toBe(`w ${b.pid} 0 1`);

    // Closing any descriptor of the file drops the process's locks (POSIX).
    expect(await b.run("close")).toBe("ok");
    expect(await a.run("fcntl w 0 100 nowait")).toBe("ok");

    // A process killed while waiting goes (the kernel interrupts its request) and is never granted;
    // one killed while holding loses its locks.
    const c = await locker(path);
    c.send("fcntl w 0 1 wait");
    await c.blockedInLock();
    c.kill();
    await within(30_000, "killed waiter exits", c.exited);
    const d = await locker(path);
    d.send("fcntl r 0 1 wait");
    await d.blockedInLock();
    a.kill();
    await a.exited;
    expect(await d.next()).toBe("ok");
    expect(await d.run("getlk w 0 100")).toBe("unlocked");
    await stopLockers();
    await mounts.unmount(dir);
    const served = readFileSync(stats, "utf8");
    for (const op of ["GETLK", "SETLK", "SETLKW", "INTERRUPT"]) expect(served).toMatch(new RegExp(`\\b${op} \\d+`));
  });

  it("flock: whole-file locks per open file, shared and exclusive, waits, and gone with the last descriptor", async () => {
    await fx.silo.volumes.fromName("locks-flock", { createIfMissing: true });
    const dir = join(root, "flock");
    await mounts.mount("locks-flock", dir, "--commit-interval-ms", "0");
    const path = join(dir, "lockfile");
    writeFileSync(path, "");
    const a = await locker(path);
    const b = await locker(path);
    expect(await a.run("flock ex nowait")).toBe("ok");
    expect(await b.run("flock sh nowait")).toBe("EAGAIN");
    // fcntl locks and flock locks are apart, as on Linux.
    expect(await b.run("fcntl w 0 0 nowait")).toBe("ok");
    b.send("flock sh wait");
    await b.blockedInLock();
    expect(await a.run("flock sh nowait")).toBe("ok"); // conversion
    expect(await b.next()).toBe("ok");
    expect(await a.run("flock ex nowait")).toBe("EAGAIN");
    // A second open file of the same process is another owner.
    expect(await b.run("reopen")).toBe("ok"); // b's first descriptor stays open (its flock too)
    expect(await b.run("flock ex nowait")).toBe("EAGAIN");
    // The holder's descriptor closed (process exit): its lock is gone.
    a.kill();
    await a.exited;
    const c = await locker(path);
    // The kernel sends the open file's release after the process is gone: wait for it.
    expect(await c.run("flock sh wait")).toBe("ok");
    expect(await c.run("flock ex nowait")).toBe("EAGAIN"); // b still holds its shared lock
    await stopLockers();
    await mounts.unmount(dir);
  });
});
