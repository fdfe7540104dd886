import { createHash, randomBytes } from "node:crypto";
import { ftruncateSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { type FileHandle, link, mkdir, open, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { fsyncPath } from "../../lib/fsync-path.js";
import type { TimeNs } from "../../protocol/volume.js";
import { AsyncLock } from "./async-lock.js";

/**
 * The mount's local journal: what it accepted and the server has not acknowledged yet, on the
 * local disk, so nothing is lost when a commit fails or the daemon dies.
 *
 * Layout: `<root>/<volume key>/<mount id>/` holds `owner.json` (the daemon's pid), `journal.log`
 * (one JSON record per line), `upper/` (the changed files' bytes) and `reserve` (space kept for
 * records that free space, see JOURNAL_RESERVE_BYTES). A record states the whole
 * current state of one path (or that it is gone); replaying the log in order onto the latest
 * committed tree gives the mount's tree. After each acknowledged commit the log is rewritten to
 * the paths still pending (a checkpoint). A directory whose owner is dead is an orphan: the next
 * mount of the volume on this machine, or `silo volume recover`, adopts and commits it.
 */

/**
 * Owner, ns times and hard-link id, as ManifestEntry has them (absent in records written before
 * POSIX metadata: root's, mtimeMs for every time).
 */
export interface RecordStat {
  mode: number;
  mtimeMs: number;
  uid?: number;
  gid?: number;
  atimeNs?: TimeNs;
  mtimeNs?: TimeNs;
  ctimeNs?: TimeNs;
  /** Records of one journal with the same linkId are names of one node. */
  linkId?: string;
  /** Extended attributes, as ManifestEntry.xattrs (absent when none). */
  xattrs?: Record<string, string>;
}

export type JournalRecord =
  | { op: "gone"; path: string }
  | ({ op: "dir"; path: string } & RecordStat)
  | ({ op: "symlink"; path: string; target: string } & RecordStat)
  | ({ op: "special"; path: string; type: "fifo" | "socket" | "char" | "block"; rdev: number } & RecordStat)
  | ({
      op: "file";
      path: string;
      size: number;
      /** Upper file in the mount dir's `upper/` (shared by hard links); null: no local bytes. */
      upper: string | null;
      /** Block hashes that are known, as [index, hash] or [first index, hash, run length] (the others are local-unhashed or holes). */
      known: Array<[number, string, number?]>;
      /** Blocks whose bytes are in the upper file. */
      local: number[];
      /**
       * Partial blocks (absent in records written before them): [index, base hash, bytes of the
       * base that count, written ranges as [start, end, start, end, …] within the block, their
       * bytes in the upper file]. The block is the base with those ranges written over it.
       */
      partial?: Array<[number, string, number, number[]]>;
      /**
       * A small file's changed bytes, base64 (absent in records written before inline files):
       * block 0, all `size` bytes of it; no upper file holds them.
       */
      inline?: string;
      /**
       * A version naming every committed block the record refers to (known blocks, bases), if it
       * refers to any (absent in records written before it): a recovering mount pins it while
       * the server still keeps it.
       */
      from?: number;
    } & RecordStat);

/**
 * Bytes a journal keeps in its `reserve` file. On a disk full to the last byte a deletion could
 * not free its local copy, as that waits for the journal to record it (an older record names the
 * copy): an append that would free space (`flush(true)`) and fails with ENOSPC/EDQUOT gives the
 * reserve up and tries once more. Only those: an append of ordinary writes' records would spend
 * the reserve on changes that free nothing, and the next deletion would find it gone. Rebuilt
 * after a checkpoint (the next commit) once there is room again. 1 MiB holds thousands of records.
 */
export const JOURNAL_RESERVE_BYTES = 1024 * 1024;

/**
 * A log line that is no path's state: the records before byte `before` of this log are held by an
 * acknowledged commit, so a replay skips them (see Journal.acknowledge).
 */
interface AckedLine {
  op: "acked";
  before: number;
}

/** Where the log stands: its generation (a checkpoint starts a new one) and length. */
export interface LogPosition {
  generation: number;
  bytes: number;
}

const isNoSpace = (err: unknown) => ["ENOSPC", "EDQUOT"].includes((err as NodeJS.ErrnoException).code ?? "");

/** Who may serve a volume: the server and the volume id (ids are unique per server). */
export interface JournalOwnerInfo {
  server: string;
  volumeId: string;
  volume: string | null;
  environment?: string;
  mountPoint?: string;
}

interface OwnerFile extends JournalOwnerInfo {
  pid: number;
  /** The process's start time (from /proc), so a reused pid is not mistaken for the owner. */
  startTime: string;
  createdAt: number;
}

/** Where journals live: `$SILO_JOURNAL_DIR`, else `$SILO_HOME/journals` (default `~/.silo/journals`). */
export function journalRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SILO_JOURNAL_DIR) return env.SILO_JOURNAL_DIR;
  return join(env.SILO_HOME || join(homedir(), ".silo"), "journals");
}

/** The directory holding every journal of one volume on one server. */
export function volumeJournalDir(root: string, server: string, volumeId: string): string {
  const key = createHash("sha256").update(`${server}\0${volumeId}`).digest("hex").slice(0, 20);
  return join(root, key);
}

function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? "" : (fields[19] ?? "");
  } catch {
    return "";
  }
}

/** Whether the daemon that owns a journal dir still runs. */
function ownerAlive(owner: OwnerFile | undefined): boolean {
  if (!owner) return false;
  const start = startTimeOf(owner.pid);
  return start !== "" && start === owner.startTime;
}

async function readOwner(dir: string): Promise<OwnerFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "owner.json"), "utf8")) as OwnerFile;
  } catch {
    return undefined;
  }
}

/**
 * Reads a journal's records; a torn last line (the daemon died mid-append) is ignored, and so are
 * records an acknowledged commit holds (an `acked` line after them).
 */
export async function readRecords(dir: string): Promise<JournalRecord[]> {
  let text: string;
  try {
    text = await readFile(join(dir, "journal.log"), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  let out: Array<{ at: number; record: JournalRecord }> = [];
  let at = 0;
  for (const line of text.split("\n")) {
    const start = at;
    at += Buffer.byteLength(line) + 1;
    if (!line) continue;
    let parsed: JournalRecord | AckedLine;
    try {
      parsed = JSON.parse(line) as JournalRecord | AckedLine;
    } catch {
      // Only the last line can be torn; anything after it was never acknowledged.
      break;
    }
    if (parsed.op === "acked") {
      const { before } = parsed;
      out = out.filter((r) => r.at >= before);
    } else out.push({ at: start, record: parsed });
  }
  return out.map((r) => r.record);
}

/** An orphaned journal this process claimed: replay its records, then `remove()` it once they are safe elsewhere. */
export interface ClaimedJournal {
  dir: string;
  records: JournalRecord[];
  /** Path of an upper file of this journal. */
  upperPath(name: string): string;
}

/** Claims the orphaned journals of a volume (their daemons are dead), oldest first. */
export async function claimOrphans(volumeDir: string, self: string): Promise<ClaimedJournal[]> {
  let names: string[];
  try {
    names = await readdir(volumeDir);
  } catch {
    return [];
  }
  const found: Array<{ dir: string; createdAt: number }> = [];
  for (const name of names) {
    const dir = join(volumeDir, name);
    if (dir === self || name.endsWith(".json")) continue;
    const owner = await readOwner(dir);
    if (ownerAlive(owner)) continue;
    // Claim by renaming: of two mounts starting at once, only one gets it.
    const claimed = join(volumeDir, `claim-${randomBytes(6).toString("hex")}`);
    try {
      await rename(dir, claimed);
    } catch {
      continue;
    }
    // Replaced whole (a torn owner.json would lose createdAt, the replay order), owner-only as at creation.
    if (owner) {
      await writeFile(join(claimed, "owner.json.tmp"), JSON.stringify({ ...owner, pid: process.pid, startTime: startTimeOf(process.pid) }), { mode: 0o600 });
      await rename(join(claimed, "owner.json.tmp"), join(claimed, "owner.json"));
    }
    found.push({ dir: claimed, createdAt: owner?.createdAt ?? 0 });
  }
  found.sort((a, b) => a.createdAt - b.createdAt);
  const out: ClaimedJournal[] = [];
  for (const f of found) out.push({ dir: f.dir, records: await readRecords(f.dir), upperPath: (n) => join(f.dir, "upper", n) });
  return out;
}

/** Whether any orphaned journal (dead owner) of a volume exists. */
export async function orphanCount(volumeDir: string): Promise<number> {
  let n = 0;
  for (const name of await readdir(volumeDir).catch(() => [] as string[])) {
    if (name.endsWith(".json")) continue;
    if (!ownerAlive(await readOwner(join(volumeDir, name)))) n++;
  }
  return n;
}

/**
 * One mount's journal. `mark(path)` notes a change; `flush()` appends the current state of every
 * marked path (before close(2) and fsync(2) return, so those survive `kill -9`), `sync()` makes
 * it durable (fsync, for a power cut); `checkpoint()` rewrites it to the paths still pending.
 */
export class Journal {
  private readonly marked = new Set<string>();
  private readonly lock = new AsyncLock();
  private fh: FileHandle | undefined;
  private bytes = 0;
  /** The log's length: a failed append is cut back to it, so no torn line hides later records. */
  private logBytes = 0;
  /** Whether the `reserve` file holds JOURNAL_RESERVE_BYTES. */
  private reserveHeld = false;
  /** Rewrites of the log so far (a position in an older log means nothing in this one). */
  private generation = 0;
  /** An `acked` line not yet appended (it failed): the next append carries it. */
  private ackedBefore: number | undefined;

  private constructor(
    readonly dir: string,
    private readonly stateOf: (path: string) => JournalRecord | null,
  ) {}

  static async create(volumeDir: string, info: JournalOwnerInfo, stateOf: (path: string) => JournalRecord | null): Promise<Journal> {
    const dir = join(volumeDir, `m-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`);
    await mkdir(join(dir, "upper"), { recursive: true, mode: 0o700 });
    const owner: OwnerFile = { ...info, pid: process.pid, startTime: startTimeOf(process.pid), createdAt: Date.now() };
    await writeFile(join(dir, "owner.json"), JSON.stringify(owner), { mode: 0o600 });
    await writeFile(join(volumeDir, "volume.json"), JSON.stringify(info), { mode: 0o600 });
    const j = new Journal(dir, stateOf);
    j.fh = await open(join(dir, "journal.log"), "a", 0o600);
    await j.makeReserve();
    await fsyncPath(dir);
    await fsyncPath(volumeDir);
    return j;
  }

  /** Whether the reserve is held (tests, status). */
  get reserved(): boolean {
    return this.reserveHeld;
  }

  private get reservePath(): string {
    return join(this.dir, "reserve");
  }

  /** Takes the reserve's space if it is not held; on a disk without room it waits for the next try. */
  private async makeReserve(): Promise<void> {
    if (this.reserveHeld) return;
    try {
      // Written, not sparse: the bytes must be taken from the disk now.
      await writeFile(this.reservePath, Buffer.alloc(JOURNAL_RESERVE_BYTES), { mode: 0o600 });
      this.reserveHeld = true;
    } catch {
      await rm(this.reservePath, { force: true }).catch(() => {});
    }
  }

  get upperDir(): string {
    return join(this.dir, "upper");
  }

  /** Hard-links an adopted upper file into this journal (the orphan keeps its copy until it is removed). */
  async adoptUpper(from: string, name: string): Promise<string> {
    const to = join(this.upperDir, name);
    await link(from, to).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    return to;
  }

  /** Where the log stands now (taken in a commit's snapshot step). */
  position(): LogPosition {
    return { generation: this.generation, bytes: this.logBytes };
  }

  /**
   * After an acknowledged commit whose checkpoint failed (a full disk): what the rewrite would have
   * left, written without one. Appends the current records of `pending` (the paths no commit holds
   * yet, as a checkpoint keeps) and after them an `acked` line, so a replay skips every record
   * before them: older ones, and records of committed paths appended while the commit ran, would
   * put a state back over a later change (another client's, seen through a reload) or name blocks
   * GC has since dropped. Without room for those records: marks only the records before `at`, the
   * commit's snapshot (one short line, appended now or with the next append). False if the log
   * was rewritten since `at`: its records are then no older than the commit.
   */
  acknowledge(at: LogPosition, pending: Iterable<string>): Promise<boolean> {
    return this.lock.run(async () => {
      if (at.generation !== this.generation) return false;
      const from = this.logBytes;
      for (const p of pending) this.marked.add(p);
      try {
        // The line after the records: cut short by a kill, the log skips nothing.
        this.append(false, from);
        return true;
      } catch {
        // No room for the records (they stay marked): skip only what the commit's snapshot held.
      }
      this.ackedBefore = Math.max(at.bytes, this.ackedBefore ?? 0);
      try {
        this.append(false);
      } catch {
        // With marked records that did not fit: all of them, the line too, go with the next append.
      }
      return true;
    });
  }

  mark(path: string): void {
    this.marked.add(path);
  }

  get unflushed(): number {
    return this.marked.size;
  }

  /**
   * Appends the state of every marked path. When nothing else holds the log (the usual case:
   * a close(2) on the mount), synchronously: a few hundred bytes into the page cache of a local
   * file take microseconds, a trip through libuv's thread pool two thread hand-overs, which
   * were a good part of a small file's close (docs/benchmarks.md, "Small files").
   * `freesSpace`: once appended, the records let space be freed (upper files of deleted files),
   * so on a full disk they may use the reserve.
   */
  flush(freesSpace = false): Promise<void> {
    if (!this.lock.idle) return this.lock.run(async () => this.append(freesSpace));
    try {
      this.append(freesSpace);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Whether nothing holds the log: flushNow may append. */
  get idle(): boolean {
    return this.lock.idle;
  }

  /** flush's synchronous append, for a caller that checked `idle` (throws if the append fails). */
  flushNow(): void {
    if (!this.lock.idle) throw new Error("the journal is busy: flush, not flushNow");
    this.append(false);
  }

  /** Appends the marked paths' records; on failure they stay marked (the next flush retries them). */
  private append(freesSpace: boolean, ackedAfter?: number): void {
    if ((this.marked.size === 0 && this.ackedBefore === undefined && ackedAfter === undefined) || !this.fh) return;
    const paths = [...this.marked];
    const ackedLine = (before: number | undefined) => (before === undefined ? "" : `${JSON.stringify({ op: "acked", before } satisfies AckedLine)}\n`);
    const data = Buffer.from(ackedLine(this.ackedBefore) + this.capture(paths) + ackedLine(ackedAfter));
    this.marked.clear();
    try {
      try {
        this.appendAll(data);
      } catch (err) {
        if (!freesSpace || !this.reserveHeld || !isNoSpace(err)) throw err;
        // The disk is full: the reserve's space takes these records, which free more than it.
        unlinkSync(this.reservePath);
        this.reserveHeld = false;
        this.appendAll(data);
      }
    } catch (err) {
      for (const p of paths) this.marked.add(p);
      // An `acked` line alone is no caller's promise (a close after a commit): the next append carries it.
      if (paths.length === 0 && ackedAfter === undefined) return;
      throw err;
    }
    this.bytes += data.length;
    this.logBytes += data.length;
    this.ackedBefore = undefined;
  }

  /** Writes `data` at the log's end, or nothing: a failed write is cut back to logBytes. */
  private appendAll(data: Buffer): void {
    const fd = this.fh!.fd;
    try {
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
    } catch (err) {
      try {
        ftruncateSync(fd, this.logBytes);
      } catch {
        // The torn tail stays; replay stops at it (readRecords).
      }
      throw err;
    }
  }

  /** flush(), then fdatasync: what was flushed survives a power cut. */
  async sync(freesSpace = false): Promise<void> {
    await this.flush(freesSpace);
    await this.lock.run(async () => {
      await this.fh?.datasync();
    });
  }

  /** Bytes appended since the last checkpoint (a failing server must not let the log grow without bound). */
  get appended(): number {
    return this.bytes;
  }

  /** Rewrites the log to the current state of `pending` paths (plus anything marked), atomically and durably. */
  checkpoint(pending: Iterable<string>): Promise<void> {
    return this.lock.run(async () => {
      const paths = new Set(pending);
      const marked = [...this.marked];
      for (const p of marked) paths.add(p);
      this.marked.clear();
      const text = this.capture(paths);
      const file = join(this.dir, "journal.log");
      const tmp = `${file}.tmp`;
      try {
        const out = await open(tmp, "w", 0o600);
        try {
          // writeFile, not write: one write(2) may be short on a nearly full disk, and a cut log loses what it no longer holds.
          await out.writeFile(text);
          await out.datasync();
        } finally {
          await out.close();
        }
        await rename(tmp, file);
      } catch (err) {
        // The old log stands; what was marked must still reach it. A partial new one would only hold space.
        await rm(tmp, { force: true }).catch(() => {});
        for (const p of marked) this.marked.add(p);
        throw err;
      }
      await fsyncPath(this.dir);
      await this.fh?.close();
      this.fh = await open(file, "a", 0o600);
      this.bytes = 0;
      this.logBytes = Buffer.byteLength(text);
      this.generation++;
      this.ackedBefore = undefined;
      // After a commit the disk may have room again (deletions were reaped): take the reserve back.
      await this.makeReserve();
    });
  }

  /** Records of `paths` in path order (parents before children), as lines. */
  private capture(paths: Iterable<string>): string {
    let text = "";
    for (const p of [...paths].sort()) {
      const r = this.stateOf(p);
      if (r) text += `${JSON.stringify(r)}\n`;
    }
    return text;
  }

  /** Nothing pending: the journal goes (clean unmount, or everything committed). */
  async remove(): Promise<void> {
    await this.lock.run(async () => {
      await this.fh?.close();
      this.fh = undefined;
      await rm(this.dir, { recursive: true, force: true });
    });
  }

  /** Stops writing but keeps everything (a failed final commit): the next mount adopts it. */
  async close(): Promise<void> {
    await this.sync();
    await this.lock.run(async () => {
      await this.fh?.close();
      this.fh = undefined;
    });
  }
}

