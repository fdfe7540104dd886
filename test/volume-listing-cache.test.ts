import { describe, expect, it } from "vitest";
import { envelope, MSGPACK } from "../protocol/codec.js";
import type { TreePage } from "../protocol/volume.js";
import { eventually } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";

// Versions are kept only while latest; GC runs when the test moves the server's clock.
const ip = inProcessFixture({ volumeRetentionMs: 0, volumeGcIntervalMs: 100 });

interface Caller {
  tokenId: string;
  tokenSecret: string;
  environment?: string;
}

/** GET /list as a mount asks it (msgpack), or as curl does (JSON): status and decoded page. */
async function list(caller: Caller, volumeId: string, query: Record<string, string | number>, format: "msgpack" | "json" = "msgpack") {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`${ip.server.url}/v1/volumes/${volumeId}/list?${qs}`, {
    headers: {
      authorization: `Bearer ${caller.tokenId}:${caller.tokenSecret}`,
      "x-silo-environment": caller.environment ?? "main",
      ...(format === "msgpack" && { accept: MSGPACK }),
    },
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (format === "json") expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const decoded = format === "msgpack" ? envelope.unpack(body) : JSON.parse(body.toString());
  return { status: res.status, page: decoded as TreePage & { error?: { code: string } } };
}

/** The names a listing holds, or its error code. */
async function names(caller: Caller, volumeId: string, query: Record<string, string | number> = {}, format: "msgpack" | "json" = "msgpack"): Promise<string[] | string> {
  const { status, page } = await list(caller, volumeId, query, format);
  return status === 200 ? page.entries.map((e) => e.path) : `${status} ${page.error?.code}`;
}

async function hits(): Promise<number> {
  const metric = ip.server.built!.metrics.getSingleMetric("silo_volume_listing_cache_hits_total");
  return (await metric!.get()).values[0]?.value ?? 0;
}

const admin = (): Caller => ip.server.profile;
const file = (s: string) => Buffer.from(s);

describe("volume listing cache", () => {
  it("a listing at a version stays that version's after commits and a restore; the latest follows each", async () => {
    const vol = await ip.silo.volumes.fromName("lc-versions", { createIfMissing: true });
    await vol.batchUpload().putFile(file("a"), "d/a").putFile(file("b"), "d/b").commit();
    expect(await names(admin(), vol.id, { path: "d" })).toEqual(["d/a", "d/b"]);
    expect(await names(admin(), vol.id, { path: "d", version: 1 })).toEqual(["d/a", "d/b"]);

    await vol.batchUpload().putFile(file("c"), "d/c").commit();
    expect(await names(admin(), vol.id, { path: "d" })).toEqual(["d/a", "d/b", "d/c"]);
    expect(await names(admin(), vol.id, { path: "d", version: 1 })).toEqual(["d/a", "d/b"]);
    // Pages by cursor and size are pages of their own.
    expect(await names(admin(), vol.id, { path: "d", limit: 1 })).toEqual(["d/a"]);
    expect(await names(admin(), vol.id, { path: "d", limit: 1, after: "d/a" })).toEqual(["d/b"]);
    expect(await names(admin(), vol.id, { path: "d", limit: 2, after: "d/a" })).toEqual(["d/b", "d/c"]);

    expect((await vol.restore(1)).version).toBe(3);
    expect(await names(admin(), vol.id, { path: "d" })).toEqual(["d/a", "d/b"]);
    const before = await hits();
    expect(await names(admin(), vol.id, { path: "d", version: 3 })).toEqual(["d/a", "d/b"]);
    expect(await hits(), "version 3, asked as the latest before, now by number: one page").toBe(before + 1);
    expect(await names(admin(), vol.id, { path: "d", version: 2 })).toEqual(["d/a", "d/b", "d/c"]);
    // A fork is a volume of its own from its first version on.
    const fork = await vol.fork("lc-versions-fork", { version: 2 });
    expect(await names(admin(), fork.id, { path: "d", version: 1 })).toEqual(["d/a", "d/b", "d/c"]);
    await fork.removeFile("d/a");
    expect(await names(admin(), fork.id, { path: "d" })).toEqual(["d/b", "d/c"]);
    expect(await names(admin(), vol.id, { path: "d", version: 2 })).toEqual(["d/a", "d/b", "d/c"]);
  });

  it("a version GC dropped is refused though its pages were served from memory before", async () => {
    const vol = await ip.silo.volumes.fromName("lc-gc", { createIfMissing: true });
    await vol.batchUpload().putFile(file("a"), "a").commit();
    expect(await names(admin(), vol.id, { version: 1 })).toEqual(["a"]);
    expect(await names(admin(), vol.id, { version: 1 })).toEqual(["a"]);
    await vol.batchUpload().putFile(file("b"), "b").commit();
    await eventually(async () => {
      await ip.server.clock.advance(100);
      expect((await vol.info()).oldestVersion).toBe(2);
    }, 20_000);
    expect(await names(admin(), vol.id, { version: 1 })).toBe("410 VERSION_GONE");
    expect(await names(admin(), vol.id, { version: 2 })).toEqual(["a", "b"]);
  });

  it("workspaces, environments and a volume deleted and made again under its name never share pages", async () => {
    const mine = await ip.silo.volumes.fromName("lc-same", { createIfMissing: true });
    await mine.batchUpload().putFile(file("m"), "mine").commit();
    const ws = await ip.silo.workspaces.create("lc-tenant");
    const tenant: Caller = { tokenId: ws.tokenId, tokenSecret: ws.tokenSecret };
    await using tenantClient = ip.server.client(tenant);
    const theirs = await tenantClient.volumes.fromName("lc-same", { createIfMissing: true });
    await theirs.batchUpload().putFile(file("t"), "theirs").commit();
    await ip.silo.environments.create("lc-dev");
    await using devClient = ip.server.client({ environment: "lc-dev" });
    const dev = await devClient.volumes.fromName("lc-same", { createIfMissing: true });
    await dev.batchUpload().putFile(file("d"), "dev").commit();

    for (let round = 0; round < 2; round++) {
      expect(await names(admin(), mine.id, { version: 1 })).toEqual(["mine"]);
      expect(await names(tenant, theirs.id, { version: 1 })).toEqual(["theirs"]);
      expect(await names({ ...admin(), environment: "lc-dev" }, dev.id, { version: 1 })).toEqual(["dev"]);
      // Knowing the id of a listing held in memory does not help either.
      expect(await names(tenant, mine.id, { version: 1 })).toBe("404 NOT_FOUND");
      expect(await names({ ...admin(), environment: "lc-dev" }, mine.id, { version: 1 })).toBe("404 NOT_FOUND");
    }

    await ip.silo.volumes.delete("lc-same");
    expect(await names(admin(), mine.id, { version: 1 })).toBe("404 NOT_FOUND");
    const again = await ip.silo.volumes.fromName("lc-same", { createIfMissing: true });
    await again.batchUpload().putFile(file("n"), "new").commit();
    expect(await names(admin(), again.id, { version: 1 })).toEqual(["new"]);
  });

  it("JSON callers get JSON for a page held encoded as msgpack", async () => {
    const vol = await ip.silo.volumes.fromName("lc-json", { createIfMissing: true });
    await vol.batchUpload().putFile(file("x"), "x").commit();
    expect(await names(admin(), vol.id, { version: 1 })).toEqual(["x"]);
    expect(await names(admin(), vol.id, { version: 1 }, "json")).toEqual(["x"]);
  });
});
