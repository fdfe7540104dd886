import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OffLoopCommits, openSqlite, type Sqlite } from "./db.js";

let dir: string | undefined;
let db: Sqlite | undefined;
afterEach(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  db = dir = undefined;
});

describe("OffLoopCommits", () => {
  it("answers a transaction only once the WAL holding it was synced, and leaves the connection at FULL", async () => {
    dir = mkdtempSync(join(tmpdir(), "silo-db-"));
    const file = join(dir, "x.sqlite");
    const opened = openSqlite(file);
    db = opened;
    opened.exec("CREATE TABLE t (v INTEGER)");
    const syncs: Array<{ path: string; walBytes: number; release: () => void }> = [];
    let onSync: (() => void) | undefined;
    const commits = new OffLoopCommits(opened, (path) => {
      return new Promise<void>((release) => {
        syncs.push({ path, walBytes: statSync(path).size, release });
        onSync?.();
      });
    });
    const walBefore = statSync(`${file}-wal`).size;
    let answered = false;
    const run = commits.run(() => opened.prepare("INSERT INTO t (v) VALUES (?)").run(1)).then(() => {
      answered = true;
    });
    while (syncs.length === 0) await new Promise<void>((r) => (onSync = r));
    // The sync starts after the commit wrote its frames to the WAL, and the caller waits for it.
    expect(syncs[0]!.path).toBe(`${file}-wal`);
    expect(syncs[0]!.walBytes).toBeGreaterThan(walBefore);
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    syncs[0]!.release();
    await run;
    expect(answered).toBe(true);
    expect(opened.pragma("synchronous", { simple: true })).toBe(2); // FULL
  });
});
