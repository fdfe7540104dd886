import { describe, expect, it } from "vitest";
import { globBase, globToRegExp, isGlob } from "../client/glob.js";

describe("NFS glob patterns", () => {
  const matches = (pattern: string, path: string) => globToRegExp(pattern).test(path);

  it("* and ? stay inside one name; ** spans directories, also none", () => {
    expect(matches("*.csv", "a.csv")).toBe(true);
    expect(matches("*.csv", "d/a.csv")).toBe(false);
    expect(matches("d/?.txt", "d/a.txt")).toBe(true);
    expect(matches("d/?.txt", "d/ab.txt")).toBe(false);
    expect(matches("**/*.csv", "a.csv")).toBe(true);
    expect(matches("**/*.csv", "x/y/z.csv")).toBe(true);
    expect(matches("a/**/b", "a/b")).toBe(true);
    expect(matches("a/**/b", "a/x/y/b")).toBe(true);
    expect(matches("a/**/b", "a/x/y/bc")).toBe(false);
    expect(matches("a/**", "a/x/y")).toBe(true);
    expect(matches("a/**", "b/x")).toBe(false);
    expect(matches("/leading/*.txt", "leading/x.txt")).toBe(true);
  });

  it("regex characters in names match themselves", () => {
    expect(matches("f(1)+[2].txt*", "f(1)+[2].txt.bak")).toBe(true);
    expect(matches("a.b", "axb")).toBe(false);
    expect(matches("$x^", "$x^")).toBe(true);
  });

  it("the literal base directory and what counts as a glob", () => {
    expect(globBase("/logs/2024/**/*.txt")).toBe("logs/2024");
    expect(globBase("**")).toBe("");
    expect(globBase("a/b*/c")).toBe("a");
    expect(isGlob("a/b")).toBe(false);
    expect(isGlob("a/*")).toBe(true);
    expect(isGlob("a?")).toBe(true);
  });
});
