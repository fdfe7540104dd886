/**
 * The addon's spliceReply (native/fuse-fd/fuse_fd.c) against a regular file standing in for
 * /dev/fuse (splice writes the reply there as it would to the kernel): a reply is the 16-byte
 * header then exactly the slice's bytes; a file shorter than the slice sends nothing (ENODATA)
 * and leaves no bytes behind in the thread's pipe for the next reply. Run in a child with one
 * thread-pool thread, so every reply goes through the pipe a refused one used.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "silo-splice-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ADDON = resolve(import.meta.dirname, "../native/fuse-fd/build/Release/fuse_fd.node");

describe("spliceReply", () => {
  it("sends header + bytes, and nothing for a short file (the next reply is clean)", () => {
    const data = Buffer.alloc(600_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const src = join(dir, "src");
    const out = join(dir, "out");
    writeFileSync(src, data);
    const script = `
      import { createRequire } from "node:module";
      import { openSync } from "node:fs";
      const a = createRequire(import.meta.url)(${JSON.stringify(ADDON)});
      const src = openSync(${JSON.stringify(src)}, "r");
      const out = openSync(${JSON.stringify(out)}, "w");
      const codes = [];
      for (let round = 0; round < 4; round++) {
        await a.spliceReply(out, 7, src, ${data.length - 100}, 4096).then(() => codes.push("sent"), (e) => codes.push(e.code));
        codes.push(await a.spliceReply(out, 1000 + round, src, 4095 + round, 500000 + round));
      }
      console.log(JSON.stringify(codes));`;
    const codes = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, UV_THREADPOOL_SIZE: "1" }, encoding: "utf8" }));
    const expected: Buffer[] = [];
    for (let round = 0; round < 4; round++) {
      const len = 500_000 + round;
      expect(codes.slice(2 * round, 2 * round + 2)).toEqual(["ENODATA", len]);
      const h = Buffer.alloc(16);
      h.writeUInt32LE(16 + len, 0);
      h.writeBigUInt64LE(BigInt(1000 + round), 8);
      expected.push(h, data.subarray(4095 + round, 4095 + round + len));
    }
    expect(readFileSync(out).equals(Buffer.concat(expected)), "replies exactly as sent").toBe(true);
  });
});
