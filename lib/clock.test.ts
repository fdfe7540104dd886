import { describe, expect, it } from "vitest";
import { TestClock, systemClock } from "./clock.js";

describe("TestClock", () => {
  it("stands still until advanced, then fires due timers in time order, each seeing its own due time", async () => {
    const clock = new TestClock(1000);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(["b", clock.now()]), 20);
    clock.setTimeout(() => fired.push(["a", clock.now()]), 10);
    clock.setTimeout(() => fired.push(["a2", clock.now()]), 10);
    clock.setTimeout(() => fired.push(["late", clock.now()]), 31);
    expect(clock.now()).toBe(1000);
    await clock.advance(30);
    expect(fired).toEqual([["a", 1010], ["a2", 1010], ["b", 1020]]);
    expect(clock.now()).toBe(1030);
    expect(clock.pending).toBe(1);
    await clock.advance(1);
    expect(fired.at(-1)).toEqual(["late", 1031]);
    expect(clock.pending).toBe(0);
  });

  it("repeats intervals, stops cancelled timers, and lets async work a timer starts run before the next fires", async () => {
    const clock = new TestClock(0);
    const ticks: number[] = [];
    const settled: number[] = [];
    const every = clock.setInterval(() => {
      ticks.push(clock.now());
      void Promise.resolve().then(() => settled.push(clock.now()));
    }, 100);
    const never = clock.setTimeout(() => ticks.push(-1), 50);
    never.cancel();
    await clock.advance(350);
    expect(ticks).toEqual([100, 200, 300]);
    expect(settled).toEqual([100, 200, 300]);
    every.cancel();
    await clock.advance(1000);
    expect(ticks).toHaveLength(3);
  });

  it("a timer set by a firing timer fires in the same advance if it falls due", async () => {
    const clock = new TestClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => clock.setTimeout(() => seen.push(clock.now()), 5), 5);
    await clock.advance(10);
    expect(seen).toEqual([10]);
    await expect(clock.advance(-1)).rejects.toThrow(RangeError);
  });
});

describe("systemClock", () => {
  it("reads the real time and cancels real timers", async () => {
    const before = Date.now();
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
    let fired = false;
    systemClock.setTimeout(() => (fired = true), 0, { unref: true }).cancel();
    await new Promise<void>((r) => systemClock.setTimeout(r, 1));
    expect(fired).toBe(false);
  });
});
