import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, InvalidError, NotFoundError } from "../client/index.js";
import { JsonLinesChild } from "./helpers/child.js";
import Database from "better-sqlite3";
import { eventually } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";

// Named-object behaviour shared by every kind, shown with dicts.
// Short: the creator heart-beats every third of it in real time, and the test waits for those beats.
const EPHEMERAL_TIMEOUT_MS = 300;
const CHILD = join(import.meta.dirname, "fixtures/dict-child.mjs");

// In this process on a TestClock: creation times and heartbeat timeouts move only when the test advances time.
const fx = inProcessFixture({ ephemeralTimeoutMs: EPHEMERAL_TIMEOUT_MS });

/** The server's record of an object's last heartbeat (read from its SQLite file). */
function lastHeartbeat(id: string): number | undefined {
  const db = new Database(`${fx.server.home}/data/meta.sqlite`, { readonly: true });
  try {
    return (db.prepare("SELECT heartbeat_at FROM objects WHERE id = ?").pluck().get(id) as number | undefined) ?? undefined;
  } finally {
    db.close();
  }
}

/**
 * Moves the server's time forward by `ms` in steps of a third of the timeout, each time waiting
 * until the object's creator has sent a heartbeat at the new time (its heartbeats run on real time).
 */
async function advanceWithHeartbeats(id: string, ms: number): Promise<void> {
  const { clock } = fx.server;
  for (let done = 0; done < ms; done += EPHEMERAL_TIMEOUT_MS / 3) {
    await clock.advance(EPHEMERAL_TIMEOUT_MS / 3);
    await eventually(() => expect(lastHeartbeat(id)).toBe(clock.now()), 10_000, 20);
  }
}

/** Whether an object id still exists on the server. */
async function exists(id: string): Promise<boolean> {
  const res = await fetch(`${fx.server.url}/v1/objects/dict/${id}`, {
    headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}` },
  });
  if (res.status === 404) return false;
  expect(res.status).toBe(200);
  return true;
}

describe("named objects", () => {
  it("fromName finds existing objects and creates only with createIfMissing", async () => {
    await expect(fx.silo.dicts.fromName("named-a")).rejects.toBeInstanceOf(NotFoundError);
    const created = await fx.silo.dicts.fromName("named-a", { createIfMissing: true });
    const found = await fx.silo.dicts.fromName("named-a");
    expect(found.id).toBe(created.id);
    expect(found.name).toBe("named-a");
    expect(found.ephemeral).toBe(false);
  });

  it("objects.create fails on an existing name unless allowExisting", async () => {
    await fx.silo.dicts.objects.create("named-b");
    await expect(fx.silo.dicts.objects.create("named-b")).rejects.toBeInstanceOf(AlreadyExistsError);
    await fx.silo.dicts.objects.create("named-b", { allowExisting: true });
    await expect(fx.silo.dicts.objects.create("no spaces")).rejects.toBeInstanceOf(InvalidError);
  });

  it("objects.list is newest first, with maxObjects and createdBefore", async () => {
    await fx.silo.environments.create("listing");
    await using env = fx.server.client({ environment: "listing" });
    for (const name of ["l1", "l2", "l3"]) {
      await env.dicts.objects.create(name);
      await fx.server.clock.advance(20);
    }
    const all = await env.dicts.objects.list();
    expect(all.map((d) => d.name)).toEqual(["l3", "l2", "l1"]);
    expect((await env.dicts.objects.list({ maxObjects: 2 })).map((d) => d.name)).toEqual(["l3", "l2"]);
    const before = await env.dicts.objects.list({ createdBefore: all[1]!.createdAt });
    expect(before.map((d) => d.name)).toEqual(["l1"]);
    expect((await env.dicts.objects.list({ createdBefore: all[0]!.createdAt.toISOString() })).map((d) => d.name)).toEqual(["l2", "l1"]);
  });

  it("delete removes the object and its data; allowMissing tolerates absence", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("named-c", { createIfMissing: true });
    await d.put("x", 1);
    await fx.silo.dicts.delete("named-c");
    await expect(fx.silo.dicts.fromName("named-c")).rejects.toBeInstanceOf(NotFoundError);
    await expect(fx.silo.dicts.delete("named-c")).rejects.toBeInstanceOf(NotFoundError);
    await fx.silo.dicts.delete("named-c", { allowMissing: true });
    expect(await exists(d.id)).toBe(false);
  });

  it("rename keeps the data under the new name; a taken name is refused", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("old-name", { createIfMissing: true });
    await d.put("x", 7);
    await fx.silo.dicts.objects.create("taken");
    await expect(fx.silo.dicts.objects.rename("old-name", "taken")).rejects.toBeInstanceOf(AlreadyExistsError);
    await fx.silo.dicts.objects.rename("old-name", "new-name");
    await expect(fx.silo.dicts.fromName("old-name")).rejects.toBeInstanceOf(NotFoundError);
    const renamed = await fx.silo.dicts.fromName<string, number>("new-name");
    expect(renamed.id).toBe(d.id);
    expect(await renamed.get("x")).toBe(7);
  });
});

describe("ephemeral objects", () => {
  it("live while open, are not listed, and are deleted when closed (await using)", async () => {
    let id: string;
    {
      await using d = await fx.silo.dicts.ephemeral<string, number>();
      id = d.id;
      expect(d.ephemeral).toBe(true);
      expect(d.name).toBeNull();
      await d.put("a", 1);
      // Heartbeats keep it alive well past the timeout.
      await advanceWithHeartbeats(id, EPHEMERAL_TIMEOUT_MS * 2);
      expect(await d.get("a")).toBe(1);
      expect((await fx.silo.dicts.objects.list()).some((x) => x.id === id)).toBe(false);
    }
    expect(await exists(id)).toBe(false);
  });

  it("are reaped when the creating process dies without closing them", async () => {
    const child = new JsonLinesChild(CHILD, ["ephemeral"], fx.server.env);
    try {
      const { id } = await child.next<{ id: string }>();
      await advanceWithHeartbeats(id, EPHEMERAL_TIMEOUT_MS * 1.5);
      expect(await exists(id)).toBe(true);
      await child.kill("SIGKILL");
      // Dead: no heartbeat comes; up to the timeout it still lives, past it the reaper deletes it.
      await fx.server.clock.advance(EPHEMERAL_TIMEOUT_MS - 1);
      expect(await exists(id)).toBe(true);
      await eventually(async () => {
        await fx.server.clock.advance(EPHEMERAL_TIMEOUT_MS / 4);
        expect(await exists(id)).toBe(false);
      });
    } finally {
      await child.kill();
    }
  });
});
