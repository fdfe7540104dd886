import { describe, expect, it } from "vitest";
import { ConnectionError, InvalidError, NoSpaceError, SiloError } from "../../protocol/errors.js";
import { isTransient, withRetry } from "./commit-retry.js";

describe("commit retries", () => {
  it("classifies errors", () => {
    expect(isTransient(new ConnectionError("ECONNREFUSED"))).toBe(true);
    expect(isTransient(new SiloError("boom", "INTERNAL", 500))).toBe(true);
    expect(isTransient(new TypeError("fetch failed"))).toBe(true);
    expect(isTransient(new InvalidError("bad"))).toBe(false);
    expect(isTransient(new NoSpaceError("full"))).toBe(false);
  });

  it("retries transient errors with backoff until they stop, on an injected clock", async () => {
    let t = 0;
    const sleeps: number[] = [];
    let calls = 0;
    const v = await withRetry(
      async () => {
        if (++calls < 5) throw new ConnectionError("ECONNREFUSED");
        return "ok";
      },
      { forMs: 60_000, now: () => t, sleep: async (ms) => {
          sleeps.push(ms);
          t += ms;
        },
      },
    );
    expect(v).toBe("ok");
    expect(sleeps).toEqual([250, 500, 1000, 2000]);
  });

  it("gives up after forMs and at once on a refusal", async () => {
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
    await expect(withRetry(async () => Promise.reject(new ConnectionError("down")), { forMs: 3_000, ...clock })).rejects.toThrow("down");
    expect(t).toBeLessThanOrEqual(3_000);
    let calls = 0;
    await expect(withRetry(async () => Promise.reject(new InvalidError(`bad ${++calls}`)), { forMs: 3_000, ...clock })).rejects.toThrow("bad 1");
  });
});
