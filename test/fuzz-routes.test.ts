/**
 * Property-based fuzzing of every route (enumerated from the server's own OpenAPI document, so
 * new routes are covered without touching this file): generated bad input — path parameters,
 * query strings, bodies in JSON, msgpack or raw bytes, with and without credentials — never
 * gets a 5xx or no answer, and every error has the `{"error":{"code","message"}}` shape.
 * Unauthenticated requests get 401 whatever else is wrong with them.
 */
import { connect } from "node:net";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { beforeAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const envelope = new Packr({ useRecords: false });

interface Answer {
  status: number;
  headers: string;
  body: Buffer;
}

/**
 * When a request's silence counts as a hang: after the server answered HANG_PROBES liveness
 * probes sent one after another (each PROBE_GAP_MS after the last answer) since the request went
 * out. A fixed timeout fires on a loaded machine where every answer is slow; counting the
 * server's answers to others instead measures the wait in the server's own pace (about 20 s on
 * an idle machine, longer exactly when the server is slower).
 */
const HANG_PROBES = 50;
const PROBE_GAP_MS = 400;

/** One raw HTTP/1.1 request (nothing between the test and the server's parser); rejects if the server hangs on it. */
async function send(head: string, body: Buffer = Buffer.alloc(0)): Promise<Answer> {
  const answer = rawRequest(head, body);
  let answered = false;
  const line = head.split("\r\n")[0]!.slice(0, 200);
  const watch = async (): Promise<never> => {
    const started = Date.now();
    for (let probes = 0; probes < HANG_PROBES; probes++) {
      await new Promise((r) => setTimeout(r, PROBE_GAP_MS));
      if (answered) return new Promise<never>(() => {});
      const probe = await rawRequest("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      if (probe.status !== 200) throw new Error(`the server stopped answering /healthz (${probe.status}) while waiting for: ${line}`);
    }
    throw new Error(`no answer while the server answered ${HANG_PROBES} other requests (${Date.now() - started} ms): ${line}`);
  };
  return Promise.race([answer.finally(() => (answered = true)), watch()]);
}

function rawRequest(head: string, body: Buffer = Buffer.alloc(0)): Promise<Answer> {
  const url = new URL(fx.server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on("error", () => undefined);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("close", () => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf("\r\n\r\n");
      if (split < 0) return reject(new Error(`connection closed without an answer: ${head.split("\r\n")[0]!.slice(0, 200)}`));
      const headers = raw.subarray(0, split).toString("latin1");
      resolve({ status: Number(headers.split(" ")[1]), headers, body: raw.subarray(split + 4) });
    });
    socket.write(head);
    // Not end(): a half-closed connection counts as a caller that hung up (waiting routes stop for it).
    socket.write(body);
  });
}

function errorOf(a: Answer): { code: unknown; message: unknown } | undefined {
  try {
    const parsed = (/content-type: application\/msgpack/i.test(a.headers) ? envelope.unpack(a.body) : JSON.parse(a.body.toString())) as {
      error?: { code: unknown; message: unknown };
    };
    return parsed.error;
  } catch {
    return undefined;
  }
}

/** The contract every answer keeps, whatever was asked. */
function checkAnswer(a: Answer, what: string, authenticated: boolean): void {
  expect(a.status, `${what} -> ${a.status} ${a.body.toString().slice(0, 300)}`).toBeLessThan(500);
  // 431 is the one exception: Node refuses an over-long head before any header (the token too) is parsed.
  if (!authenticated && a.status !== 431) expect(a.status, what).toBe(401);
  if (a.status >= 400) {
    const err = errorOf(a);
    expect(typeof err?.code, `${what}: error shape of ${a.body.toString().slice(0, 200)}`).toBe("string");
    expect(typeof err?.message, what).toBe("string");
  }
}

/** Percent-encodes every byte of the UTF-8 (a lone surrogate as its WTF-8 bytes, which a server must refuse to decode). */
const pct = (s: string) =>
  [...s]
    .map((ch) => {
      const code = ch.codePointAt(0)!;
      if (/^[A-Za-z0-9_.~-]$/.test(ch)) return ch;
      const bytes = code >= 0xd800 && code <= 0xdfff ? Buffer.from([0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]) : Buffer.from(ch);
      return [...bytes].map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`).join("");
    })
    .join("");

interface Route {
  method: string;
  path: string;
  /** False for the public routes (health checks): found by asking each route once without a token. */
  needsToken: boolean;
  query: string[];
  bodyProps: string[];
}

const garbageText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom("", "1e400", "Infinity", "-Infinity", "NaN", "-1", "0", "1.5", "null", "true", "0x10", "99999999999999999999999", "\ud800", "a\u0000b", "%", "%zz", "../..", "x".repeat(3000), "x".repeat(70_000)),
);
const garbageJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, "", "\ud800", "x".repeat(20_000), "not base64!", "AAAA", [], {}, [null], { type: "Buffer", data: [1, 2] }),
  garbageText,
  fc.integer(),
  fc.double(),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 2 }),
);

describe("every route, fuzzed", () => {
  const routes: Route[] = [];
  const ids: Record<string, string> = {};
  let auth = "";

  beforeAll(async () => {
    const silo = fx.silo;
    ids.queue = (await silo.queues.fromName("fz-q", { createIfMissing: true })).id;
    ids.dict = (await silo.dicts.fromName("fz-d", { createIfMissing: true })).id;
    ids.volume = (await silo.volumes.fromName("fz-v", { createIfMissing: true })).id;
    ids.secret = (await silo.secrets.create("fz-s", { A: "1" })).id;
    auth = `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`;
    const docs = await send(`GET /openapi.json HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
    const spec = JSON.parse(docs.body.toString()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; requestBody?: { content: Record<string, { schema?: { properties?: Record<string, unknown> } }> } }>>;
    };
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const props = Object.values(op.requestBody?.content ?? {})[0]?.schema?.properties ?? {};
        routes.push({
          method: method.toUpperCase(),
          path,
          needsToken: true,
          query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
          bodyProps: Object.keys(props),
        });
      }
    }
    expect(routes.length).toBeGreaterThan(40);
    for (const route of routes) {
      const probe = await send(`${route.method} ${pathOf(route, {})} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      route.needsToken = probe.status === 401;
    }
    // Every data route needs a token; only a few operational ones are public.
    expect(routes.filter((r) => !r.needsToken).every((r) => !r.path.startsWith("/v1/"))).toBe(true);
  });

  /** A path for `route`: real ids of the right kind often, so validation past the lookup is reached too. */
  const pathOf = (route: Route, params: Record<string, string | undefined>) =>
    route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const given = params[name];
      // A '%' stays raw (so bad escapes reach the server); everything else is encoded, so the request line stays valid HTTP.
      if (given !== undefined) return given.split("%").map(pct).join("%");
      const kind = route.path.split("/")[2]!.replace(/s$/, "");
      if (name === "id") return ids[kind] ?? ids.queue!;
      if (name === "kind") return "queue";
      if (name === "hash") return "0".repeat(64);
      return "x";
    });

  it("generated bad input never gets a 5xx, a hang or an error of another shape", async () => {
    const request = fc.record({
      route: fc.integer({ min: 0, max: 10_000 }),
      params: fc.dictionary(fc.constantFrom("id", "kind", "name", "hash", "pinId"), garbageText, { maxKeys: 2 }),
      query: fc.array(fc.tuple(fc.nat(), garbageText), { maxLength: 3 }),
      body: fc.oneof(
        fc.dictionary(fc.string({ maxLength: 8 }), garbageJson, { maxKeys: 4 }).map((b) => ({ extra: b })),
        fc.record({ picks: fc.array(fc.tuple(fc.nat(), garbageJson), { maxLength: 4 }) }),
        fc.record({ raw: garbageJson }),
      ),
      encoding: fc.constantFrom("json", "json", "msgpack", "octet", "text", "none"),
      authenticated: fc.integer({ min: 0, max: 9 }).map((n) => n > 0),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const route = routes[r.route % routes.length]!;
        const q = r.query.filter(() => route.query.length > 0).map(([i, v]) => `${route.query[i % route.query.length]}=${pct(v)}`);
        let body: unknown;
        if ("extra" in r.body) body = r.body.extra;
        else if ("picks" in r.body) body = Object.fromEntries(r.body.picks.filter(() => route.bodyProps.length > 0).map(([i, v]) => [route.bodyProps[i % route.bodyProps.length]!, v]));
        else body = r.body.raw;
        // Waiting routes wait at most their (small) timeout here, so a wait is never mistaken for a hang.
        if (body && typeof body === "object" && !Array.isArray(body)) Object.assign(body, { timeoutMs: 50, waitMs: 50 });
        const bytes =
          r.encoding === "none" ? Buffer.alloc(0) : r.encoding === "msgpack" ? envelope.pack(body) : r.encoding === "octet" ? Buffer.from(JSON.stringify(body)) : Buffer.from(JSON.stringify(body) ?? "");
        const type = { json: "application/json", msgpack: "application/msgpack", octet: "application/octet-stream", text: "text/plain", none: "" }[r.encoding];
        const path = pathOf(route, r.params) + (q.length ? `?${q.join("&")}` : "");
        const head =
          `${route.method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
          (r.authenticated ? `Authorization: ${auth}\r\n` : "Authorization: Bearer tk-nobody:wrong\r\n") +
          (type ? `Content-Type: ${type}\r\n` : "") +
          (bytes.length || route.method !== "GET" ? `Content-Length: ${bytes.length}\r\n` : "") +
          `Accept: ${r.encoding === "msgpack" ? "application/msgpack" : "application/json"}\r\n\r\n`;
        const answer = await send(head, route.method === "GET" && !bytes.length ? undefined : bytes);
        checkAnswer(answer, `${route.method} ${path.slice(0, 200)} [${r.encoding}] ${JSON.stringify(body)?.slice(0, 200)}`, r.authenticated || !route.needsToken);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1500), endOnFailure: true },
    );
  }, 600_000);

  it("known edges on every route: huge numbers, long keys and cursors, lone surrogates, wrong content types, invalid base64", async () => {
    const values = ["1e400", "Infinity", "-1", "x".repeat(12_000)];
    const bodies: unknown[] = [null, "x", { key: "not base64!", ttlMs: 1000, waitMs: 0 }, { key: Buffer.alloc(4000).toString("base64"), ttlMs: 1000, waitMs: 0, leaseId: "x" }];
    for (const route of routes) {
      for (const v of values) {
        for (const name of route.query) {
          const a = await send(`${route.method} ${pathOf(route, {})}?${name}=${v} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${auth}\r\nContent-Length: 0\r\n\r\n`);
          checkAnswer(a, `${route.method} ${route.path} ?${name}=${v.slice(0, 20)}`, true);
        }
      }
      if (route.bodyProps.length === 0 && route.method === "GET") continue;
      const props = route.bodyProps;
      const edgeBodies = [
        ...bodies,
        ...props.flatMap((p) => [{ [p]: null }, { [p]: "\ud800x" }, { [p]: "x".repeat(12_000) }, { [p]: Number.POSITIVE_INFINITY }, { [p]: ["%%%"] }]),
      ];
      for (const body of edgeBodies) {
        for (const type of ["application/json", "application/msgpack", "application/octet-stream"]) {
          const bytes = type === "application/msgpack" ? envelope.pack(body) : Buffer.from(JSON.stringify(body) ?? "null");
          const a = await send(
            `${route.method} ${pathOf(route, {})} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${auth}\r\nContent-Type: ${type}\r\nContent-Length: ${bytes.length}\r\n\r\n`,
            bytes,
          );
          checkAnswer(a, `${route.method} ${route.path} [${type}] ${JSON.stringify(body)?.slice(0, 100)}`, true);
        }
      }
    }
  }, 600_000);

  it("the input contract, case by case: lone surrogates, invalid base64 and null refused; bytes are base64 in JSON both ways", async () => {
    // Fresh objects: the fuzzing above may have deleted its own.
    const q = (await fx.silo.queues.fromName("contract-q", { createIfMissing: true })).id;
    const dict = (await fx.silo.dicts.fromName("contract-d", { createIfMissing: true })).id;
    const post = (path: string, body: string) =>
      send(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, Buffer.from(body));
    const get = (path: string) => send(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${auth}\r\n\r\n`);
    // A lone surrogate (JSON escape, or its WTF-8 bytes in a query) is refused, not stored as U+FFFD.
    expect((await post(`/v1/queues/${q}/put`, `{"items":["AAAA"],"partition":"\\ud800"}`)).status).toBe(400);
    expect((await get(`/v1/queues/${q}/len?partition=%ED%A0%80`)).status).toBe(400);
    expect((await get(`/v1/queues/${q}/len?partition=${pct("\ufffd")}`)).status).toBe(200);
    // Invalid base64 is refused; null is not a default.
    expect((await post(`/v1/queues/${q}/put`, `{"items":["not base64!"]}`)).status).toBe(400);
    expect((await post(`/v1/queues/${q}/get`, `{"n":null,"block":false}`)).status).toBe(400);
    expect((await post(`/v1/dicts/${dict}/scan`, `{"limit":null}`)).status).toBe(400);
    // Bytes go out as base64 in JSON, in queues as in dicts.
    expect((await post(`/v1/queues/${q}/put`, `{"items":["3q2+7w=="],"partition":"b64"}`)).status).toBe(200);
    const got = await post(`/v1/queues/${q}/get`, `{"partition":"b64","block":false}`);
    expect(JSON.parse(got.body.toString()).items).toEqual(["3q2+7w=="]);
    expect((await post(`/v1/dicts/${dict}/ops`, `{"ops":[{"op":"put","key":"AQ==","value":"3q2+7w=="}]}`)).status).toBe(200);
    const read = await post(`/v1/dicts/${dict}/ops`, `{"ops":[{"op":"get","key":"AQ=="}]}`);
    expect(JSON.parse(read.body.toString()).results).toEqual([{ ok: "3q2+7w==" }]);
  });

  it("what the HTTP parser refuses (long URL, huge header, bad escape) has the error shape, and 401 comes first", async () => {
    const cases = [
      `GET /v1/queues/${"x".repeat(5_000)}/info HTTP/1.1`,
      `GET /v1/queues/%zz/info HTTP/1.1`,
      `GET /v1/objects/queue?maxObjects=%E0%A4%A HTTP/1.1`,
    ];
    for (const line of cases) {
      const ok = await send(`${line}\r\nHost: x\r\nConnection: close\r\nAuthorization: ${auth}\r\n\r\n`);
      checkAnswer(ok, line.slice(0, 60), true);
      const anon = await send(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`);
      checkAnswer(anon, `unauthenticated ${line.slice(0, 60)}`, false);
    }
    // A header block over Node's limit is refused before any header is parsed (so before auth): shape only.
    // The 16 MiB one is still arriving when the server refuses it: the answer must not be lost to
    // a reset (a socket closed with unread bytes resets the connection, and the caller's kernel
    // drops the 431 it had not yet read).
    const heads = [
      `GET /v1/whoami HTTP/1.1\r\nHost: x\r\nX-Big: ${"x".repeat(100_000)}`,
      `GET /v1/queues/${"x".repeat(20_000)}/info HTTP/1.1\r\nHost: x`,
      `GET /v1/objects/queue?createdBefore=${"x".repeat(16 * 1024 * 1024)} HTTP/1.1\r\nHost: x`,
    ];
    for (const head of heads) {
      const huge = await send(`${head}\r\nConnection: close\r\n\r\n`);
      expect(huge.status).toBe(431);
      expect(typeof errorOf(huge)?.code).toBe("string");
    }
  });
});
