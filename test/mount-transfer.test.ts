import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { type IncomingMessage, type Server, type ServerResponse, Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlRequest } from "../client/mount-control.js";
import { lazyUnmount, mountPointState } from "../fuse/common/mount-table.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { within } from "./helpers/volume-mounts.js";

/** A block upload: to the server (`PUT …/blocks/:hash`), or the signing step of a direct one to the object store. */
const UPLOAD = /^(PUT \/v1\/volumes\/[^/]+\/blocks\/[0-9a-f]{64}|POST \/v1\/volumes\/[^/]+\/blocks\/direct-uploads)(\?|$)/;

/**
 * A transparent HTTP proxy in front of the real server that counts block uploads in flight.
 * Until `need` uploads are in flight at once it holds them all: a client that uploads one block
 * at a time never gets past the first, so the evidence does not depend on timing.
 */
class UploadGate {
  inFlight = 0;
  maxInFlight = 0;
  uploads = 0;
  private open = false;
  private held: Array<() => void> = [];
  private readonly agent = new Agent({ keepAlive: true });
  private server: Server | undefined;

  constructor(
    private readonly upstream: URL,
    private readonly need: number,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Lets everything through (teardown, or after a failed wait). */
  release(): void {
    this.open = true;
    for (const r of this.held.splice(0)) r();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const upload = UPLOAD.test(`${req.method} ${req.url}`);
    if (upload) {
      this.uploads++;
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      if (this.inFlight >= this.need) this.release();
      if (!this.open) await new Promise<void>((r) => this.held.push(r));
    }
    const up = request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on("end", () => {
          if (upload) this.inFlight--;
        });
      },
    );
    up.on("error", (err) => res.destroy(err));
    req.pipe(up);
  }

  async stop(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
    this.agent.destroy();
  }
}

const fx = siloServerFixture();
let root: string;
let gate: UploadGate;
let proxyUrl: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "silo-mount-transfer-"));
  gate = new UploadGate(new URL(fx.server.url), 2);
  proxyUrl = await gate.start();
});
afterAll(async () => {
  await gate?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("a mount's commit goes through the block-transfer engine", () => {
  it("uploads the blocks of a multi-block file several at a time", async () => {
    const dir = join(root, "mnt");
    await fx.silo.volumes.fromName("concurrent", { createIfMissing: true });
    const viaProxy = { env: { SILO_SERVER_URL: proxyUrl } };
    const mounted = await fx.server.cli(["volume", "mount", "concurrent", dir, "--commit-interval-ms", "0"], viaProxy);
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      // Four distinct full blocks, each its own upload, and a small tail (sent in a batch).
      const data = randomBytes(4 * BLOCK_SIZE + 12345);
      await writeFile(join(dir, "weights.bin"), data);
      const commit = controlRequest(join(stateDirFor(dir), "control.sock"), "commit");
      // A client that sends one block at a time waits forever at the gate: bound the wait, then let it finish.
      const done = await within(30_000, "commit through the upload gate", commit).then(
        () => true,
        () => false,
      );
      gate.release();
      await commit.catch(() => {});
      expect(gate.maxInFlight, "block uploads in flight at once").toBeGreaterThanOrEqual(2);
      expect(done).toBe(true);
      expect(gate.uploads).toBeGreaterThanOrEqual(4);

      const vol = await fx.silo.volumes.fromName("concurrent");
      const chunks: Buffer[] = [];
      for await (const c of vol.readFile("weights.bin")) chunks.push(c);
      const got = Buffer.concat(chunks);
      expect(got.length).toBe(data.length);
      expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    } finally {
      gate.release();
      const r = await within(120_000, "unmount", fx.server.cli(["volume", "unmount", dir], viaProxy)).catch(() => undefined);
      if (r?.code !== 0 && (await mountPointState(dir).catch(() => "stale")) !== "free") await lazyUnmount(dir).catch(() => {});
    }
  }, 240_000);
});
