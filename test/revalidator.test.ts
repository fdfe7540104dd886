import { describe, expect, it } from "vitest";
import { Revalidator } from "../fuse/nfs/close-to-open.js";
import type { MountedVolume } from "../fuse/volume/mounted-volume.js";

/** A mount whose catch-ups the test finishes one by one, to see which callers each one answers. */
function controlledMount() {
  const pending: Array<{ finish: () => void; fail: (err: Error) => void }> = [];
  const mv = {
    revalidate: () =>
      new Promise<{ version: number; changed: boolean }>((resolve, reject) =>
        pending.push({ finish: () => resolve({ version: pending.length, changed: true }), fail: reject }),
      ),
  } as unknown as MountedVolume;
  return { mv, pending };
}
const settled = () => new Promise((r) => setImmediate(r));

describe("Revalidator (the catch-ups of a close-to-open mount)", () => {
  it("callers that ask while a catch-up runs wait for the next one, which they all share", async () => {
    const { mv, pending } = controlledMount();
    const r = new Revalidator(mv);
    const done: string[] = [];
    const first = r.revalidate().then(() => done.push("first"));
    const second = r.revalidate().then(() => done.push("second"));
    const third = r.revalidate().then(() => done.push("third"));
    await settled();
    expect(pending.length).toBe(1);
    pending[0]!.finish();
    await first;
    await settled();
    // The one in flight may have read the server before the later callers' events: they wait.
    expect(done).toEqual(["first"]);
    expect(pending.length).toBe(2);
    pending[1]!.finish();
    await Promise.all([second, third]);
    expect(done).toEqual(["first", "second", "third"]);
    expect(pending.length).toBe(2);
  });

  it("a failed catch-up fails its callers only; the queued one still runs", async () => {
    const { mv, pending } = controlledMount();
    const r = new Revalidator(mv);
    const first = r.revalidate();
    const second = r.revalidate();
    await settled();
    pending[0]!.fail(new Error("server away"));
    await expect(first).rejects.toThrow("server away");
    await settled();
    expect(pending.length).toBe(2);
    pending[1]!.finish();
    await expect(second).resolves.toBeUndefined();
  });

  it("olderThan follows the injected clock from the start of the last catch-up", async () => {
    let now = 1_000;
    const { mv, pending } = controlledMount();
    const r = new Revalidator(mv, () => now);
    expect(r.olderThan(1_000)).toBe(true);
    const p = r.revalidate();
    now += 999;
    expect(r.olderThan(1_000)).toBe(false);
    now += 2;
    expect(r.olderThan(1_000)).toBe(true);
    pending[0]!.finish();
    await p;
  });
});
