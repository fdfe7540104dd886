import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fuseFdAddon } from "./native-addon.js";

const addon = fuseFdAddon();

/** Runs python3 with our socket end as its fd 3, sending `path` opened as SCM_RIGHTS (what fusermount3 does). */
function sendFdFromChild(sock: number, path: string | null): Promise<number | null> {
  // The child unlinks the file after opening it: only the passed fd still reaches its bytes.
  const send = path ? `fd = os.open(${JSON.stringify(path)}, os.O_RDONLY)\nos.unlink(${JSON.stringify(path)})\nsocket.send_fds(s, [b"\\0"], [fd])` : 's.send(b"\\0")';
  const child = spawn("python3", ["-c", `import os, socket\ns = socket.socket(fileno=3)\n${send}`], { stdio: ["ignore", "ignore", "inherit", sock] });
  return new Promise((res, rej) => {
    child.once("error", rej);
    child.once("close", res);
  });
}

// python3 starts slowly on a loaded machine.
describe("native/fuse-fd", { timeout: 60_000 }, () => {
  it("receives an fd passed as SCM_RIGHTS, and -1 (never blocking) when none was sent", async () => {
    const [mine, theirs] = addon.socketpair();
    try {
      expect(mine).not.toBe(theirs);
      // Nothing queued yet: no wait.
      expect(addon.recvFd(mine)).toBe(-1);
      const dir = mkdtempSync(join(tmpdir(), "silo-fuse-fd-"));
      writeFileSync(join(dir, "f"), "passed over the socket");
      expect(await sendFdFromChild(theirs, join(dir, "f"))).toBe(0);
      rmSync(dir, { recursive: true });
      const fd = addon.recvFd(mine);
      expect(fd).toBeGreaterThan(2);
      const buf = Buffer.alloc(64);
      const n = readSync(fd, buf, 0, buf.length, 0);
      expect(buf.subarray(0, n).toString()).toBe("passed over the socket");
      closeSync(fd);
      // A message without an fd: -1.
      expect(await sendFdFromChild(theirs, null)).toBe(0);
      expect(addon.recvFd(mine)).toBe(-1);
    } finally {
      closeSync(mine);
      closeSync(theirs);
    }
  });

  it("alignedBuffer gives page-aligned memory: an O_DIRECT write takes it whole, a buffer a byte off it is refused", () => {
    const buf = addon.alignedBuffer!(2 * 4096);
    expect(buf.length).toBe(2 * 4096);
    buf.fill("d");
    const dir = mkdtempSync(join(tmpdir(), "silo-fuse-fd-"));
    try {
      const fd = openSync(join(dir, "f"), constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT);
      try {
        expect(writeSync(fd, buf, 0, buf.length, 0)).toBe(buf.length);
        // The test is only worth something if the file system enforces O_DIRECT's alignment.
        const off = Buffer.allocUnsafeSlow(4096 + 1).subarray(1);
        expect(() => writeSync(fd, off, 0, 4096, 0)).toThrow(/EINVAL/);
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(join(dir, "f")).equals(buf)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("writes a reply as one message: the header it builds, then the payload; minus the errno on failure", () => {
    const [mine, theirs] = addon.socketpair();
    try {
      const unique = 2 ** 40 + 7;
      expect(addon.reply!(mine, unique, 0, Buffer.from("payload"))).toBe(16 + 7);
      expect(addon.reply!(mine, 5, -2)).toBe(16);
      // An empty payload is a reply of its header only.
      expect(addon.reply!(mine, 6, 0, Buffer.alloc(0))).toBe(16);
      const buf = Buffer.alloc(128);
      const n = readSync(theirs, buf, 0, buf.length, null);
      expect(n).toBe(23 + 16 + 16);
      expect([buf.readUInt32LE(0), buf.readInt32LE(4), Number(buf.readBigUInt64LE(8)), buf.toString("utf8", 16, 23)]).toEqual([23, 0, unique, "payload"]);
      expect([buf.readUInt32LE(23), buf.readInt32LE(27), Number(buf.readBigUInt64LE(31))]).toEqual([16, -2, 5]);
      expect([buf.readUInt32LE(39), buf.readInt32LE(43), Number(buf.readBigUInt64LE(47))]).toEqual([16, 0, 6]);
    } finally {
      closeSync(mine);
      closeSync(theirs);
    }
    // An fd not open: minus EBADF, not an exception (the session treats it as a connection gone).
    expect(addon.reply!(1_000_000, 1, 0)).toBe(-9);
  });

  it("reports ioctl failures as errors named by errno", () => {
    const file = openSync("/proc/self/status", "r");
    try {
      expect(() => addon.cloneFd(file)).toThrow(expect.objectContaining({ code: "EINVAL" }));
      expect(() => addon.backingOpen(file, file)).toThrow(expect.objectContaining({ code: "ENOTTY" }));
      expect(() => addon.recvFd("3" as unknown as number)).toThrow(expect.objectContaining({ code: "EINVAL" }));
    } finally {
      closeSync(file);
    }
  });

  it("readHashed fills the buffer from the file at the position and answers the SHA-256 of exactly those bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "silo-read-hashed-"));
    try {
      // Chunks of 1 MiB: a buffer of two and a half of them, read from an odd offset.
      const data = randomBytes(3 * 1024 * 1024);
      writeFileSync(join(dir, "f"), data);
      const fd = openSync(join(dir, "f"), "r");
      try {
        const buf = Buffer.alloc(2.5 * 1024 * 1024 + 3);
        const digest = await addon.readHashed!(fd, buf, 12_345);
        const want = data.subarray(12_345, 12_345 + buf.length);
        expect(buf.equals(want)).toBe(true);
        expect(digest?.toString("hex")).toBe(createHash("sha256").update(want).digest("hex"));
        // The file ends before the buffer is full: no digest.
        expect(await addon.readHashed!(fd, buf, data.length - 100)).toBeUndefined();
        await expect(addon.readHashed!(1_000_000, buf, 0)).rejects.toMatchObject({ code: "EBADF" });
        expect(() => addon.readHashed!(fd, buf, -1)).toThrow();
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("syncAll syncs every fd at once and rejects with the errno of one that fails, after all ran", async () => {
    const dir = mkdtempSync(join(tmpdir(), "silo-sync-all-"));
    const fds = [0, 1, 2].map((i) => openSync(join(dir, `f${i}`), "w"));
    try {
      for (const fd of fds) writeSync(fd, "synced");
      await addon.syncAll!(fds, true);
      const dirFd = openSync(dir, "r");
      await addon.syncAll!([...fds, dirFd], false);
      closeSync(dirFd);
      await expect(addon.syncAll!([fds[0]!, 1_000_000, fds[1]!], true)).rejects.toMatchObject({ code: "EBADF" });
      expect(() => addon.syncAll!(Array.from({ length: 65 }, () => fds[0]!), true)).toThrow();
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });
});
