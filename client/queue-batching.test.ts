import { describe, expect, it } from "vitest";
import { GetBatcher, PutBatcher } from "./queue-batching.js";

const turn = () => new Promise<void>((r) => setImmediate(r));
const bytes = (...xs: number[]) => xs.map((x) => Uint8Array.of(x));

function deferredSends<A, R>() {
  const calls: Array<{ arg: A; answer(r: R): void; fail(e: unknown): void }> = [];
  const send = (arg: A) => new Promise<R>((answer, fail) => calls.push({ arg, answer, fail }));
  return { calls, send };
}

describe("PutBatcher", () => {
  it("a lone put goes at once; puts made while it is out go together, each caller's items contiguous and in order", async () => {
    const { calls, send } = deferredSends<Uint8Array[], void>();
    let idle = 0;
    const b = new PutBatcher(send, () => idle++);
    const first = b.put(bytes(1));
    expect(calls).toHaveLength(1);
    const second = b.put(bytes(2, 3));
    const third = b.put(bytes(4));
    expect(calls).toHaveLength(1);
    calls[0]!.answer();
    await first;
    await turn();
    expect(calls.map((c) => c.arg.map((u) => u[0]))).toEqual([[1], [2, 3, 4]]);
    expect(idle).toBe(0);
    calls[1]!.answer();
    await Promise.all([second, third]);
    await turn();
    expect(idle).toBe(1);
  });

  it("a failed merged put rejects every put it carried, and later puts still go out", async () => {
    const { calls, send } = deferredSends<Uint8Array[], void>();
    const b = new PutBatcher(send, () => {});
    const first = b.put(bytes(1));
    const a = b.put(bytes(2));
    const c = b.put(bytes(3));
    calls[0]!.answer();
    await first;
    await turn();
    calls[1]!.fail(new Error("full"));
    await expect(a).rejects.toThrow("full");
    await expect(c).rejects.toThrow("full");
    const d = b.put(bytes(4));
    await turn();
    expect(calls).toHaveLength(3);
    calls[2]!.answer();
    await d;
  });
});

describe("GetBatcher", () => {
  it("merges waiting gets into one getMany; items go to callers in arrival order, callers beyond the answer ask again", async () => {
    const { calls, send } = deferredSends<number, Uint8Array[]>();
    const b = new GetBatcher(send, () => {});
    const g1 = b.get();
    const g2 = b.get();
    const g3 = b.get();
    expect(calls.map((c) => c.arg)).toEqual([1]);
    calls[0]!.answer(bytes(10));
    expect((await g1)[0]).toBe(10);
    await turn();
    expect(calls.map((c) => c.arg)).toEqual([1, 2]);
    // The server had only one item for two waiters: the first in line gets it.
    calls[1]!.answer(bytes(20));
    expect((await g2)[0]).toBe(20);
    await turn();
    expect(calls.map((c) => c.arg)).toEqual([1, 2, 1]);
    calls[2]!.answer(bytes(30));
    expect((await g3)[0]).toBe(30);
  });

  it("a failed getMany rejects the callers it was for", async () => {
    const { calls, send } = deferredSends<number, Uint8Array[]>();
    const b = new GetBatcher(send, () => {});
    const g1 = b.get();
    const g2 = b.get();
    calls[0]!.answer(bytes(1));
    await g1;
    await turn();
    calls[1]!.fail(new Error("timeout"));
    await expect(g2).rejects.toThrow("timeout");
  });
});
