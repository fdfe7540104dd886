/**
 * A full disk is an answer, not an accident (docs/operating.md, "Disk full"): every kind
 * answers 507 NO_SPACE (NoSpaceError) with nothing of the request applied, deletes and clears
 * still work (the server keeps a disk reserve for them), and `silo serve` starts on a full disk.
 * The server's home is on a small tmpfs that the test fills.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NoSpaceError, type SiloClient, SiloError } from "../client/index.js";
import { eventually } from "./helpers/eventually.js";
import { SiloServer } from "./helpers/silo-server.js";
import { SmallDisk } from "./helpers/tmpfs.js";
import { localBlobs } from "./helpers/blob-backend.js";

/** A write on a full disk may fit into space a store already owns; if it fails, it must be NoSpaceError. */
async function succeedsOrNoSpace(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (err) {
    expect(err).toBeInstanceOf(NoSpaceError);
  }
}

describe("a full disk", () => {
  let disk: SmallDisk;
  let server: SiloServer;
  let silo: SiloClient;
  beforeAll(async () => {
    disk = SmallDisk.mount(64 * 1024 * 1024);
    // Local blobs, whatever the run's backend: the blocks must land on the full disk.
    server = new SiloServer(mkdtempSync(join(disk.dir, "home-")), [], localBlobs());
    await server.launch();
    silo = server.client();
  });
  afterAll(async () => {
    await silo?.close();
    await server?.stop("SIGKILL");
    disk?.unmount();
  });

  it("every kind answers NoSpaceError with nothing applied; deletes and clears still work; serve starts on it and says so", async () => {
    const dict = await silo.dicts.fromName<string, string>("d", { createIfMissing: true });
    await dict.put("k", "old");
    await dict.put("gone", "soon");
    const queue = await silo.queues.fromName<string>("q", { createIfMissing: true });
    await queue.putMany(["a", "b", "c"]);
    const vol = await silo.volumes.fromName("v", { createIfMissing: true });
    await vol.info(); // a volume's first use writes its state (services/volumes); done while there is room
    await silo.secrets.create("s", { A: "1" });
    expect(existsSync(join(server.home, "data", "space-reserve"))).toBe(true);

    disk.fill();
    const big = "x".repeat(2 * 1024 * 1024);
    // Dicts: the entry keeps its old value.
    await expect(dict.put("k", big)).rejects.toBeInstanceOf(NoSpaceError);
    expect(await dict.get("k")).toBe("old");
    // Queues: not in len, not served.
    await expect(queue.put("x".repeat(900 * 1024))).rejects.toBeInstanceOf(NoSpaceError);
    expect(await queue.len()).toBe(3);
    // Volumes: a block upload leaves no block behind.
    const block = randomBytes(4 * 1024 * 1024);
    const hash = createHash("sha256").update(block).digest("hex");
    await expect(vol.blocks.uploadBlock(hash, block)).rejects.toBeInstanceOf(NoSpaceError);
    await expect(vol.blocks.readBlock(hash)).rejects.toThrow(/not found/i);
    // Small metadata writes may still fit into pages the stores own; if not, they are NoSpaceError too.
    await succeedsOrNoSpace(() => silo.secrets.create("s2", { B: "2" }));
    await succeedsOrNoSpace(() => silo.dicts.objects.create("d2"));

    // Deletes and clears work on the full disk.
    expect(await queue.getMany(1)).toEqual(["a"]);
    await queue.clear();
    expect(await queue.len()).toBe(0);
    expect(await dict.pop("gone")).toBe("soon");
    await dict.clear();
    expect(await dict.len()).toBe(0);
    await silo.dicts.delete("d");
    await silo.volumes.delete("v");
    await silo.queues.delete("q");
    await silo.secrets.objects.delete("s");

    // A restart on the full disk: it starts, says so, and serves reads.
    await server.stop();
    disk.fill();
    await server.launch();
    expect(server.logs()).toMatch(/disk .* is full/);
    const again = server.client();
    expect(await again.dicts.objects.list()).toEqual(expect.any(Array));
    await expect(again.queues.fromName("q")).rejects.toThrow(/not found/i);

    // Space back: writes work again and the reserve is taken again.
    disk.free();
    const q2 = await again.queues.fromName<string>("q2", { createIfMissing: true });
    await q2.put("after");
    expect(await q2.get()).toBe("after");
    await eventually(() => expect(existsSync(join(server.home, "data", "space-reserve"))).toBe(true), 20_000);
    await again.close();
  }, 120_000);

  it("no answer on a full disk is a 5xx", async () => {
    disk.fill();
    try {
      const dict = await silo.dicts.fromName<string, string>("d3", { createIfMissing: true }).catch((err: unknown) => err);
      if (!(dict instanceof SiloError)) {
        await succeedsOrNoSpace(() => (dict as Awaited<ReturnType<typeof silo.dicts.fromName<string, string>>>).put("k", "x".repeat(3 * 1024 * 1024)));
      } else {
        expect(dict).toBeInstanceOf(NoSpaceError);
      }
    } finally {
      disk.free();
    }
  });
});
