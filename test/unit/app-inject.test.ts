import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestClock } from "../../lib/clock.js";
import { type SiloApp, buildApp } from "../../services/app.js";
import { defaultServerOptions } from "../../services/options.js";

/**
 * The server's HTTP contract without a socket: the real app (real SQLite and LMDB in a
 * temporary home) answering `app.inject()`. Auth, validation and error shapes need no network.
 */
let home: string;
let built: SiloApp;
let admin: string;
let member: string;
let memberTokenId: string;
const envelope = new Packr({ useRecords: false });

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "silo-inject-"));
  built = await buildApp({ ...defaultServerOptions(), home, logLevel: "silent" }, { clock: new TestClock() });
  const ws = built.auth.createWorkspace("default");
  const a = built.auth.issueToken(ws.id, "admin", true);
  const m = built.auth.issueToken(ws.id, "member");
  admin = `Bearer ${a.tokenId}:${a.tokenSecret}`;
  member = `Bearer ${m.tokenId}:${m.tokenSecret}`;
  memberTokenId = m.tokenId;
});
afterAll(async () => {
  await built?.shutdown();
  rmSync(home, { recursive: true, force: true });
});

const call = (opts: InjectOptions, auth: string | null = admin) =>
  built.app.inject({ ...opts, headers: { ...(auth ? { authorization: auth } : {}), ...opts.headers } });
const errorOf = (res: LightMyRequestResponse) => (res.json() as { error: { code: string; message: string } }).error;

async function newVolume(name: string): Promise<string> {
  const res = await call({ method: "POST", url: "/v1/objects/volume/lookup", payload: { name, createIfMissing: true } });
  expect(res.statusCode).toBe(200);
  return (res.json() as { id: string }).id;
}

describe("authentication", () => {
  it("refuses requests without a valid token with 401 AUTH, whatever the route", async () => {
    for (const authorization of [null, "Bearer nope", "Basic abc", `${admin}x`, "Bearer tk-unknown:secret"]) {
      // /metrics spans every workspace; /docs, /openapi.json, /healthz, /readyz and /ui are public by design (issue 15).
      for (const url of ["/v1/whoami", "/v1/no-such-route", "/metrics"]) {
        const res = await call({ method: "GET", url }, authorization);
        expect(res.statusCode, `${authorization} ${url}`).toBe(401);
        expect(errorOf(res)).toEqual({ code: "AUTH", message: "Missing, unknown or revoked token" });
      }
    }
  });

  it("a revoked token stops working at once", async () => {
    const ws = built.auth.firstWorkspaceId();
    const t = built.auth.issueToken(ws, "short-lived");
    const auth = `Bearer ${t.tokenId}:${t.tokenSecret}`;
    expect((await call({ method: "GET", url: "/v1/whoami" }, auth)).statusCode).toBe(200);
    expect((await call({ method: "DELETE", url: `/v1/tokens/${t.tokenId}` })).statusCode).toBe(200);
    expect((await call({ method: "GET", url: "/v1/whoami" }, auth)).statusCode).toBe(401);
  });

  it("admin-only operations answer 403 FORBIDDEN to other tokens", async () => {
    const res = await call({ method: "POST", url: "/v1/workspaces", payload: { name: "other" } }, member);
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe("FORBIDDEN");
    const who = (await call({ method: "GET", url: "/v1/whoami" }, member)).json() as { admin: boolean; tokenId: string };
    expect(who).toMatchObject({ admin: false, tokenId: memberTokenId });
  });

  it("an unknown environment is 404 NOT_FOUND, naming the command that creates it", async () => {
    const res = await call({ method: "GET", url: "/v1/whoami", headers: { "x-silo-environment": "staging" } });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).message).toMatch(/silo environment create staging/);
  });
});

describe("validation and error shapes", () => {
  it("a body that breaks the schema is 400 INVALID with the reason", async () => {
    const cases: Array<[string, unknown]> = [
      ["/v1/environments", { name: "has space" }],
      ["/v1/environments", {}],
      ["/v1/objects/dict/lookup", { name: { not: "a string" } }],
      ["/v1/tokens", { label: "x".repeat(201) }],
    ];
    for (const [url, payload] of cases) {
      const res = await call({ method: "POST", url, payload: payload as Record<string, unknown> });
      expect(res.statusCode, `${url} ${JSON.stringify(payload)}`).toBe(400);
      expect(errorOf(res).code).toBe("INVALID");
      expect(errorOf(res).message).toMatch(/^Invalid request: /);
    }
  });

  it("malformed JSON and malformed msgpack are 400 INVALID, not 500", async () => {
    const json = await call({ method: "POST", url: "/v1/environments", payload: "{nope", headers: { "content-type": "application/json" } });
    expect(json.statusCode).toBe(400);
    expect(errorOf(json).code).toBe("INVALID");
    const msgpack = await call({
      method: "POST",
      url: "/v1/environments",
      payload: Buffer.from([0xc1, 0xff, 0x00]),
      headers: { "content-type": "application/msgpack" },
    });
    expect(msgpack.statusCode).toBe(400);
    expect(errorOf(msgpack)).toEqual({ code: "INVALID", message: "Body is not valid msgpack" });
  });

  it("an unknown route is 404 NOT_FOUND naming it; a bad object name is 400; a missing object is 404", async () => {
    const route = await call({ method: "GET", url: "/v1/nothing-here" });
    expect(route.statusCode).toBe(404);
    expect(errorOf(route)).toEqual({ code: "NOT_FOUND", message: "No route GET /v1/nothing-here" });
    const badName = await call({ method: "POST", url: "/v1/objects/dict/lookup", payload: { name: "a/b", createIfMissing: true } });
    expect(badName.statusCode).toBe(400);
    expect(errorOf(badName).message).toMatch(/Invalid dict name "a\/b"/);
    const missing = await call({ method: "POST", url: "/v1/objects/dict/lookup", payload: { name: "absent" } });
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing).code).toBe("NOT_FOUND");
  });

  it("answers errors in msgpack when the caller accepts msgpack", async () => {
    const res = await call({ method: "GET", url: "/v1/nothing-here", headers: { accept: "application/msgpack" } });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toMatch(/application\/msgpack/);
    expect(envelope.unpack(res.rawPayload)).toEqual({ error: { code: "NOT_FOUND", message: "No route GET /v1/nothing-here" } });
  });
});

describe("volume commits and ranged reads", () => {
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const content = Buffer.from("0123456789abcdef");
  let vol: string;

  beforeAll(async () => {
    vol = await newVolume("inject-vol");
    const up = await call({
      method: "POST",
      url: `/v1/volumes/${vol}/blocks`,
      payload: envelope.pack({ blocks: [{ hash: sha(content), data: content }] }),
      headers: { "content-type": "application/msgpack" },
    });
    expect(up.statusCode).toBe(200);
    const commit = await call({
      method: "POST",
      url: `/v1/volumes/${vol}/commit`,
      payload: { baseVersion: 0, changes: [{ op: "put", entry: { path: "dir/f.txt", type: "file", mode: 0o644, size: 16, mtimeMs: 1, blocks: [sha(content)] } }] },
    });
    expect(commit.json()).toEqual({ version: 1 });
  });

  const commit = (changes: unknown[], overwrite?: string) =>
    call({ method: "POST", url: `/v1/volumes/${vol}/commit`, payload: { baseVersion: 1, changes, ...(overwrite && { overwrite }) } });

  it("refuses a commit whose files do not match their blocks, or that breaks the tree, and commits nothing", async () => {
    const bad = [
      [{ op: "put", entry: { path: "g", type: "file", mode: 0o644, size: 16, mtimeMs: 1, blocks: [] } }],
      [{ op: "put", entry: { path: "g", type: "file", mode: 0o644, size: 1, mtimeMs: 1, blocks: ["not-a-hash"] } }],
      [{ op: "put", entry: { path: "../escape", type: "directory", mode: 0o755, size: 0, mtimeMs: 1 } }],
      [{ op: "put", entry: { path: "s", type: "symlink", mode: 0o777, size: 0, mtimeMs: 1, target: "" } }],
      [{ op: "delete", path: "" }],
      [{ op: "put" }],
    ];
    for (const changes of bad) {
      const res = await commit(changes);
      expect(res.statusCode, JSON.stringify(changes)).toBe(400);
      expect(errorOf(res).code).toBe("INVALID");
    }
    expect((await call({ method: "GET", url: `/v1/volumes/${vol}/version` })).json()).toEqual({ version: 1 });
  });

  it("overwrite none refuses an existing file (409); a file cannot replace a directory unless overwrite is replace", async () => {
    const sameFile = [{ op: "put", entry: { path: "dir/f.txt", type: "file", mode: 0o644, size: 0, mtimeMs: 2, blocks: [] } }];
    const res = await commit(sameFile, "none");
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe("ALREADY_EXISTS");
    const overDir = [{ op: "put", entry: { path: "dir", type: "file", mode: 0o644, size: 0, mtimeMs: 2, blocks: [] } }];
    expect((await commit(overDir, "files")).statusCode).toBe(400);
    expect((await call({ method: "GET", url: `/v1/volumes/${vol}/version` })).json()).toEqual({ version: 1 });
  });

  it("a commit past the volume's inode limit is 507 NO_SPACE and changes nothing; a replace over a directory drops its subtree", async () => {
    const res = await call({ method: "POST", url: "/v1/objects/volume/lookup", payload: { name: "tiny", createIfMissing: true, options: { inodeLimit: 3 } } });
    const tiny = (res.json() as { id: string }).id;
    const dir = (path: string) => ({ op: "put", entry: { path, type: "directory", mode: 0o755, size: 0, mtimeMs: 1 } });
    const put = (changes: unknown[], baseVersion: number) => call({ method: "POST", url: `/v1/volumes/${tiny}/commit`, payload: { baseVersion, changes } });
    expect((await put([dir("a/b/c")], 0)).json()).toEqual({ version: 1 });
    const over = await put([dir("d")], 1);
    expect(over.statusCode).toBe(507);
    expect(errorOf(over)).toMatchObject({ code: "NO_SPACE", message: expect.stringMatching(/inode limit of 3/) });
    // Replacing the directory "a" (three inodes) by a file frees two: now "d" fits.
    const file = { op: "put", entry: { path: "a", type: "file", mode: 0o644, size: 0, mtimeMs: 1, blocks: [] } };
    expect((await put([file, dir("d")], 1)).json()).toEqual({ version: 2 });
    const info = (await call({ method: "GET", url: `/v1/volumes/${tiny}/info` })).json() as { inodes: number };
    expect(info.inodes).toBe(2);
    const bad = await call({ method: "POST", url: "/v1/objects/volume/lookup", payload: { name: "huge", createIfMissing: true, options: { inodeLimit: 0 } } });
    expect(bad.statusCode).toBe(400);
  });

  it("serves byte ranges: a-b, a-, -n, clipped at the end; refuses multi-ranges", async () => {
    const get = (range?: string) =>
      call({ method: "GET", url: `/v1/volumes/${vol}/file?path=dir/f.txt`, headers: range ? { range } : {} });
    const whole = await get();
    expect(whole.statusCode).toBe(200);
    expect(whole.body).toBe("0123456789abcdef");
    for (const [range, body, contentRange] of [
      ["bytes=2-5", "2345", "bytes 2-5/16"],
      ["bytes=10-", "abcdef", "bytes 10-15/16"],
      ["bytes=-3", "def", "bytes 13-15/16"],
      ["bytes=14-99", "ef", "bytes 14-15/16"],
    ] as const) {
      const res = await get(range);
      expect(res.statusCode, range).toBe(206);
      expect(res.body, range).toBe(body);
      expect(res.headers["content-range"], range).toBe(contentRange);
    }
    for (const range of ["bytes=0-1,4-5", "bytes=-", "items=0-1"]) {
      const res = await get(range);
      expect(res.statusCode, range).toBe(400);
      expect(errorOf(res).code).toBe("INVALID");
    }
  });
});
