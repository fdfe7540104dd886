import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { mountsFixture, within } from "./helpers/volume-mounts.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const sh = promisify(execFile);
const GiB = 1024 ** 3;

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-large-", { afterEachTest: false });

const sha256 = (path: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });

it("a 1 GiB sparse file with data scattered through it reads back byte-identical from another mount, then from its cache", { timeout: 240_000 }, async () => {
  const c = fx.server.client();
  await c.volumes.fromName("large", { createIfMissing: true });
  await c.close();
  const local = join(root, "local.bin");
  const a = join(root, "a");
  await mounts.mount("large", a, "--commit-interval-ms", "0");
  // Sparse: 1 GiB + 123 bytes long, random data at the start, across a block edge, in the middle, at the end.
  for (const path of [local, join(a, "big.bin")]) {
    const fh = await open(path, "w");
    await fh.truncate(GiB + 123);
    await fh.close();
  }
  const positions = [0, 8 * 1024 * 1024 - 1000, GiB / 2 + 17, GiB + 123 - 5000];
  for (const [i, pos] of positions.entries()) {
    const data = Buffer.alloc(5000);
    for (let k = 0; k < data.length; k++) data[k] = (k * 31 + i * 7) & 0xff;
    for (const path of [local, join(a, "big.bin")]) {
      const fh = await open(path, "r+");
      await fh.write(data, 0, data.length, pos);
      await fh.close();
    }
  }
  const expected = await sha256(local);
  await within(120_000, "unmount with final commit", mounts.unmount(a));

  const b = join(root, "b");
  await mounts.mount("large", b, "--read-only");
  expect(await within(120_000, "read back", sha256(join(b, "big.bin")))).toBe(expected);
  // Read twice, the second time from the mount's block cache: with the server gone and the
  // kernel's page cache dropped, every byte must come from the cache.
  await fx.server.stop("SIGKILL");
  await sh("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
  expect(await within(120_000, "read again", sha256(join(b, "big.bin")))).toBe(expected);
  const { stdout } = await sh("stat", ["-c", "%s", join(b, "big.bin")]);
  expect(Number(stdout)).toBe(GiB + 123);
});
