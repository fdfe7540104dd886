import { describe, expect, it } from "vitest";
import { AsyncLock } from "./async-lock.js";

describe("AsyncLock", () => {
  it("never overlaps two runs and keeps their order, also after a failure", async () => {
    const lock = new AsyncLock();
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const runs = Array.from({ length: 20 }, (_, i) =>
      lock.run(async () => {
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setImmediate(r));
        order.push(i);
        inside--;
        if (i === 5) throw new Error("run 5 failed");
        return i;
      }),
    );
    const settled = await Promise.allSettled(runs);
    expect(most).toBe(1);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(settled[5]!.status).toBe("rejected");
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(19);
  });
});
