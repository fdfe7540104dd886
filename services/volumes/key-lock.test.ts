import { describe, expect, it } from "vitest";
import { KeyLock } from "./key-lock.js";

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe("KeyLock", () => {
  it("runs sections of one key one at a time, in order, and sections of other keys alongside", async () => {
    const lock = new KeyLock();
    const log: string[] = [];
    const g = gate();
    const a1 = lock.with("a", async () => {
      log.push("a1 start");
      await g.opened;
      log.push("a1 end");
    });
    const a2 = lock.with("a", async () => void log.push("a2"));
    const b1 = lock.with("b", async () => void log.push("b1"));
    await b1;
    expect(log).toEqual(["a1 start", "b1"]);
    g.open();
    await Promise.all([a1, a2]);
    expect(log).toEqual(["a1 start", "b1", "a1 end", "a2"]);
  });

  it("a failing section passes its error to its caller and does not block the next", async () => {
    const lock = new KeyLock();
    await expect(lock.with("k", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await lock.with("k", async () => 7)).toBe(7);
  });

  it("withAll holds every key: a single-key section of any of them waits for it", async () => {
    const lock = new KeyLock();
    const g = gate();
    const log: string[] = [];
    const all = lock.withAll(["x", "y"], async () => {
      log.push("all start");
      await g.opened;
      log.push("all end");
    });
    await new Promise((r) => setImmediate(r));
    const y = lock.with("y", async () => void log.push("y"));
    const z = lock.with("z", async () => void log.push("z"));
    await z;
    expect(log).toEqual(["all start", "z"]);
    g.open();
    await Promise.all([all, y]);
    expect(log).toEqual(["all start", "z", "all end", "y"]);
  });

  it("two withAll holders of shared keys given in opposite orders (GC's batch, a local block write's group) both finish; a repeated key is taken once", async () => {
    const lock = new KeyLock();
    const log: string[] = [];
    // Each yields between its keys (as real holders do), so unsorted they would each hold one and wait for the other.
    const a = lock.withAll(["p", "q", "r"], async () => void log.push("a"));
    const b = lock.withAll(["r", "q", "p"], async () => void log.push("b"));
    const c = lock.withAll(["s", "s"], async () => void log.push("c"));
    // A deadlock leaves these pending: the test's timeout fails it.
    await Promise.all([a, b, c]);
    expect(log.sort()).toEqual(["a", "b", "c"]);
  });
});
