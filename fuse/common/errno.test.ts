import { constants } from "node:os";
import { describe, expect, it } from "vitest";
import { FsError, NegativeErrno } from "./errno.js";

describe("FsError", () => {
  it("is made from an errno name or a negative errno, and carries both", () => {
    const byName = new FsError("ENOENT");
    expect(byName.errno).toBe(-constants.errno.ENOENT);
    expect(byName.code).toBe("ENOENT");
    expect(byName.message).toBe("ENOENT");
    const byValue = new FsError(NegativeErrno.EACCES, "HEAD key: AccessDenied");
    expect(byValue.code).toBe("EACCES");
    expect(byValue.errno).toBe(NegativeErrno.EACCES);
    expect(byValue.message).toBe("HEAD key: AccessDenied");
    expect(byValue).toBeInstanceOf(Error);
  });
});
