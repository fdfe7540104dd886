import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lazyUnmount, mountPointState } from "../fuse/common/mount-table.js";
import { SiloServer } from "./helpers/silo-server.js";
import { within } from "./helpers/volume-mounts.js";

/** A close that fails must say so (EIO) and lose nothing: the change stays and lands once the server is back. */
const sh = promisify(execFile);
let server: SiloServer;
let root: string;
let dir: string;

/** Writes and closes in a child process; resolves with its exit code and stderr (EIO shows there). */
const writeAndClose = (path: string, text: string) =>
  within(
    60_000,
    `write ${path}`,
    sh(process.execPath, ["-e", `const fs = require("fs"); const fd = fs.openSync(${JSON.stringify(path)}, "w"); fs.writeSync(fd, ${JSON.stringify(text)}); fs.closeSync(fd);`]).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    ),
  );

beforeAll(async () => {
  // A restarted server keeps its port, so it is where the mount daemon looks for it.
  server = await SiloServer.start();
  root = mkdtempSync(join(tmpdir(), "silo-nfs-outage-"));
  dir = join(root, "m");
  await server.client().networkFileSystems.objects.create("out");
  const r = await within(60_000, "mount", server.cli(["nfs", "mount", "out", dir, "--commit-interval-ms", "0"]));
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await within(60_000, "unmount", server.cli(["nfs", "unmount", dir, "--timeout-ms", "20000"])).catch(() => {});
  if ((await mountPointState(dir).catch(() => "stale")) !== "free") await lazyUnmount(dir).catch(() => {});
  rmSync(root, { recursive: true, force: true });
  await server.cleanup();
});

describe("nfs mount while the server is away", () => {
  it("close fails with EIO, reads serve the local view, and the change lands after the server is back", async () => {
    expect((await writeAndClose(join(dir, "before.txt"), "before")).code).toBe(0);
    await server.stop();
    const during = await writeAndClose(join(dir, "during.txt"), "during");
    expect(during.code).not.toBe(0);
    expect(during.stderr).toMatch(/EIO|i\/o error/i);
    // Opens cannot catch up, but serve what this mount has.
    expect(await readFile(join(dir, "before.txt"), "utf8")).toBe("before");
    expect(await readFile(join(dir, "during.txt"), "utf8")).toBe("during");

    await server.launch();
    // The next close on the mount sends every pending change, the failed one included.
    expect((await writeAndClose(join(dir, "after.txt"), "after")).code).toBe(0);
    await using silo = server.client();
    const nfs = await silo.networkFileSystems.fromName("out");
    const read = async (p: string) => {
      const chunks: Buffer[] = [];
      for await (const c of nfs.readFile(p)) chunks.push(c);
      return Buffer.concat(chunks).toString();
    };
    expect(await read("during.txt")).toBe("during");
    expect(await read("after.txt")).toBe("after");
    expect(await read("before.txt")).toBe("before");
  });
});
