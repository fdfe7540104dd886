import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writevAll } from "./writev-all.js";

const dir = mkdtempSync(join(tmpdir(), "silo-writev-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("writevAll", () => {
  it("writes more chunks than one writev takes, in order, at a position", async () => {
    const chunks = Array.from({ length: 2500 }, (_, i) => randomBytes(1 + (i % 97)));
    const file = join(dir, "a");
    const fh = await open(file, "w");
    await writevAll(fh, [Buffer.from("head")]);
    await writevAll(fh, chunks, 10);
    await fh.close();
    const got = readFileSync(file);
    expect(got.subarray(0, 4).toString()).toBe("head");
    expect(got.subarray(10).equals(Buffer.concat(chunks))).toBe(true);
  });

  it("appends at the file position when no position is given", async () => {
    const file = join(dir, "b");
    const fh = await open(file, "w");
    await writevAll(fh, [Buffer.from("ab"), Buffer.from("cd")]);
    await writevAll(fh, [Buffer.from("ef")]);
    await fh.close();
    expect(readFileSync(file, "utf8")).toBe("abcdef");
  });
});
