import { describe, expect, it } from "vitest";
import { InvalidError } from "./errors.js";
import { checkName } from "./names.js";

describe("checkName", () => {
  it("accepts 1-64 characters of letters, digits, '.', '_' and '-'", () => {
    for (const name of ["a", "A-b_c.d", "0", "x".repeat(64), "..."]) expect(checkName(name)).toBe(name);
  });

  it("refuses anything else with InvalidError naming what was checked", () => {
    for (const name of ["", "x".repeat(65), "a b", "a/b", "ünïcode", "a\n", 7, null, undefined, ["a"]]) {
      expect(() => checkName(name, "queue name"), JSON.stringify(name)).toThrow(InvalidError);
    }
    expect(() => checkName("a b", "queue name")).toThrow(/Invalid queue name "a b"/);
  });
});
