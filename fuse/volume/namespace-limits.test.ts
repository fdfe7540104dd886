import { describe, expect, it } from "vitest";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { FileContent } from "./file-content.js";
import { DirNode, FileNode, LinkNode, Namespace, newStat } from "./namespace.js";

const file = () => new FileNode(newStat(0o644), new FileContent(0, []));
const code = (fn: () => unknown) => {
  try {
    fn();
    return "ok";
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe("Namespace limits", () => {
  it("a directory holds at most maxDirEntries entries: one more is ENOSPC, also by rename", () => {
    const ns = new Namespace(10 ** 6);
    ns.add("d", new DirNode(newStat(0o755)));
    for (let i = 0; i < VOLUME_LIMITS.maxDirEntries; i++) ns.add(`d/f${i}`, file());
    expect(code(() => ns.add("d/one-more", file()))).toBe("ENOSPC");
    ns.add("elsewhere", file());
    expect(code(() => ns.rename("elsewhere", "d/moved"))).toBe("ENOSPC");
    // Replacing an existing entry adds none.
    expect(code(() => ns.rename("elsewhere", "d/f0"))).toBe("ok");
  });

  it("the inode limit is ENOSPC", () => {
    const ns = new Namespace(2);
    ns.add("a", file());
    ns.add("b", file());
    expect(code(() => ns.add("c", file()))).toBe("ENOSPC");
  });

  it("long names, long paths below a moved directory, long symlink targets", () => {
    const ns = new Namespace(10 ** 6);
    expect(code(() => ns.add("x".repeat(256), file()))).toBe("ENAMETOOLONG");
    expect(code(() => ns.add("l", new LinkNode("t".repeat(4097), newStat(0o777))))).toBe("ENAMETOOLONG");
    ns.add("deep", new DirNode(newStat(0o755)));
    let p = "deep";
    for (let i = 0; i < 15; i++) ns.add((p = `${p}/${"d".repeat(250)}`), new DirNode(newStat(0o755)));
    ns.add("m", new DirNode(newStat(0o755)));
    ns.add(`m/${"e".repeat(250)}`, new DirNode(newStat(0o755)));
    expect(code(() => ns.rename("m", `${p}/${"y".repeat(100)}`))).toBe("ENAMETOOLONG");
    expect(ns.lookup("m")?.type).toBe("directory");
  });
});
