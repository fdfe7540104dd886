import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { open, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { afterAll, afterEach } from "vitest";
import type { SiloClient, Volume } from "../../client/index.js";
import { controlRequest } from "../../client/mount-control.js";
import { lazyUnmount, mountPointState } from "../../fuse/common/mount-table.js";
import { readMountRecord } from "../../fuse/common/mount-records.js";
import { type CliResult, SILO_BIN } from "./silo-server.js";

/** A server the real CLI can talk to (a spawned SiloServer or an InProcessServer). */
export interface CliTarget {
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv }): Promise<CliResult>;
}

/** The committed bytes of a file, read through the API (not a mount); null if it does not exist. */
export async function committedBytes(silo: SiloClient, volume: string, path: string): Promise<Buffer | null> {
  const vol = await silo.volumes.fromName(volume);
  const chunks: Buffer[] = [];
  try {
    for await (const c of vol.readFile(path)) chunks.push(c);
  } catch (err) {
    if ((err as Error).name === "NotFoundError") return null;
    throw err;
  }
  return Buffer.concat(chunks);
}

/**
 * A volume `name` (created if missing) whose file `path` is `size` random bytes, committed, and
 * the same bytes in the local file `ref`: the reference a test's writes on a mount go to as well.
 */
export async function committedWithReference(silo: SiloClient, name: string, path: string, size: number, ref: string): Promise<Volume> {
  const vol = await silo.volumes.fromName(name, { createIfMissing: true });
  const original = randomBytes(size);
  await vol.batchUpload().putFile(original, path).commit();
  await writeFile(ref, original);
  return vol;
}

/** The committed content of a file as text; null if it does not exist. */
export async function committedText(silo: SiloClient, volume: string, path: string): Promise<string | null> {
  return (await committedBytes(silo, volume, path))?.toString() ?? null;
}

/** fsyncdir of a mount's root: everything done on the mount so far is in its journal when it returns. */
export async function barrier(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close().catch(() => {});
  }
}

/** What a mount's block cache counted (its status over the control socket): `bytesFetched` is what came from the server. */
export interface CacheStats {
  hits: number;
  misses: number;
  bytesFetched: number;
}

async function mountSocket(dir: string): Promise<string> {
  const record = await readMountRecord(dir);
  if (!record?.socket) throw new Error(`no control socket in the mount record of ${dir}`);
  return record.socket;
}

export async function cacheStats(dir: string): Promise<CacheStats> {
  return ((await controlRequest(await mountSocket(dir), "status")) as { cache: CacheStats }).cache;
}

/** Commits a mount's changes now (its control socket), as `silo volume commit` does. */
export async function commitMount(dir: string): Promise<void> {
  await controlRequest(await mountSocket(dir), "commit", 120_000);
}

/** Rejects if `p` takes longer than `ms`: every mount test stage has a bound (a hung FUSE op waits ~forever). */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Mounts with the real CLI (`silo volume mount`, a background daemon); remembers the dir for teardown. */
export class Mounts {
  private readonly dirs = new Set<string>();
  /** The server, or how to find it (a fixture's server exists only once its beforeAll ran). */
  constructor(private readonly target: CliTarget | (() => CliTarget)) {}

  private get server(): CliTarget {
    return typeof this.target === "function" ? this.target() : this.target;
  }

  async mount(name: string, dir: string, ...flags: string[]): Promise<void> {
    await this.mountWithEnv({}, name, dir, ...flags);
  }

  /** mount() with variables added to the daemon's environment (SILO_FUSE_STATS…). */
  async mountWithEnv(env: NodeJS.ProcessEnv, name: string, dir: string, ...flags: string[]): Promise<void> {
    this.dirs.add(dir);
    const r = await within(60_000, `mount ${name}`, this.server.cli(["volume", "mount", name, dir, ...flags], { env }));
    if (r.code !== 0) throw new Error(`silo volume mount failed (${r.code}): ${r.stderr}`);
  }

  async unmount(dir: string): Promise<void> {
    const r = await within(120_000, `unmount ${dir}`, this.server.cli(["volume", "unmount", dir]));
    this.dirs.delete(dir);
    if (r.code !== 0) throw new Error(`silo volume unmount failed (${r.code}): ${r.stderr}`);
  }

  /** The daemon's pid (from its mount record, as `silo volume unmount` finds it). */
  async daemonPid(dir: string): Promise<number> {
    const record = await readMountRecord(dir);
    if (!record) throw new Error(`no mount record for ${dir}`);
    return record.pid;
  }

  /** Teardown: unmount everything still mounted, by force if need be. */
  async cleanup(): Promise<void> {
    for (const dir of this.dirs) {
      await within(60_000, `unmount ${dir}`, this.server.cli(["volume", "unmount", dir, "--timeout-ms", "30000"])).catch(() => {});
      if ((await mountPointState(dir).catch(() => "stale")) !== "free") await lazyUnmount(dir).catch(() => {});
    }
    this.dirs.clear();
  }
}

/** A long-running job under `silo run` (test/fixtures/mount-job.mjs), driven line by line. */
export class Job {
  private readonly lines: Interface;
  private readonly queue: string[] = [];
  private waiters: Array<(line: string) => void> = [];
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: proc.stdout });
    this.lines.on("line", (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.queue.push(l);
    });
    proc.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => proc.once("exit", (code) => r(code)));
  }

  static async start(server: { env: NodeJS.ProcessEnv }, runArgs: string[], volume: string): Promise<Job> {
    const fixture = join(import.meta.dirname, "../fixtures/mount-job.mjs");
    const proc = spawn(process.execPath, [SILO_BIN, "run", ...runArgs, "--", process.execPath, fixture, volume], { env: server.env });
    const job = new Job(proc);
    const hello = (await within(60_000, "job start", job.next().catch((e: Error) => Promise.reject(new Error(`${e.message}\n${job.stderr}`))))) as { mounts: Record<string, { socket: string }> };
    job.mounts = hello.mounts;
    return job;
  }

  mounts: Record<string, { socket: string }> = {};

  private next(): Promise<Record<string, unknown>> {
    const line = this.queue.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as Record<string, unknown>);
    return new Promise((resolve, reject) => {
      this.waiters.push((l) => resolve(JSON.parse(l) as Record<string, unknown>));
      this.proc.once("exit", () => reject(new Error(`job exited: ${this.stderr}`)));
    });
  }

  /** Sends one command; returns its answer ({ok, value} or {ok:false, error, message}). */
  send(line: string): Promise<{ ok: boolean; value?: unknown; error?: string; message?: string }> {
    this.proc.stdin.write(`${line}\n`);
    return within(60_000, `job command '${line}'`, this.next()) as Promise<{ ok: boolean; value?: unknown; error?: string; message?: string }>;
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.stdin.write("exit 0\n");
    return within(120_000, "job exit", this.exited);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

/**
 * The mounts of one test file and a temporary directory for their mount points (`root`): every
 * mount is unmounted after each test, also after a failure (`afterEachTest: false` keeps them
 * until the file ends, for files whose tests share a mount), and the directory removed at the end.
 * Register it after the server's fixture: hooks run in order.
 */
export function mountsFixture(fx: { server: CliTarget }, prefix: string, opts: { afterEachTest?: boolean } = {}): { mounts: Mounts; root: string } {
  const mounts = new Mounts(() => fx.server);
  const root = mkdtempSync(join(tmpdir(), prefix));
  if (opts.afterEachTest !== false) afterEach(() => mounts.cleanup());
  afterAll(async () => {
    await mounts.cleanup();
    rmSync(root, { recursive: true, force: true });
  });
  return { mounts, root };
}
