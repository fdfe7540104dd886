import { describe, expect, it } from "vitest";
import { CoalescedSyncs } from "./coalesced-syncs.js";

/** Counts directory fsyncs and holds each until the test releases it. */
class HeldSyncs {
  readonly started: string[] = [];
  private readonly held: Array<() => void> = [];
  private onStart: (() => void) | undefined;

  readonly fsync = (dir: string): Promise<void> => {
    this.started.push(dir);
    this.onStart?.();
    return new Promise<void>((r) => this.held.push(r));
  };

  async startedCount(n: number): Promise<void> {
    while (this.started.length < n) await new Promise<void>((r) => (this.onStart = r));
  }

  releaseOne(): void {
    this.held.shift()?.();
  }
}

describe("CoalescedSyncs", () => {
  it("callers that arrive together share one fsync of their directory", async () => {
    const h = new HeldSyncs();
    const syncs = new CoalescedSyncs(h.fsync);
    const done = [syncs.sync("/a"), syncs.sync("/a"), syncs.sync("/a"), syncs.sync("/b")];
    await h.startedCount(2);
    expect(h.started.sort()).toEqual(["/a", "/b"]);
    h.releaseOne();
    h.releaseOne();
    await Promise.all(done);
    expect(h.started).toHaveLength(2);
  });

  it("a caller arriving once a sync has started gets a new one, after it (its rename may be later)", async () => {
    const h = new HeldSyncs();
    const syncs = new CoalescedSyncs(h.fsync);
    let firstDone = false;
    const first = syncs.sync("/a").then(() => (firstDone = true));
    await h.startedCount(1);
    let laterDone = false;
    const later = [syncs.sync("/a"), syncs.sync("/a")];
    void Promise.all(later).then(() => (laterDone = true));
    h.releaseOne();
    await first;
    expect(firstDone).toBe(true);
    // The later callers wait for a second fsync that began after the first ended.
    await h.startedCount(2);
    expect(laterDone).toBe(false);
    h.releaseOne();
    await Promise.all(later);
    expect(h.started).toEqual(["/a", "/a"]);
  });

  it("a failed fsync fails its callers, and the next caller gets a fresh attempt", async () => {
    let calls = 0;
    const syncs = new CoalescedSyncs(async () => {
      calls++;
      if (calls === 1) throw new Error("EIO");
    });
    await expect(syncs.sync("/a")).rejects.toThrow("EIO");
    await syncs.sync("/a");
    expect(calls).toBe(2);
  });
});
