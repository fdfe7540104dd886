import { mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * One `silo serve` per SILO_HOME: the stores keep authoritative state in memory (queue
 * indexes, waiters, lock leases), so a second server on the same data would corrupt it.
 * A pid file is enough here: a lock left by a crashed (kill -9) server names a dead pid and is taken over.
 * The pid is the target of a symlink, not file content: a short symlink lives in its inode and
 * needs no data block, so the server can lock (and start) on a full disk.
 */
export function lockHome(dataDir: string): () => void {
  makeDirs(dataDir);
  const file = join(dataDir, "serve.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      symlinkSync(String(process.pid), file);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = readPid(file);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`Another silo serve (pid ${pid}) is using ${dataDir}; stop it first, or use another --home`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new Error(`Could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid a lock names (a symlink's target; a regular file's content, as older servers wrote it). */
function readPid(file: string): number {
  try {
    return Number(readlinkSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    return Number(readFileSync(file, "utf8").trim());
  }
}

/**
 * `mkdir -p` one level at a time: Node's recursive mkdir reports a read-only or unwritable parent
 * as ENOENT (and spins forever under /proc), where this names the directory it could not make and why.
 */
function makeDirs(dir: string, parentMade = false): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && statSync(dir).isDirectory()) return;
    // ENOENT once the parent exists (as under /proc) is final, not a parent to make.
    if (code !== "ENOENT" || parentMade || dirname(dir) === dir) {
      throw new Error(`Cannot create the silo home directory ${dir}`, { cause: err });
    }
    makeDirs(dirname(dir));
    makeDirs(dir, true);
  }
}
