import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RootDatabase, open } from "lmdb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GroupCommit } from "./kv-group-commit.js";

let dir: string;
let root: RootDatabase;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "silo-group-commit-"));
  root = open({ path: dir });
});
afterEach(async () => {
  await root.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("GroupCommit", () => {
  it("runs the writes of one turn in one transaction, in order, each answered with its own result", async () => {
    const commits = new GroupCommit(root);
    const db = root.openDB<number, string>({ name: "t" });
    let transactions = 0;
    const real = root.transactionSync.bind(root);
    root.transactionSync = ((fn: () => unknown) => {
      transactions++;
      return real(fn);
    }) as typeof root.transactionSync;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        commits.run(() => {
          db.putSync("n", (db.get("n") ?? 0) + 1);
          return db.get("n");
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(transactions).toBe(1);
    // Writes of a later turn go in the next group.
    await commits.run(() => db.putSync("n", 0));
    expect(transactions).toBe(2);
  });

  it("a throwing write fails alone; the rest of its group commits", async () => {
    const commits = new GroupCommit(root);
    const db = root.openDB<string, string>({ name: "t" });
    const ok1 = commits.run(() => db.putSync("a", "1"));
    const bad = commits.run(() => {
      throw new Error("invalid input");
    });
    const ok2 = commits.run(() => db.putSync("b", "2"));
    await expect(bad).rejects.toThrow("invalid input");
    await Promise.all([ok1, ok2]);
    expect([db.get("a"), db.get("b")]).toEqual(["1", "2"]);
  });

  it("a throwing write applies nothing of its own; a write marked dependent fails with it; onAbort runs before anyone hears", async () => {
    const commits = new GroupCommit(root);
    const db = root.openDB<string, string>({ name: "t" });
    const heard: string[] = [];
    commits.onAbort(() => heard.push("abort"));
    const bad = commits.run(() => {
      db.putSync("half", "written");
      throw new Error("invalid input");
    });
    const dependent = commits.run(() => db.putSync("dep", "x"), { independent: false });
    const ok = commits.run(() => db.putSync("ok", "1"));
    const heardBad = bad.catch((err: Error) => {
      heard.push("bad");
      throw err;
    });
    await expect(heardBad).rejects.toThrow("invalid input");
    await expect(dependent).rejects.toThrow("invalid input");
    await ok;
    expect([db.get("half"), db.get("dep"), db.get("ok")]).toEqual([undefined, undefined, "1"]);
    expect(heard).toEqual(["abort", "bad"]);
  });

  it("answers only after the data is committed (a second reader of the files sees it)", async () => {
    const commits = new GroupCommit(root);
    const db = root.openDB<string, string>({ name: "t" });
    await commits.run(() => db.putSync("k", "durable"));
    const reader = open({ path: dir, readOnly: true });
    try {
      expect(reader.openDB<string, string>({ name: "t" }).get("k")).toBe("durable");
    } finally {
      await reader.close();
    }
  });
});
