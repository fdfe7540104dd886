import { describe, expect, it } from "vitest";
import { errorLine } from "./error-line.js";

describe("errorLine", () => {
  it("never repeats 'Error:' and keeps to the first line", () => {
    expect(errorLine(new Error("Error: Another silo serve is using /x"))).toBe("Another silo serve is using /x");
    expect(errorLine(new Error("first\n    at somewhere (file.js:1:1)"))).toBe("first");
  });

  it("follows the cause and adds a hint for a known system error", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    const line = errorLine(new TypeError("fetch failed", { cause }));
    expect(line).toMatch(/^fetch failed: connect ECONNREFUSED 127\.0\.0\.1:1 \(nothing is listening there/);
  });

  it("states what was thrown when it is not an Error", () => {
    expect(errorLine("plain")).toBe("plain");
    expect(errorLine(undefined)).toBe("unknown error");
  });
});
