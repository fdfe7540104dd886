import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { claimOrphans, Journal, type JournalRecord, readRecords, volumeJournalDir } from "./journal.js";

const root = mkdtempSync(join(tmpdir(), "silo-journal-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const info = { server: "http://127.0.0.1:1", volumeId: "vo-test", volume: "v" };

describe("Journal", () => {
  it("records the state of marked paths, and a checkpoint keeps only the pending ones", async () => {
    const vdir = volumeJournalDir(root, info.server, "vo-a");
    const state = new Map<string, JournalRecord>();
    const j = await Journal.create(vdir, info, (p) => state.get(p) ?? { op: "gone", path: p });
    state.set("a", { op: "dir", path: "a", mode: 0o755, mtimeMs: 1 });
    j.mark("a");
    j.mark("b");
    await j.flush();
    expect(await readRecords(j.dir)).toEqual([state.get("a"), { op: "gone", path: "b" }]);
    await j.checkpoint(["a"]);
    expect(await readRecords(j.dir)).toEqual([state.get("a")]);
    await j.remove();
    expect(await readdir(vdir)).toEqual(["volume.json"]);
  });

  it("records before an acknowledged position are not read back; a position in a rewritten log acknowledges nothing", async () => {
    const vdir = volumeJournalDir(root, info.server, "vo-ack");
    const dir = (path: string, mtimeMs: number): JournalRecord => ({ op: "dir", path, mode: 0o755, mtimeMs });
    const state = new Map<string, JournalRecord>([["a", dir("a", 1)], ["b", dir("b", 1)]]);
    const j = await Journal.create(vdir, info, (p) => state.get(p) ?? null);
    j.mark("a");
    j.mark("b");
    await j.flush();
    const committed = j.position();
    // Appended while the commit ran (a flush of a path it holds): the commit holds that state too,
    // and a replay of it could undo a later change by another client.
    j.mark("a");
    await j.flush();
    // Changed again after the commit's snapshot: that record must survive the acknowledgement.
    state.set("b", dir("b", 2));
    j.mark("b");
    await j.flush();
    expect(await j.acknowledge(committed, ["b"])).toBe(true);
    expect(await readRecords(j.dir)).toEqual([dir("b", 2)]);
    // Later records are read as before.
    state.set("c", dir("c", 3));
    j.mark("c");
    await j.flush();
    expect(await readRecords(j.dir)).toEqual([dir("b", 2), dir("c", 3)]);
    await j.checkpoint(["b", "c"]);
    expect(await j.acknowledge(committed, ["b", "c"])).toBe(false);
    expect(await readRecords(j.dir)).toEqual([dir("b", 2), dir("c", 3)]);
    await j.remove();
  });

  it("a torn last line (the daemon died mid-append) is ignored", async () => {
    const dir = join(root, "torn");
    await mkdir(dir);
    await writeFile(join(dir, "journal.log"), `${JSON.stringify({ op: "gone", path: "x" })}\n{"op":"file","pa`);
    expect(await readRecords(dir)).toEqual([{ op: "gone", path: "x" }]);
  });

  it("only journals whose owner is dead are claimed, each by one claimant", async () => {
    const vdir = volumeJournalDir(root, info.server, "vo-b");
    const live = await Journal.create(vdir, info, () => null);
    const dead = join(vdir, "m-dead");
    await mkdir(join(dead, "upper"), { recursive: true });
    // A pid that cannot be running (beyond pid_max), with a start time no process has.
    await writeFile(join(dead, "owner.json"), JSON.stringify({ ...info, pid: 2 ** 30, startTime: "1", createdAt: 1 }));
    await writeFile(join(dead, "journal.log"), `${JSON.stringify({ op: "gone", path: "y" })}\n`);
    const [first, second] = await Promise.all([claimOrphans(vdir, "self-1"), claimOrphans(vdir, "self-2")]);
    const claims = [...first!, ...second!];
    const ofDead = claims.filter((c) => c.records.some((r) => r.path === "y"));
    expect(ofDead).toHaveLength(1);
    // The claimant owns it now, in a file only it can read (replaced whole: no temp file left).
    const claimedDir = ofDead[0]!.dir;
    expect(JSON.parse(await readFile(join(claimedDir, "owner.json"), "utf8"))).toMatchObject({ pid: process.pid, createdAt: 1 });
    expect((await stat(join(claimedDir, "owner.json"))).mode & 0o777).toBe(0o600);
    expect((await readdir(claimedDir)).sort()).toEqual(["journal.log", "owner.json", "upper"]);
    // The live journal (this process) was left alone.
    expect(claims.some((c) => c.dir === live.dir)).toBe(false);
    expect((await readdir(vdir)).includes(live.dir.slice(vdir.length + 1))).toBe(true);
    await live.remove();
  });
});
