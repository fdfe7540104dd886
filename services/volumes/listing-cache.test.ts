import { describe, expect, it } from "vitest";
import { ListingCache } from "./listing-cache.js";

const page = (n: number) => Buffer.alloc(n, 1);

describe("ListingCache", () => {
  it("stays within its byte budget, dropping the least recently used page first", () => {
    const cache = new ListingCache(10_000);
    const key = (i: number) => ListingCache.key("vo-a", 1, `d${i}`, false, "", 1000);
    for (let i = 0; i < 4; i++) cache.set(key(i), page(1000));
    expect(cache.get(key(0))).toBeDefined();
    // Eight such pages fit: the ninth pushes one out.
    for (let i = 4; i < 9; i++) cache.set(key(i), page(1000));
    expect(cache.size.bytes).toBeLessThanOrEqual(10_000);
    expect(cache.get(key(0)), "used since, so kept").toBeDefined();
    expect(cache.get(key(1)), "the least recently used").toBeUndefined();
    expect(cache.get(key(2))).toBeDefined();
    expect(cache.get(key(8))).toEqual(page(1000));
  });

  it("keeps no page larger than an eighth of the budget, and nothing with a budget of 0", () => {
    const cache = new ListingCache(8_000);
    cache.set("big", page(1000));
    expect(cache.get("big")).toBeUndefined();
    const off = new ListingCache(0);
    off.set("small", page(1));
    expect(off.get("small")).toBeUndefined();
  });

  it("keeps a copy of its own, not a view of the encoder's larger buffer", () => {
    const cache = new ListingCache(100_000);
    const encoded = page(10);
    cache.set("k", encoded);
    encoded.fill(2);
    expect(cache.get("k")).toEqual(page(10));
  });

  it("forgets a deleted volume's pages, not another's whose id it prefixes", () => {
    const cache = new ListingCache(100_000);
    cache.set(ListingCache.key("vo-a", 1, "", false, "", 10), page(1));
    cache.set(ListingCache.key("vo-ab", 1, "", false, "", 10), page(1));
    cache.dropVolume("vo-a");
    expect(cache.get(ListingCache.key("vo-a", 1, "", false, "", 10))).toBeUndefined();
    expect(cache.get(ListingCache.key("vo-ab", 1, "", false, "", 10))).toBeDefined();
    expect(cache.size.entries).toBe(1);
  });
});
