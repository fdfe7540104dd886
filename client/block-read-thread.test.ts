import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { BlockReadThread, ShortReadError, sharedBuffer } from "./block-read-thread.js";

const dir = mkdtempSync(join(tmpdir(), "silo-read-thread-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("BlockReadThread", () => {
  it("reads a file range into shared memory and hashes it, across read chunks", async () => {
    // Not a multiple of the thread's 1 MiB read chunk, and read from an offset.
    const data = randomBytes(3 * 1024 * 1024 + 777);
    const file = join(dir, "a.bin");
    writeFileSync(file, data);
    const fd = openSync(file, "r");
    const reader = new BlockReadThread();
    try {
      const buf = sharedBuffer(data.length);
      const part = buf.subarray(5, 5 + data.length - 100);
      expect(await reader.readAndHash(fd, part, 100)).toBe(sha(data.subarray(100)));
      expect(part.equals(data.subarray(100))).toBe(true);
      // Jobs queued together answer each for its own range.
      const a = sharedBuffer(1000);
      const b = sharedBuffer(2000);
      const [ha, hb] = await Promise.all([reader.readAndHash(fd, a, 0), reader.readAndHash(fd, b, 1000)]);
      expect([ha, hb]).toEqual([sha(data.subarray(0, 1000)), sha(data.subarray(1000, 3000))]);
    } finally {
      await reader.close();
      closeSync(fd);
    }
  });

  it("says when the file ends before the range does, and refuses unshared memory", async () => {
    const file = join(dir, "short.bin");
    writeFileSync(file, randomBytes(1000));
    const fd = openSync(file, "r");
    const reader = new BlockReadThread();
    try {
      const err = await reader.readAndHash(fd, sharedBuffer(1500), 0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ShortReadError);
      expect((err as ShortReadError).bytes).toBe(1000);
      await expect(reader.readAndHash(fd, Buffer.alloc(10), 0)).rejects.toBeInstanceOf(TypeError);
    } finally {
      await reader.close();
      closeSync(fd);
    }
  });

  it("reads off the main thread: the event loop keeps turning meanwhile", async () => {
    const data = randomBytes(32 * 1024 * 1024);
    const file = join(dir, "big.bin");
    writeFileSync(file, data);
    const fd = openSync(file, "r");
    const reader = new BlockReadThread();
    try {
      expect(threadId).toBe(0);
      let turns = 0;
      let reading = true;
      const spin = (): void => {
        turns++;
        if (reading) setImmediate(spin);
      };
      const done = reader.readAndHash(fd, sharedBuffer(data.length), 0);
      // Blocking the main thread now shows nothing of the read's progress: it runs elsewhere.
      setImmediate(spin);
      const hex = await done;
      reading = false;
      expect(hex).toBe(sha(data));
      // 32 MiB read and hashed take tens of milliseconds: many loop turns if they ran elsewhere.
      expect(turns).toBeGreaterThan(1);
    } finally {
      await reader.close();
      closeSync(fd);
    }
  });
});
