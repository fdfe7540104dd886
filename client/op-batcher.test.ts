import { describe, expect, it, vi } from "vitest";
import { OpBatcher } from "./op-batcher.js";

/** A `send` the test answers by hand, recording each request's operations. */
function manualSend<Op, R>() {
  const requests: Array<{ ops: Op[]; answer(results: R[]): void; fail(err: unknown): void }> = [];
  const send = (ops: Op[]) =>
    new Promise<R[]>((answer, fail) => {
      requests.push({ ops, answer, fail });
    });
  return { requests, send };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("OpBatcher", () => {
  it("sends everything issued in one turn as one request and hands each caller its own result", async () => {
    const { requests, send } = manualSend<number, string>();
    const b = new OpBatcher(send, { maxInFlight: 4, maxOps: 100, maxBytes: 1000 });
    const results = [1, 2, 3].map((n) => b.run(n, 1));
    await turn();
    expect(requests.map((r) => r.ops)).toEqual([[1, 2, 3]]);
    requests[0]!.answer(["one", "two", "three"]);
    expect(await Promise.all(results)).toEqual(["one", "two", "three"]);
  });

  it("splits at maxOps and closes a batch before it would pass maxBytes; a bigger op goes alone", async () => {
    const { requests, send } = manualSend<string, null>();
    const b = new OpBatcher(send, { maxInFlight: 10, maxOps: 2, maxBytes: 10 });
    for (const [op, bytes] of [["a", 1], ["b", 1], ["c", 1], ["d", 6], ["e", 5], ["huge", 50], ["f", 1]] as const) void b.run(op, bytes);
    await turn();
    expect(requests.map((r) => r.ops)).toEqual([["a", "b"], ["c", "d"], ["e"], ["huge"], ["f"]]);
  });

  it("holds operations while maxInFlight requests are out, then sends them together", async () => {
    const { requests, send } = manualSend<number, number>();
    const b = new OpBatcher(send, { maxInFlight: 1, maxOps: 100, maxBytes: 1000 });
    const first = b.run(1, 1);
    await turn();
    const later = [2, 3, 4].map((n) => b.run(n, 1));
    await turn();
    expect(requests).toHaveLength(1);
    requests[0]!.answer([10]);
    expect(await first).toBe(10);
    await vi.waitFor(() => expect(requests).toHaveLength(2));
    expect(requests.map((r) => r.ops)).toEqual([[1], [2, 3, 4]]);
    requests[1]!.answer([20, 30, 40]);
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it("a failed request fails exactly the operations it carried", async () => {
    const { requests, send } = manualSend<number, number>();
    const b = new OpBatcher(send, { maxInFlight: 2, maxOps: 1, maxBytes: 1000 });
    const one = b.run(1, 1);
    const two = b.run(2, 1);
    await turn();
    requests[0]!.fail(new Error("connection reset"));
    requests[1]!.answer([2]);
    await expect(one).rejects.toThrow("connection reset");
    expect(await two).toBe(2);
  });
});
