import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  AuthError,
  type Dict,
  InvalidError,
  NotFoundError,
  TooLargeError,
} from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

let n = 0;
const fresh = <K = unknown, V = unknown>() => fx.silo.dicts.fromName<K, V>(`d-${++n}`, { createIfMissing: true });

/** Every kind of key and value the Dict promises to round-trip. */
const SAMPLES: Array<[string, unknown]> = [
  ["string", "héllo ✓"],
  ["empty string", ""],
  ["integer", 42],
  ["negative", -7],
  ["float", 3.25],
  ["large number", 2 ** 53 - 1],
  ["bigint", 12345678901234567890n],
  ["huge bigint", -(2n ** 100n)],
  ["true", true],
  ["false", false],
  ["null", null],
  ["Date", new Date("2024-02-29T12:34:56.789Z")],
  ["Uint8Array", new Uint8Array([0, 1, 254, 255])],
  ["array", [1, "two", [3n, null]]],
  ["plain object", { a: 1, nested: { b: [true, "x"] } }],
  ["Map", new Map<unknown, unknown>([["k", 1], [2, { v: new Date(0) }]])],
  ["Set", new Set([1, "a", 3n])],
  ["empty object", {}],
  ["empty Map", new Map()],
];

describe("Dict methods", () => {
  it("put/get/contains/len with defaults and skipIfExists", async () => {
    const d = await fresh<string, number>();
    expect(await d.get("a")).toBeUndefined();
    expect(await d.get("a", -1)).toBe(-1);
    expect(await d.contains("a")).toBe(false);
    expect(await d.put("a", 1)).toBe(true);
    expect(await d.put("a", 2, { skipIfExists: true })).toBe(false);
    expect(await d.get("a")).toBe(1);
    expect(await d.put("a", 3)).toBe(true);
    expect(await d.get("a", -1)).toBe(3);
    expect(await d.contains("a")).toBe(true);
    expect(await d.len()).toBe(1);
  });

  it("skipIfExists is atomic: of many concurrent puts exactly one wins", async () => {
    const d = await fresh<string, number>();
    await using other = fx.server.client();
    const d2 = await other.dicts.fromName<string, number>(d.name!);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? d : d2).put("once", i, { skipIfExists: true })));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(results.indexOf(true)).toBe(await d.get("once"));
  });

  it("update takes pairs, Maps and plain objects; pop returns and removes", async () => {
    const d = await fresh<unknown, unknown>();
    await d.update([["x", 1], ["y", 2]]);
    await d.update(new Map([[3n, "three"]]));
    await d.update({ z: [1] });
    expect(await d.len()).toBe(4);
    expect(await d.pop("x")).toBe(1);
    expect(await d.contains("x")).toBe(false);
    await expect(d.pop("x")).rejects.toBeInstanceOf(NotFoundError);
    expect(await d.pop("x", "fallback")).toBe("fallback");
    expect(await d.pop(3n, undefined)).toBe("three");
    expect(await d.len()).toBe(2);
  });

  it("clear empties the dict; info describes it", async () => {
    const d = await fresh();
    await d.update(Array.from({ length: 50 }, (_, i) => [i, i] as const));
    await d.clear();
    expect(await d.len()).toBe(0);
    expect(await d.get(1)).toBeUndefined();
    const info = await d.info();
    expect(info).toMatchObject({ id: d.id, name: d.name, environment: "main", ephemeral: false });
    expect(info.createdAt).toBeInstanceOf(Date);
  });

  it("keys/values/items page through a dict larger than a page", async () => {
    const d = await fresh<number, string>();
    const total = 2_500;
    for (let i = 0; i < total; i += 1000) {
      await d.update(Array.from({ length: Math.min(1000, total - i) }, (_, j) => [i + j, `v${i + j}`] as [number, string]));
    }
    const keys: number[] = [];
    for await (const k of d.keys({ pageSize: 300 })) keys.push(k);
    expect(keys.sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    const values = new Set<string>();
    for await (const v of d.values({ pageSize: 700 })) values.add(v);
    expect(values.size).toBe(total);
    let items = 0;
    for await (const [k, v] of d.items()) {
      expect(v).toBe(`v${k}`);
      items++;
    }
    expect(items).toBe(total);
  });

  it("len is capped at 100,000", async () => {
    const d = await fresh<number, number>();
    for (let i = 0; i < 100_010; i += 10_000) {
      await d.update(Array.from({ length: Math.min(10_000, 100_010 - i) }, (_, j) => [i + j, 0] as [number, number]));
    }
    expect(await d.len()).toBe(100_000);
  });

  it("many concurrent calls are coalesced and each gets its own answer", async () => {
    const d = await fresh<number, number>();
    await Promise.all(Array.from({ length: 300 }, (_, i) => d.put(i, i * 2)));
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => d.get(i)));
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i * 2));
    // One failing call in a batch fails alone.
    const mixed = await Promise.allSettled([d.get(1), d.pop(99_999), d.get(2)]);
    expect(mixed.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });
});

describe("the HTTP API without the client", () => {
  it("speaks JSON with keys and values as base64 msgpack, interoperating with the client", async () => {
    const d = await fresh<string, number>();
    const b64 = (bytes: number[]) => Buffer.from(bytes).toString("base64");
    const res = await fetch(`${fx.server.url}/v1/dicts/${d.id}/ops`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      // key "a" (0xa1 0x61), value 42 (0x2a)
      body: JSON.stringify({ ops: [{ op: "put", key: b64([0xa1, 0x61]), value: b64([0x2a]) }, { op: "get", key: b64([0xa1, 0x61]) }, { op: "len" }] }),
    });
    expect(await res.json()).toEqual({ results: [{ ok: true }, { ok: b64([0x2a]) }, { ok: 1 }] });
    expect(await d.get("a")).toBe(42);
  });
});

describe("keys and values of every type", () => {
  it.each(SAMPLES)("%s round-trips as a value and as a key", async (_label, sample) => {
    const d = await fresh<unknown, unknown>();
    await d.put("v", sample);
    expect(await d.get("v")).toEqual(sample);
    await d.put(sample, "by key");
    expect(await d.get(sample)).toBe("by key");
    const [[k, v]] = (await collect(d.items())).filter(([, val]) => val === "by key");
    expect(k).toEqual(sample);
    expect(v).toBe("by key");
  });

  it("keeps types apart: 1, 1n, '1', true and [1] are different keys; equal objects are one key", async () => {
    const d = await fresh<unknown, string>();
    for (const k of [1, 1n, "1", true, [1]]) await d.put(k, typeof k);
    expect(await d.len()).toBe(5);
    expect(await d.get(1n)).toBe("bigint");
    await d.put({ a: 1, b: 2 }, "obj");
    expect(await d.get({ a: 1, b: 2 })).toBe("obj");
    expect((await d.get(new Uint8Array([1, 2]))) === undefined).toBe(true);
    const value = await d.get(1);
    expect(value).toBe("number");
  });

  it("Uint8Array values come back as Uint8Array and Maps/objects keep their kind", async () => {
    const d = await fresh<string, unknown>();
    await d.put("m", { map: new Map([["a", 1]]), obj: { a: 1 } });
    const got = (await d.get("m")) as { map: unknown; obj: unknown };
    expect(got.map).toBeInstanceOf(Map);
    expect(got.obj).not.toBeInstanceOf(Map);
    await d.put("b", new Uint8Array(3));
    expect(await d.get("b")).toBeInstanceOf(Uint8Array);
  });
});

describe("bad input gets a typed error and loses nothing", () => {
  const MiB = 1024 * 1024;
  // The wire as any msgpack client would speak it, to test the server's own checks.
  const envelope = new Packr({ useRecords: false });
  const rawKey = (k: unknown) => envelope.pack(k);
  async function rawOps(dictId: string, ops: unknown[]): Promise<Array<{ ok?: unknown; error?: { code: string; message: string } }>> {
    const res = await fetch(`${fx.server.url}/v1/dicts/${dictId}/ops`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`,
        "content-type": "application/msgpack",
        accept: "application/msgpack",
      },
      body: envelope.pack({ ops }),
    });
    expect(res.status).toBe(200);
    return (envelope.unpack(Buffer.from(await res.arrayBuffer())) as { results: Array<{ error?: { code: string; message: string } }> }).results;
  }

  it("rejects bad dict names", async () => {
    await expect(fx.silo.dicts.fromName("bad name!", { createIfMissing: true })).rejects.toBeInstanceOf(InvalidError);
    await expect(fx.silo.dicts.fromName("x".repeat(65), { createIfMissing: true })).rejects.toBeInstanceOf(InvalidError);
    // The server checks too, for callers that are not this client.
    const res = await fetch(`${fx.server.url}/v1/objects/dict/lookup`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "no/slashes", createIfMissing: true }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID");
  });

  it("rejects a value over 100 MiB in the client and in the server; the key stays absent", async () => {
    const d = await fresh<string, Uint8Array>();
    await expect(d.put("big", new Uint8Array(100 * MiB + 1))).rejects.toBeInstanceOf(TooLargeError);
    // Straight to the server, past the client's check: the operation fails, nothing is written.
    const [update] = await rawOps(d.id, [{ op: "update", entries: [[rawKey("a"), rawKey(1)], [rawKey("b"), Buffer.alloc(100 * MiB + 1)]] }]);
    expect(update).toEqual({ error: { code: "TOO_LARGE", message: expect.stringMatching(/100 MiB/) } });
    const [put] = await rawOps(d.id, [{ op: "put", key: rawKey("c"), value: Buffer.alloc(100 * MiB + 1) }]);
    expect(put?.error?.code).toBe("TOO_LARGE");
    expect(await d.len()).toBe(0);
    // Exactly 100 MiB is within the limit.
    const [atLimit] = await rawOps(d.id, [{ op: "put", key: rawKey("max"), value: Buffer.alloc(100 * MiB) }]);
    expect(atLimit).toEqual({ ok: true });
    expect(await d.len()).toBe(1);
    const [longKey, emptyKey] = await rawOps(d.id, [
      { op: "put", key: Buffer.alloc(2000, 0x61), value: rawKey(1) },
      { op: "get", key: Buffer.alloc(0) },
    ]);
    expect([longKey?.error?.code, emptyKey?.error?.code]).toEqual(["INVALID", "INVALID"]);
  });

  it("update is all-or-nothing and limited to 10,000 entries", async () => {
    const d = await fresh<number, unknown>();
    await expect(d.update([[1, "ok"], [2, new Uint8Array(100 * MiB + 1)]])).rejects.toBeInstanceOf(TooLargeError);
    await expect(d.update(Array.from({ length: 10_001 }, (_, i) => [i, i] as [number, number]))).rejects.toBeInstanceOf(InvalidError);
    expect(await d.len()).toBe(0);
  });

  it("rejects keys over 1 KiB encoded", async () => {
    const d = await fresh<string, number>();
    await expect(d.put("k".repeat(2000), 1)).rejects.toBeInstanceOf(InvalidError);
    await expect(d.lock("k".repeat(2000))).rejects.toBeInstanceOf(InvalidError);
  });

  it("missing and deleted dicts are NotFound", async () => {
    await expect(fx.silo.dicts.fromName("never-created")).rejects.toBeInstanceOf(NotFoundError);
    const d = await fresh();
    await d.put(1, 1);
    await fx.silo.dicts.delete(d.name!);
    await expect(d.get(1)).rejects.toBeInstanceOf(NotFoundError);
    await expect(d.put(1, 2)).rejects.toBeInstanceOf(NotFoundError);
    await expect(d.len()).rejects.toBeInstanceOf(NotFoundError);
    await expect(collect(d.keys())).rejects.toBeInstanceOf(NotFoundError);
    // Re-creating the name gives a new, empty dict.
    const again = await fx.silo.dicts.fromName(d.name!, { createIfMissing: true });
    expect(again.id).not.toBe(d.id);
    expect(await again.len()).toBe(0);
  });

  it("a wrong token gets AuthError", async () => {
    const d = await fresh();
    await using bad = fx.server.client({ tokenSecret: "wrong" });
    await expect(bad.dicts.fromName(d.name!)).rejects.toBeInstanceOf(AuthError);
  });

  it("another workspace and another environment never see the dict, by name or by id", async () => {
    const d = await fresh<string, string>();
    await d.put("secret", "s");
    const ws = await fx.silo.workspaces.create("dict-tenant");
    await using tenant = fx.server.client({ tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    await expect(tenant.dicts.fromName(d.name!)).rejects.toBeInstanceOf(NotFoundError);
    await fx.silo.environments.create("dict-dev");
    await using dev = fx.server.client({ environment: "dict-dev" });
    await expect(dev.dicts.fromName(d.name!)).rejects.toBeInstanceOf(NotFoundError);
    // Their own dict of the same name is a different dict.
    const theirs = await tenant.dicts.fromName<string, string>(d.name!, { createIfMissing: true });
    expect(await theirs.get("secret")).toBeUndefined();

    for (const [token, env] of [[ws, "main"], [fx.server.profile, "dict-dev"]] as const) {
      const res = await fetch(`${fx.server.url}/v1/dicts/${d.id}/ops`, {
        method: "POST",
        headers: { authorization: `Bearer ${token.tokenId}:${token.tokenSecret}`, "content-type": "application/json", "x-silo-environment": env },
        body: JSON.stringify({ ops: [{ op: "len" }] }),
      });
      expect(res.status).toBe(404);
    }
    expect(await d.get("secret")).toBe("s");
  });
});

describe("durability", () => {
  it("every put that returned survives kill -9 of the server", async () => {
    const d = await fresh<number, string>();
    await Promise.all(Array.from({ length: 500 }, (_, i) => d.put(i, `value ${i}`)));
    await d.update(Array.from({ length: 100 }, (_, i) => [1000 + i, "u"] as [number, string]));
    await fx.server.restart("SIGKILL");
    await using after = fx.server.client();
    const again: Dict<number, string> = await after.dicts.fromName(d.name!);
    expect(await again.len()).toBe(600);
    expect(await again.get(499)).toBe("value 499");
    expect(await again.get(1099)).toBe("u");
    await fx.silo.close();
    fx.silo = fx.server.client();
  });
});

describe("CLI", () => {
  it("create, list, get, items, clear and delete", async () => {
    expect((await fx.server.cli(["dict", "create", "cli-d"])).code).toBe(0);
    expect((await fx.server.cli(["dict", "create", "cli-d"])).code).toBe(0); // a no-op when it exists
    const list = await fx.server.cli(["dict", "list", "--json"]);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: "cli-d" })]));
    expect((await fx.server.cli(["dict", "list"])).stdout).toContain("cli-d");

    const d = await fx.silo.dicts.fromName<unknown, unknown>("cli-d");
    await d.update([["greeting", "hello"], ["n", 5n], ["when", new Date(0)], ["m", new Map([["a", new Set([1])]])]]);
    for (let i = 0; i < 30; i++) await d.put(`k${String(i).padStart(2, "0")}`, i);

    const get = await fx.server.cli(["dict", "get", "cli-d", "greeting"]);
    expect(get).toMatchObject({ code: 0, stdout: "hello\n" });
    const missing = await fx.server.cli(["dict", "get", "cli-d", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found/);

    const items = JSON.parse((await fx.server.cli(["dict", "items", "cli-d", "--json", "--all"])).stdout) as Array<[unknown, unknown]>;
    expect(items).toHaveLength(34);
    expect(items).toEqual(expect.arrayContaining([["n", "5"], ["when", "1970-01-01T00:00:00.000Z"], ["m", { a: [1] }]]));
    expect(JSON.parse((await fx.server.cli(["dict", "items", "cli-d", "--json"])).stdout)).toHaveLength(20);
    expect(JSON.parse((await fx.server.cli(["dict", "items", "cli-d", "3", "--json"])).stdout)).toHaveLength(3);
    const table = await fx.server.cli(["dict", "items", "cli-d", "50"]);
    expect(table.stdout).toContain("greeting");
    expect(table.stdout).toContain("hello");

    const refused = await fx.server.cli(["dict", "clear", "cli-d"]);
    expect(refused.code).toBe(2);
    expect(await d.len()).toBe(34);
    expect((await fx.server.cli(["dict", "clear", "cli-d", "--yes"])).code).toBe(0);
    expect(await d.len()).toBe(0);

    expect((await fx.server.cli(["dict", "delete", "cli-d", "--yes"])).code).toBe(0);
    const gone = await fx.server.cli(["dict", "delete", "cli-d", "--yes"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/not found/);
    expect((await fx.server.cli(["dict", "delete", "cli-d", "--yes", "--allow-missing"])).code).toBe(0);
    expect((await fx.server.cli(["dict", "get", "cli-d", "x"])).stderr).toMatch(/not found/);
  });

  it("acts in the environment given by -e", async () => {
    await fx.silo.environments.create("cli-env");
    expect((await fx.server.cli(["-e", "cli-env", "dict", "create", "env-only"])).code).toBe(0);
    const inEnv = JSON.parse((await fx.server.cli(["dict", "list", "--json", "-e", "cli-env"])).stdout) as Array<{ name: string }>;
    expect(inEnv.map((d) => d.name)).toEqual(["env-only"]);
    const inMain = JSON.parse((await fx.server.cli(["dict", "list", "--json"])).stdout) as Array<{ name: string }>;
    expect(inMain.map((d) => d.name)).not.toContain("env-only");
  });
});
