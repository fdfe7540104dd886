/**
 * The addon's spliceReply (native/fuse-fd/fuse_fd.c) against a regular file standing in for
 * /dev/fuse (splice writes the reply there as it would to the kernel): a reply is the 16-byte
 * header then exactly the slice's bytes; a file shorter than the slice sends nothing (ENODATA)
 * and leaves no bytes behind in the thread's pipe for the next reply.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fuseFdAddon } from "../lib/native-addon.js";

const dir = mkdtempSync(join(tmpdir(), "silo-splice-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("spliceReply", () => {
  it("sends header + bytes, and nothing for a short file (the next reply is clean)", async () => {
    const addon = fuseFdAddon();
    const data = Buffer.alloc(600_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    writeFileSync(join(dir, "src"), data);
    const src = openSync(join(dir, "src"), "r");
    const out = openSync(join(dir, "out"), "w");
    try {
      const expected: Buffer[] = [];
      // More rounds than thread-pool threads: every thread's pipe sees a refused splice before a good one.
      for (let round = 0; round < 8; round++) {
        await expect(addon.spliceReply!(out, 7, src, data.length - 100, 4096)).rejects.toMatchObject({ code: "ENODATA" });
        const at = 4095 + round;
        const len = 500_000 + round;
        expect(await addon.spliceReply!(out, 1000 + round, src, at, len)).toBe(len);
        const h = Buffer.alloc(16);
        h.writeUInt32LE(16 + len, 0);
        h.writeInt32LE(0, 4);
        h.writeBigUInt64LE(BigInt(1000 + round), 8);
        expected.push(h, data.subarray(at, at + len));
      }
      expect(readFileSync(join(dir, "out")).equals(Buffer.concat(expected))).toBe(true);
    } finally {
      closeSync(src);
      closeSync(out);
    }
  });
});
