import { describe, expect, it } from "vitest";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { checkDirEntries, checkPathLength, checkSymlinkTarget, checkTruncateSize, MAX_FILE_SIZE, writableBytes } from "./limits.js";

const code = (fn: () => unknown) => {
  try {
    fn();
    return "ok";
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe("mount limits", () => {
  it("names: 255 bytes pass, 256 bytes (also as multi-byte characters) are ENAMETOOLONG", () => {
    expect(code(() => checkPathLength(`d/${"a".repeat(255)}`))).toBe("ok");
    expect(code(() => checkPathLength(`d/${"a".repeat(256)}`))).toBe("ENAMETOOLONG");
    expect(code(() => checkPathLength("é".repeat(128)))).toBe("ENAMETOOLONG");
  });
  it("paths: 4096 bytes pass, 4097 are ENAMETOOLONG", () => {
    const seg = "a".repeat(200);
    const path = Array.from({ length: 20 }, () => seg).join("/"); // 4019 bytes
    expect(code(() => checkPathLength(`${path}/${"b".repeat(4096 - path.length - 1)}`))).toBe("ok");
    expect(code(() => checkPathLength(`${path}/${"b".repeat(4097 - path.length - 1)}`))).toBe("ENAMETOOLONG");
  });
  it("symlink targets", () => {
    expect(code(() => checkSymlinkTarget(""))).toBe("ENOENT");
    expect(code(() => checkSymlinkTarget("x".repeat(4096)))).toBe("ok");
    expect(code(() => checkSymlinkTarget("x".repeat(4097)))).toBe("ENAMETOOLONG");
  });
  it("directory entries", () => {
    expect(code(() => checkDirEntries(VOLUME_LIMITS.maxDirEntries - 1))).toBe("ok");
    expect(code(() => checkDirEntries(VOLUME_LIMITS.maxDirEntries))).toBe("ENOSPC");
  });
  it("truncate sizes", () => {
    expect(code(() => checkTruncateSize(MAX_FILE_SIZE))).toBe("ok");
    expect(code(() => checkTruncateSize(MAX_FILE_SIZE + 1))).toBe("EFBIG");
    expect(code(() => checkTruncateSize(999999999999999))).toBe("EFBIG");
    expect(code(() => checkTruncateSize(2 ** 64))).toBe("EFBIG");
    expect(code(() => checkTruncateSize(-1))).toBe("EINVAL");
    expect(code(() => checkTruncateSize(Number.NaN))).toBe("EINVAL");
  });
  it("writes stop at the size limit", () => {
    expect(writableBytes(0, 10)).toBe(10);
    expect(writableBytes(MAX_FILE_SIZE - 4, 10)).toBe(4);
    expect(code(() => writableBytes(MAX_FILE_SIZE, 1))).toBe("EFBIG");
    expect(writableBytes(MAX_FILE_SIZE, 0)).toBe(0);
  });
});
