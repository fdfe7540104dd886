import { describe, expect, it } from "vitest";
import { isLongRunning } from "./commands.js";

describe("isLongRunning", () => {
  it("is true for a server and for mounts served in the foreground, whatever global options come first", () => {
    expect(isLongRunning(["serve", "--port", "0"])).toBe(true);
    expect(isLongRunning(["-e", "dev", "serve"])).toBe(true);
    expect(isLongRunning(["volume", "mount", "v", "/mnt/v", "--foreground"])).toBe(true);
    expect(isLongRunning(["nfs", "mount", "n", "/mnt/n", "--foreground"])).toBe(true);
  });

  it("is false for commands that end in seconds, even when an argument reads 'serve'", () => {
    expect(isLongRunning(["volume", "get", "v", "/big", "big"])).toBe(false);
    expect(isLongRunning(["volume", "put", "v", "serve", "/serve"])).toBe(false);
    expect(isLongRunning([])).toBe(false);
  });
});
