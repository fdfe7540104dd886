import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { bytes } from "./helpers/volume-data.js";

let dir: string;
const fx = siloServerFixture();
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "silo-vol-cli-"));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<string> {
  const res = await fx.server.cli(args);
  expect(res.code, `silo ${args.join(" ")}\n${res.stderr}`).toBe(0);
  return res.stdout;
}

async function fails(args: string[], pattern: RegExp): Promise<void> {
  const res = await fx.server.cli(args);
  expect(res.code, `silo ${args.join(" ")} should fail`).not.toBe(0);
  expect(res.stderr).toMatch(pattern);
}

const lsJson = async (name: string, path = "/") =>
  (JSON.parse(await ok(["volume", "ls", name, path, "--json"])) as Array<{ path: string; type: string; size: number }>).map((e) => e.path);

describe("silo volume", () => {
  it("create, list, rename and delete", async () => {
    expect(await ok(["volume", "create", "c1", "--inode-limit", "10"])).toContain("Created volume 'c1'");
    await fails(["volume", "create", "c1"], /already exists/);
    const listed = JSON.parse(await ok(["volume", "list", "--json"])) as Array<{ name: string }>;
    expect(listed.map((v) => v.name)).toContain("c1");
    expect(await ok(["volume", "list"])).toContain("c1");
    await using silo = fx.server.client();
    expect((await (await silo.volumes.fromName("c1")).info()).inodeLimit).toBe(10);

    await fails(["volume", "rename", "c1", "c2"], /--yes/);
    await ok(["volume", "rename", "c1", "c2", "--yes"]);
    expect(await ok(["volume", "list"])).toContain("c2");
    await fails(["volume", "delete", "c2"], /--yes/);
    await ok(["volume", "delete", "c2", "--yes"]);
    await fails(["volume", "delete", "c2", "--yes"], /not found/);
    await ok(["volume", "delete", "c2", "--yes", "--allow-missing"]);
  });

  it("put a file (to /, to a path, into a dir/), --force, and ls", async () => {
    await ok(["volume", "create", "p1"]);
    const f = join(dir, "hello.txt");
    writeFileSync(f, "hello");
    const put = await fx.server.cli(["volume", "put", "p1", f]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stderr).toBe(""); // no progress bar when not on a terminal
    await ok(["volume", "put", "p1", f, "renamed.txt"]);
    await ok(["volume", "put", "p1", f, "docs/"]);
    expect(await lsJson("p1")).toEqual(["docs", "hello.txt", "renamed.txt"]);
    expect(await lsJson("p1", "docs")).toEqual(["docs/hello.txt"]);
    expect(await lsJson("p1", "docs/hello.txt")).toEqual(["docs/hello.txt"]);
    await fails(["volume", "put", "p1", f], /already exists.*force/);
    writeFileSync(f, "hello again");
    await ok(["volume", "put", "p1", f, "--force"]);
    expect(await ok(["volume", "get", "p1", "hello.txt", "-"])).toBe("hello again");
    const table = await ok(["volume", "ls", "p1"]);
    expect(table).toContain("docs/");
    expect(table).toContain("renamed.txt");
    await fails(["volume", "ls", "p1", "nope"], /not found/);
    await fails(["volume", "put", "p1", join(dir, "missing")], /does not exist/);
  });

  it("put and get a directory tree, byte for byte", async () => {
    await ok(["volume", "create", "t1"]);
    const src = join(dir, "src");
    mkdirSync(join(src, "a/b"), { recursive: true });
    const big = bytes(9 * 1024 * 1024);
    writeFileSync(join(src, "a/b/big.bin"), big);
    writeFileSync(join(src, "top.txt"), "top");
    await ok(["volume", "put", "t1", src, "/data"]);
    expect(await lsJson("t1", "data")).toEqual(["data/a", "data/top.txt"]);

    // LOCAL missing: the directory becomes LOCAL.
    const out = join(dir, "out1");
    await ok(["volume", "get", "t1", "data", out]);
    expect(readFileSync(join(out, "a/b/big.bin")).equals(big)).toBe(true);
    expect(readFileSync(join(out, "top.txt"), "utf8")).toBe("top");
    // LOCAL an existing directory: the directory lands inside it.
    const out2 = join(dir, "out2");
    mkdirSync(out2);
    await ok(["volume", "get", "t1", "data", out2]);
    expect(existsSync(join(out2, "data/a/b/big.bin"))).toBe(true);
    // Existing files are not overwritten without --force, and nothing is written then.
    writeFileSync(join(out, "top.txt"), "local edit");
    await fails(["volume", "get", "t1", "data", out2], /exists.*--force/);
    await fails(["volume", "get", "t1", "data/top.txt", join(out, "top.txt")], /exists.*--force/);
    expect(readFileSync(join(out, "top.txt"), "utf8")).toBe("local edit");
    await ok(["volume", "get", "t1", "data/top.txt", join(out, "top.txt"), "--force"]);
    expect(readFileSync(join(out, "top.txt"), "utf8")).toBe("top");
    // A single file into an existing directory keeps its name; `-` is stdout.
    await ok(["volume", "get", "t1", "data/a/b/big.bin", dir]);
    expect(readFileSync(join(dir, "big.bin")).equals(big)).toBe(true);
    expect(await ok(["volume", "get", "t1", "data/top.txt", "-"])).toBe("top");
    await fails(["volume", "get", "t1", "data", "-"], /single file/);
  });

  it("put and get a file of more blocks than the downloads in flight, byte for byte", async () => {
    await ok(["volume", "create", "big1"]);
    // Seven and a half blocks, each different: more ranges than the six fetched at once.
    const data = bytes(7 * BLOCK_SIZE + BLOCK_SIZE / 2);
    const f = join(dir, "many-blocks.bin");
    writeFileSync(f, data);
    await ok(["volume", "put", "big1", f, "/m.bin"]);
    const back = join(dir, "many-blocks.back");
    await ok(["volume", "get", "big1", "/m.bin", back]);
    expect(readFileSync(back).equals(data)).toBe(true);
    // Nothing is left beside the target.
    expect(readdirSync(dir).filter((n) => n.includes("silo-part"))).toEqual([]);
  });

  it("rm and cp", async () => {
    await ok(["volume", "create", "r1"]);
    const f = join(dir, "x.txt");
    writeFileSync(f, "x");
    await ok(["volume", "put", "r1", f, "d/x.txt"]);
    await ok(["volume", "put", "r1", f, "y.txt"]);
    await ok(["volume", "cp", "r1", "y.txt", "z.txt"]);
    await fails(["volume", "cp", "r1", "d", "e"], /recursive/);
    await ok(["volume", "cp", "r1", "-r", "d", "e"]);
    await ok(["volume", "cp", "r1", "y.txt", "z.txt", "e"]);
    expect(await lsJson("r1", "e")).toEqual(["e/x.txt", "e/y.txt", "e/z.txt"]);
    await fails(["volume", "cp", "r1", "y.txt"], /source and a destination/);
    await fails(["volume", "rm", "r1", "d"], /not empty/);
    await ok(["volume", "rm", "r1", "d", "-r"]);
    await ok(["volume", "rm", "r1", "y.txt"]);
    await fails(["volume", "rm", "r1", "y.txt"], /not found/);
    expect(await lsJson("r1")).toEqual(["e", "z.txt"]);
  });

  it("--help describes the commands", async () => {
    const help = await ok(["volume", "--help"]);
    for (const c of ["create", "list", "ls", "put", "get", "rm", "cp", "rename", "delete"]) expect(help).toContain(c);
  });
});
