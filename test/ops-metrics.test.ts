import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { eventually } from "./helpers/eventually.js";
import { parsePrometheus, sampleValue } from "./helpers/prometheus.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";

// GC every 100 ms; unreferenced blocks are kept 1.5 s (an upload's commit follows it); only the latest version is retained.
const fx = siloServerFixture(["--volume-retention-ms", "0", "--volume-block-grace-ms", "1500", "--volume-gc-interval-ms", "100"]);

const bearer = (p: { tokenId: string; tokenSecret: string }) => ({ authorization: `Bearer ${p.tokenId}:${p.tokenSecret}` });

async function scrape(): Promise<ReturnType<typeof parsePrometheus>> {
  const res = await fetch(`${fx.server.url}/metrics`, { headers: bearer(fx.server.profile) });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return parsePrometheus(await res.text());
}

describe("health", () => {
  it("/healthz and /readyz answer without a token", async () => {
    const live = await fetch(`${fx.server.url}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${fx.server.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: Array<{ name: string; ok: boolean }> };
    expect(body.status).toBe("ready");
    expect(body.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["serving", "disk", "meta", "kv", "volumes"]));
    expect(body.checks.every((c) => c.ok)).toBe(true);
  });

  // A real full disk: a small tmpfs as the home, filled by a file (mounting needs root, as CI runs).
  it.skipIf(process.getuid?.() !== 0)("/readyz answers 503 while the home's file system is full, 200 again once space is freed", async () => {
    const home = mkdtempSync(join(tmpdir(), "silo-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", home]);
    const server = new SiloServer(home, ["--ready-min-free-bytes", String(4 * 1024 * 1024)]);
    try {
      await server.launch();
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      // Fill it: dd stops at ENOSPC (exit status 1), leaving the file system with no room.
      try {
        execFileSync("dd", ["if=/dev/zero", `of=${join(home, "fill")}`, "bs=1M"], { stdio: "ignore" });
      } catch {
        /* ENOSPC is the point */
      }
      const full = await fetch(`${server.url}/readyz`);
      expect(full.status).toBe(503);
      const body = (await full.json()) as { status: string; checks: Array<{ name: string; ok: boolean; detail?: string }> };
      expect(body.status).toBe("not ready");
      expect(body.checks.find((c) => c.name === "disk")).toMatchObject({ ok: false, detail: expect.stringMatching(/bytes free/) });
      // Liveness is not readiness: the process still answers.
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      rmSync(join(home, "fill"));
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    } finally {
      await server.stop("SIGKILL");
      execFileSync("umount", [home]);
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("/metrics", () => {
  it("needs an admin token: none is 401, a workspace token 403", async () => {
    expect((await fetch(`${fx.server.url}/metrics`)).status).toBe(401);
    await using admin = fx.server.client();
    const ws = await admin.workspaces.create("metrics-tenant");
    const res = await fetch(`${fx.server.url}/metrics`, { headers: bearer(ws) });
    expect(res.status).toBe(403);
  });

  it("counts requests by route and status, with latency, and token failures", async () => {
    const before = await scrape();
    const whoami = (s: typeof before) => sampleValue(s, "silo_http_requests_total", { method: "GET", route: "/v1/whoami", status: "200" }) ?? 0;
    const failures = (s: typeof before) => sampleValue(s, "silo_auth_failures_total") ?? 0;
    for (let i = 0; i < 3; i++) expect((await fetch(`${fx.server.url}/v1/whoami`, { headers: bearer(fx.server.profile) })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect((await fetch(`${fx.server.url}/v1/whoami`, { headers: bearer({ tokenId: "tk-nobody", tokenSecret: "x" }) })).status).toBe(401);
    }
    const after = await scrape();
    expect(whoami(after) - whoami(before)).toBe(3);
    expect(failures(after) - failures(before)).toBe(2);
    const count = sampleValue(after, "silo_http_request_duration_seconds_count", { method: "GET", route: "/v1/whoami" });
    expect(count).toBeGreaterThanOrEqual(3);
    // Ids never become labels: every queue's route is one series.
    expect(after.some((s) => s.labels.route?.includes("qu-"))).toBe(false);
    expect(sampleValue(after, "process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  it("reports objects per kind, dict entries, queue depth per queue and open long-polls", async () => {
    await using silo = fx.server.client();
    const dict = await silo.dicts.fromName("m-dict", { createIfMissing: true });
    await dict.update({ a: 1, b: 2, c: 3 });
    const queue = await silo.queues.fromName<number>("m-queue", { createIfMissing: true });
    await queue.putMany([1, 2, 3, 4, 5]);
    await queue.putMany([6, 7], { partition: "p2" });
    await silo.queues.fromName("m-empty", { createIfMissing: true });

    let s = await scrape();
    expect(sampleValue(s, "silo_objects", { kind: "dict" })).toBe(1);
    expect(sampleValue(s, "silo_objects", { kind: "queue" })).toBe(2);
    expect(sampleValue(s, "silo_dict_entries")).toBe(3);
    expect(sampleValue(s, "silo_queue_items", { name: "m-queue" })).toBe(7);
    expect(sampleValue(s, "silo_queue_partitions", { name: "m-queue" })).toBe(2);
    expect(sampleValue(s, "silo_long_polls_open", { kind: "queue" })).toBe(0);
    expect(sampleValue(s, "silo_queue_items", { name: "m-empty" })).toBe(0);

    // A get blocked on an empty queue is an open long-poll until an item arrives.
    const empty = await silo.queues.fromName<number>("m-empty");
    const waiting = empty.get({ timeoutMs: 30_000 });
    await eventually(async () => expect(sampleValue(await scrape(), "silo_long_polls_open", { kind: "queue" })).toBe(1));
    await empty.put(42);
    expect(await waiting).toBe(42);
    s = await scrape();
    expect(sampleValue(s, "silo_long_polls_open", { kind: "queue" })).toBe(0);
    expect(sampleValue(s, "silo_queue_items", { name: "m-empty" })).toBe(0);
    expect(sampleValue(s, "silo_queue_items", { name: "m-queue" })).toBe(7);
    // A second locker of a held dict lock waits: an open long-poll of kind dict.
    expect(sampleValue(s, "silo_long_polls_open", { kind: "dict" })).toBe(0);
    const held = await dict.lock("k", { ttlMs: 30_000 });
    const second = dict.lock("k", { ttlMs: 30_000, waitMs: 30_000 });
    await eventually(async () => expect(sampleValue(await scrape(), "silo_long_polls_open", { kind: "dict" })).toBe(1));
    await held.release();
    await (await second).release();
    expect(sampleValue(await scrape(), "silo_long_polls_open", { kind: "dict" })).toBe(0);
  });

  it("reports volume blocks, bytes and dedup ratio, commit latency, and what GC frees", async () => {
    await using silo = fx.server.client();
    const shared = bytes(100_000);
    const vol = await silo.volumes.fromName("m-vol", { createIfMissing: true });
    await vol.batchUpload().putFile(shared, "a").putFile(shared, "b").commit();

    let s = await scrape();
    expect(sampleValue(s, "silo_objects", { kind: "volume" })).toBe(1);
    expect(sampleValue(s, "silo_volume_blocks")).toBe(1);
    expect(sampleValue(s, "silo_volume_stored_bytes")).toBe(100_000);
    expect(sampleValue(s, "silo_volume_logical_bytes")).toBe(200_000);
    expect(sampleValue(s, "silo_volume_dedup_ratio")).toBe(2);
    expect(sampleValue(s, "silo_volume_commit_duration_seconds_count", { outcome: "ok" })).toBe(1);
    // A refused commit is counted by its status, apart from the good ones.
    const refused = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/commit`, {
      method: "POST",
      headers: { ...bearer(fx.server.profile), "content-type": "application/json" },
      body: JSON.stringify({ baseVersion: -1, changes: [] }),
    });
    expect(refused.status).toBe(400);
    s = await scrape();
    expect(sampleValue(s, "silo_volume_commit_duration_seconds_count", { outcome: "400" })).toBe(1);
    expect(sampleValue(s, "silo_volume_commit_duration_seconds_count", { outcome: "ok" })).toBe(1);
    await eventually(async () => expect(sampleValue(await scrape(), "silo_volume_gc_runs_total")).toBeGreaterThan(0));
    expect(sampleValue(s, "silo_volume_gc_bytes_freed_total")).toBe(0);

    // A second volume's own block, then the volume deleted: GC frees exactly its bytes.
    const gone = await silo.volumes.fromName("m-gone", { createIfMissing: true });
    await gone.batchUpload().putFile(bytes(70_000), "x").commit();
    await silo.volumes.delete("m-gone");
    s = await eventually(async () => {
      const now = await scrape();
      expect(sampleValue(now, "silo_volume_gc_blocks_freed_total")).toBe(1);
      return now;
    }, 30_000);
    expect(sampleValue(s, "silo_volume_gc_bytes_freed_total")).toBe(70_000);
    expect(sampleValue(s, "silo_volume_blocks")).toBe(1);
    expect(sampleValue(s, "silo_volume_gc_failures_total")).toBe(0);
  });
});

describe("--metrics-listen", () => {
  it("serves /metrics without a token on its own address, and nothing else there", async () => {
    const server = await SiloServer.start(["--metrics-listen", "127.0.0.1:0"]);
    try {
      const url = /silo metrics \(no token\) at (\S+)/.exec(server.logs())?.[1];
      expect(url).toBeDefined();
      const res = await fetch(url!);
      expect(res.status).toBe(200);
      expect(sampleValue(parsePrometheus(await res.text()), "silo_dict_entries")).toBe(0);
      expect((await fetch(url!.replace(/\/metrics$/, "/v1/whoami"))).status).toBe(404);
      // The API listener still wants an admin token for it.
      expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    } finally {
      await server.cleanup();
    }
  });
});
