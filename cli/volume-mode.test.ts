import { describe, expect, it } from "vitest";
import { modeString } from "./volume.js";

describe("ls -l mode strings", () => {
  it("show the type, rwx per class, and setuid/setgid/sticky as s/S and t/T (S, T: without execute)", () => {
    expect(modeString("file", 0o644)).toBe("-rw-r--r--");
    expect(modeString("file", 0o4755)).toBe("-rwsr-xr-x");
    expect(modeString("file", 0o4644)).toBe("-rwSr--r--");
    expect(modeString("directory", 0o2775)).toBe("drwxrwsr-x");
    expect(modeString("directory", 0o2765)).toBe("drwxrwSr-x");
    expect(modeString("directory", 0o1777)).toBe("drwxrwxrwt");
    expect(modeString("directory", 0o1776)).toBe("drwxrwxrwT");
    expect(modeString("symlink", 0o777)).toBe("lrwxrwxrwx");
    expect(["fifo", "socket", "char", "block"].map((t) => modeString(t as "fifo", 0)[0])).toEqual(["p", "s", "c", "b"]);
  });
});
