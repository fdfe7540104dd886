import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { REPO, siloServerFixture } from "./helpers/silo-server.js";

/** Screenshots of each step, kept as test artifacts (gitignored). */
const ARTIFACTS = join(REPO, "test-artifacts", "dashboard");
const CHROMIUM = "/usr/bin/chromium";

const fx = siloServerFixture();
let context: BrowserContext;
let profileDir: string;
let page: Page;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // A fresh profile each run; the flags keep Chromium off the (closed) network and quiet.
  profileDir = mkdtempSync(join(tmpdir(), "silo-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });

  // What the dashboard will show: a volume with two versions, a queue, a dict, a secret.
  const silo = fx.silo;
  const photos = await silo.volumes.fromName("photos", { createIfMissing: true });
  await photos.batchUpload().putFile(Buffer.from("hello dashboard\n"), "a.txt").putFile(Buffer.from("bee"), "dir/b.txt").commit();
  await photos.batchUpload().putFile(Buffer.from("sea"), "dir/c.txt").commit();
  const jobs = await silo.queues.fromName<{ task: number }>("jobs", { createIfMissing: true });
  await jobs.putMany([{ task: 1 }, { task: 2 }]);
  await jobs.put({ task: 9 }, { partition: "urgent" });
  const cfg = await silo.dicts.fromName("cfg", { createIfMissing: true });
  await cfg.update({ "color:fg": "black", "color:bg": "white", size: 12 });
  await silo.secrets.create("db-creds", { USER: "app", PASSWORD: "hunter2" });
  // A live mount holds a pin on the version it serves (here the pin a mount would take, without the mount).
  await photos.blocks.pinVersion(1);
  // Another environment, with a volume of its own.
  await silo.environments.create("staging");
  await using staging = fx.server.client({ environment: "staging" });
  await (await staging.volumes.fromName("staging-logs", { createIfMissing: true })).batchUpload().putFile(Buffer.from("log"), "l.txt").commit();
});

afterEach(async () => {
  await page?.close();
  expect(external).toEqual([]);
});

afterAll(async () => {
  await context?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

/** Requests a page made anywhere but this server (a CDN, a font service): there must be none. */
let external: string[] = [];

async function newPage(): Promise<Page> {
  page = await context.newPage();
  external = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(fx.server.url) && !/^(data|blob):/.test(r.url())) external.push(r.url());
  });
  return page;
}

async function open(): Promise<Page> {
  page = await newPage();
  await page.goto(`${fx.server.url}/ui`);
  return page;
}

async function signIn(p: Page): Promise<void> {
  await p.getByTestId("token").fill(`${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`);
  await p.getByTestId("signin").click();
  await poll(() => p.getByTestId("workspace").textContent()).toBe("default");
}

/** Waits for what the page shows (an event, not a fixed sleep), generously: the machine may be busy. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 30_000, interval: 100 });

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe("dashboard at /ui", () => {
  it("is where the server's bare address leads, without a token", async () => {
    const res = await fetch(`${fx.server.url}/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/ui/");
    const page = await fetch(`${fx.server.url}/ui/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<div id="app">/);
  });

  it("refuses a wrong token", async () => {
    const p = await open();
    await p.getByTestId("token").fill(`${fx.server.profile.tokenId}:not-the-secret`);
    await p.getByTestId("signin").click();
    await poll(() => p.getByTestId("signin-error").textContent()).toMatch(/wrong, unknown or revoked/);
    await shot(p, "01-wrong-token");
    expect(await p.getByTestId("workspace").count()).toBe(0);
  });

  it("signs in, browses a volume's tree and history, and downloads a file", async () => {
    const p = await open();
    await signIn(p);
    await p.getByTestId("volume-list").getByText("photos").click();
    await poll(() => p.getByTestId("volume-version").textContent()).toBe("2");
    const tree = p.getByTestId("file-tree");
    await poll(() => tree.getByTestId("tree-entry").allTextContents()).toEqual([
      expect.stringMatching(/^a\.txt16 B/),
      expect.stringMatching(/^dir\//),
    ]);
    await shot(p, "02-volume-tree");
    await tree.getByTestId("tree-dir").getByText("dir/").click();
    await poll(() => tree.getByTestId("tree-file").allTextContents()).toEqual(["b.txt", "c.txt"]);

    await p.getByTestId("volume-tab-history").click();
    const rows = p.getByTestId("history-row");
    await poll(() => rows.count()).toBe(2);
    expect(await rows.nth(0).textContent()).toMatch(/^2\+ dir\/c\.txt/);
    expect(await rows.nth(1).textContent()).toMatch(/^1.*\+ a\.txt/);
    // When and by which token each version was committed.
    expect(await rows.nth(0).textContent()).toMatch(new RegExp(`\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d by ${fx.server.profile.tokenId}`));
    // Commit activity over time: one point per retained version (0, the empty volume, to 2).
    await poll(() => p.getByTestId("commit-chart").locator("figcaption").textContent()).toMatch(/: 2 \(max 2, 3 samples, \d{4}-.* UTC\)$/);
    await shot(p, "03-volume-history");

    // Version 1 did not have c.txt yet.
    await rows.nth(1).getByText("Browse").click();
    await tree.getByTestId("tree-dir").getByText("dir/").click();
    await poll(() => tree.getByTestId("tree-file").allTextContents()).toEqual(["b.txt"]);
    await tree.getByText("/", { exact: true }).click();

    const [download] = await Promise.all([p.waitForEvent("download"), tree.getByTestId("tree-file").getByText("a.txt").click()]);
    expect(download.suggestedFilename()).toBe("a.txt");
    const saved = join(profileDir, "a.txt");
    await download.saveAs(saved);
    expect(readFileSync(saved, "utf8")).toBe("hello dashboard\n");
  });

  it("peeks a queue per partition, and clears it only after a confirmation", async () => {
    const p = await open();
    await signIn(p);
    await p.getByTestId("tab-queues").click();
    await p.getByTestId("queue-list").getByText("jobs").click();
    await poll(() => p.getByTestId("queue-items").textContent()).toBe("3");
    await p.getByTestId("peek").click();
    await poll(() => p.getByTestId("peek-item").allTextContents()).toEqual([
      expect.stringContaining('{"task":1}'),
      expect.stringContaining('{"task":2}'),
    ]);
    // The partitions, each with its items; peek the named one from its row.
    await poll(() => p.getByTestId("partition").allTextContents()).toEqual([
      expect.stringMatching(/^\(default\)2/),
      expect.stringMatching(/^urgent1/),
    ]);
    await p.getByTestId("partition").nth(1).getByTestId("partition-peek").click();
    await poll(() => p.getByTestId("peek-item").allTextContents()).toEqual([expect.stringContaining('{"task":9}')]);
    expect(await p.getByTestId("peek-partition").inputValue()).toBe("urgent");
    // Depth over time, sampled while the queue is shown.
    await poll(() => p.getByTestId("depth-chart").locator("figcaption").textContent()).toMatch(/^Queue depth \(items\): 3 /);
    await shot(p, "04-queue-peek");

    // Peeking took nothing; the first click only asks.
    await p.getByTestId("queue-clear").click();
    expect(await (await fx.silo.queues.fromName("jobs")).len({ total: true })).toBe(3);
    await shot(p, "05-queue-clear-confirmation");
    await p.getByTestId("queue-clear-confirm").click();
    await poll(async () => (await fx.silo.queues.fromName("jobs")).len({ total: true })).toBe(0);
    // The chart follows: its last sample is the empty queue, its maximum the 3 items before.
    await poll(() => p.getByTestId("depth-chart").locator("figcaption").textContent()).toMatch(/: 0 \(max 3, \d+ samples/);
    expect(await p.getByTestId("depth-chart").locator("polyline").count()).toBe(1);
  });

  it("shows dict entries by key prefix, secret keys without values, and tokens", async () => {
    const p = await open();
    await signIn(p);
    await p.getByTestId("tab-dicts").click();
    await p.getByTestId("dict-list").getByText("cfg").click();
    await poll(() => p.getByTestId("dict-entry").count()).toBe(3);
    // Each entry's expiry: the server's default TTL (7 days) after its last write.
    const expires = Date.parse(`${await p.getByTestId("dict-expires").first().textContent()}Z`);
    expect(Math.abs(expires - (Date.now() + 7 * 24 * 3600 * 1000))).toBeLessThan(10 * 60 * 1000);
    await p.getByTestId("dict-prefix").fill("color:");
    await poll(() => p.getByTestId("dict-entry").allTextContents()).toEqual([
      expect.stringMatching(/^"color:bg""white"\d{4}-/),
      expect.stringMatching(/^"color:fg""black"\d{4}-/),
    ]);
    expect(await p.getByTestId("dict-search-note").textContent()).toMatch(/2 matches in 3 entries$/);
    await shot(p, "06-dict-prefix");

    await p.getByTestId("tab-secrets").click();
    await p.getByTestId("secret-list").getByText("db-creds").click();
    await poll(() => p.getByTestId("secret-keys").textContent()).toBe("PASSWORDUSER");
    expect(await p.content()).not.toContain("hunter2");

    await p.getByTestId("tab-tokens").click();
    await poll(() => p.getByTestId("tokens").textContent()).toContain(`${fx.server.profile.tokenId} (you)`);
    await shot(p, "07-tokens");
  });

  it("lists live mounts from their pins, and shows each environment's own objects", async () => {
    const p = await open();
    await signIn(p);
    await p.getByTestId("tab-mounts").click();
    await poll(() => p.getByTestId("mounts").locator("tbody tr").allTextContents()).toEqual([expect.stringMatching(/^photos1pin-/)]);
    await shot(p, "08-live-mounts");

    await p.getByTestId("tab-volumes").click();
    await poll(() => p.getByTestId("volume-list").locator("li").allTextContents()).toEqual(["photos"]);
    await p.getByTestId("environment").selectOption("staging");
    await poll(() => p.getByTestId("volume-list").locator("li").allTextContents()).toEqual(["staging-logs"]);
    await p.getByTestId("volume-list").getByText("staging-logs").click();
    await poll(() => p.getByTestId("file-tree").getByTestId("tree-file").allTextContents()).toEqual(["l.txt"]);
    await p.getByTestId("tab-mounts").click();
    await poll(() => p.getByText("No live mounts in this environment.").count()).toBe(1);
    await shot(p, "09-environment-staging");
  });
});

describe("API reference at /docs", () => {
  it("renders in the browser from the server's own files, without a token", async () => {
    page = await newPage();
    await page.goto(`${fx.server.url}/docs`);
    await poll(() => page.locator(".opblock-summary-path").allTextContents()).toContain("/v1/whoami");
    await poll(() => page.getByText("Who the token is").count()).toBeGreaterThan(0);
    await shot(page, "10-api-docs");
    expect(external).toEqual([]);
  });
});
