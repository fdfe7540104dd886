import { describe, expect, it } from "vitest";
import { TestClock } from "../../lib/clock.js";
import type { ListPage, ObjectInfo } from "./bucket-s3.js";
import { KeyMap } from "./key-map.js";
import { Metadata, type MetadataSource } from "./metadata.js";

const TTL_MS = 1000;

/** An in-memory bucket that counts the calls the cache makes. */
class FakeBucket implements MetadataSource {
  readonly objects = new Map<string, ObjectInfo>();
  calls = { head: 0, hasKeysUnder: 0, list: 0 };

  async head(key: string): Promise<ObjectInfo | null> {
    this.calls.head++;
    return this.objects.get(key) ?? null;
  }

  async hasKeysUnder(prefix: string): Promise<boolean> {
    this.calls.hasKeysUnder++;
    return [...this.objects.keys()].some((k) => k.startsWith(prefix));
  }

  async *list(prefix: string): AsyncGenerator<ListPage> {
    this.calls.list++;
    const page: ListPage = { prefixes: [], objects: [] };
    for (const [key, info] of [...this.objects].sort(([a], [b]) => a.localeCompare(b))) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash < 0) page.objects.push({ key, ...info });
      else if (!page.prefixes.includes(`${prefix}${rest.slice(0, slash + 1)}`)) page.prefixes.push(`${prefix}${rest.slice(0, slash + 1)}`);
    }
    yield page;
  }
}

function setup() {
  const s3 = new FakeBucket();
  const clock = new TestClock();
  const meta = new Metadata(s3, new KeyMap("pre/"), TTL_MS, clock);
  return { s3, clock, meta };
}

describe("Metadata (bucket mount listing cache)", () => {
  it("a fresh listing answers lookups without S3; once stale, a small directory is listed again", async () => {
    const { s3, clock, meta } = setup();
    s3.objects.set("pre/a.txt", { size: 3, mtimeMs: 1 });
    s3.objects.set("pre/sub/b.txt", { size: 4, mtimeMs: 2 });
    const listing = await meta.list("/");
    expect([...listing].sort()).toEqual([
      ["a.txt", { type: "file", size: 3, mtimeMs: 1 }],
      ["sub", { type: "dir", mtimeMs: clock.now() }],
    ]);
    s3.objects.set("pre/new.txt", { size: 1, mtimeMs: 3 });
    await clock.advance(TTL_MS - 1);
    expect(await meta.lookup("/new.txt")).toBeNull();
    expect(await meta.lookup("/a.txt")).toEqual({ type: "file", size: 3, mtimeMs: 1 });
    expect(s3.calls.head).toBe(0);
    await clock.advance(1);
    expect(await meta.lookup("/new.txt")).toEqual({ type: "file", size: 1, mtimeMs: 3 });
    expect(s3.calls.list).toBe(2);
    expect(s3.calls.head).toBe(0);
  });

  it("concurrent lookups of one path share one round trip, and the answer is trusted for the TTL", async () => {
    const { s3, clock, meta } = setup();
    s3.objects.set("pre/x", { size: 9, mtimeMs: 5 });
    const answers = await Promise.all(Array.from({ length: 8 }, () => meta.lookup("/x")));
    expect(answers).toEqual(Array(8).fill({ type: "file", size: 9, mtimeMs: 5 }));
    expect(s3.calls.head).toBe(1);
    s3.objects.delete("pre/x");
    await clock.advance(TTL_MS - 1);
    expect(await meta.lookup("/x")).not.toBeNull();
    await clock.advance(1);
    expect(await meta.lookup("/x")).toBeNull();
    expect(s3.calls.head).toBe(2);
  });

  it("the mount's own writes and deletes show at once, also over a listing S3 has not caught up with", async () => {
    const { s3, clock, meta } = setup();
    s3.objects.set("pre/old", { size: 1, mtimeMs: 1 });
    await meta.list("/");
    meta.noteFile("/mine", 10);
    meta.noteDeleted("/old");
    // S3 (eventually consistent) still lists "old" and not yet "mine".
    await clock.advance(TTL_MS);
    const relisted = await meta.list("/");
    expect(relisted.has("mine")).toBe(true);
    expect(relisted.has("old")).toBe(false);
    // After the own-changes window, S3's word counts again.
    await clock.advance(5001);
    expect((await meta.list("/")).has("old")).toBe(true);
  });

  it("a directory made by mkdir is local until a file is written under it", async () => {
    const { meta } = setup();
    meta.addLocalDir("/d");
    expect(meta.isLocalDir("/d")).toBe(true);
    expect((await meta.list("/")).get("d")?.type).toBe("dir");
    expect(meta.hasLocalChildren("/")).toBe(true);
    meta.noteFile("/d/f", 2);
    expect(meta.isLocalDir("/d")).toBe(false);
    expect(await meta.lookup("/d/f")).toMatchObject({ type: "file", size: 2 });
  });

  it("names S3 allows but a file system cannot hold are hidden", async () => {
    const { s3, meta } = setup();
    s3.objects.set("pre/..", { size: 1, mtimeMs: 1 });
    s3.objects.set("pre/ok", { size: 1, mtimeMs: 1 });
    expect([...(await meta.list("/")).keys()]).toEqual(["ok"]);
  });
});
