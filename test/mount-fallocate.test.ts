import { execFile } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { readAll } from "./helpers/volume-data.js";
import { mountsFixture } from "./helpers/volume-mounts.js";

const run = promisify(execFile);
const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-fallocate-");

/** util-linux fallocate(1); resolves with its error output (empty on success). */
async function fallocate(...args: string[]): Promise<string> {
  try {
    await run("fallocate", args);
    return "";
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
}

describe("fallocate on a mount", () => {
  it("mode 0 grows, KEEP_SIZE keeps the size, PUNCH_HOLE and ZERO_RANGE zero ranges (whole blocks commit as holes); sizes and bytes hold after commit and remount", async () => {
    const vol = await fx.silo.volumes.fromName("falloc", { createIfMissing: true });
    const dir = join(root, "m1");
    await mounts.mount("falloc", dir, "--commit-interval-ms", "0");
    const f = join(dir, "f");
    const size = 2 * BLOCK_SIZE + 100;
    const want = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) want.fill(1 + ((i / 4096) % 250), i, Math.min(size, i + 4096));
    writeFileSync(f, want);

    // PUNCH_HOLE|KEEP_SIZE over a whole block and a bit either side.
    expect(await fallocate("-p", "-o", String(BLOCK_SIZE - 10), "-l", String(BLOCK_SIZE + 20), f)).toBe("");
    want.fill(0, BLOCK_SIZE - 10, 2 * BLOCK_SIZE + 10);
    // ZERO_RANGE|KEEP_SIZE running past the end: zeros up to the end, no growth.
    expect(await fallocate("-z", "-n", "-o", String(size - 30), "-l", "1000", f)).toBe("");
    want.fill(0, size - 30);
    // KEEP_SIZE alone: nothing visible changes.
    expect(await fallocate("-n", "-o", "0", "-l", String(4 * BLOCK_SIZE), f)).toBe("");
    expect(statSync(f).size).toBe(size);
    // Mode 0 grows the file with zeros; ZERO_RANGE without KEEP_SIZE zeros and grows.
    expect(await fallocate("-o", String(size), "-l", "50", f)).toBe("");
    expect(await fallocate("-z", "-o", "5", "-l", "10", f)).toBe("");
    want.fill(0, 5, 15);
    expect(await fallocate("-z", "-o", String(size + 40), "-l", "60", f)).toBe("");
    const grown = Buffer.concat([want, Buffer.alloc(100)]);
    expect(statSync(f).size).toBe(size + 100);
    expect(readFileSync(f).equals(grown)).toBe(true);

    // Other modes are not supported; past the largest file size is EFBIG.
    expect(await fallocate("-c", "-o", "0", "-l", "4096", f)).toMatch(/not supported/i);
    expect(await fallocate("-o", String(2 ** 40 - 10), "-l", "100", f)).toMatch(/too large/i);
    expect(await fallocate("-o", String(2 ** 40 - 101), "-l", "100", join(dir, "edge"))).toBe("");
    expect(statSync(join(dir, "edge")).size).toBe(2 ** 40 - 1);
    await mounts.unmount(dir);

    const tree = new Map((await vol.blocks.tree(await vol.blocks.latestVersion())).entries.map((e) => [e.path, e]));
    const entry = tree.get("f")!;
    expect(entry.size).toBe(size + 100);
    // The punched middle block is a hole: nothing stored for it.
    expect(entry.blocks).toHaveLength(3);
    expect(entry.blocks![1]).toBe(1);
    expect((await readAll(vol, "f")).equals(grown)).toBe(true);
    expect(tree.get("edge")!.blocks).toEqual([2 ** 40 / BLOCK_SIZE]);

    await mounts.mount("falloc", dir, "--commit-interval-ms", "0");
    expect(readFileSync(f).equals(grown)).toBe(true);
    await mounts.unmount(dir);
  });
});
