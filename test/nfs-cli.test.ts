import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const dir = mkdtempSync(join(tmpdir(), "silo-nfs-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ok(args: string[]): Promise<string> {
  const r = await fx.server.cli(args);
  expect(r.code, `silo ${args.join(" ")}\n${r.stderr}`).toBe(0);
  return r.stdout;
}
async function fails(args: string[], pattern: RegExp, code = 1): Promise<void> {
  const r = await fx.server.cli(args);
  expect(r.code, `silo ${args.join(" ")} should fail`).toBe(code);
  expect(r.stderr).toMatch(pattern);
}
const lsJson = async (args: string[]) => (JSON.parse(await ok(["nfs", "ls", ...args, "--json"])) as Array<{ path: string }>).map((e) => e.path).sort();

describe("silo nfs", () => {
  it("create, list, put, ls, get, rm, delete", async () => {
    expect(await ok(["nfs", "create", "cli-fs"])).toBe("Created network file system 'cli-fs'\n");
    await fails(["nfs", "create", "cli-fs"], /already exists/);
    expect(await ok(["nfs", "list"])).toContain("cli-fs");
    expect((JSON.parse(await ok(["nfs", "list", "--json"])) as Array<{ name: string }>).map((n) => n.name)).toEqual(["cli-fs"]);
    // Not a volume: volume commands do not see it.
    expect(await ok(["volume", "list"])).not.toContain("cli-fs");

    const src = join(dir, "src");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "a.csv"), "a,b\n1,2\n");
    writeFileSync(join(src, "sub", "b.csv"), "c\n3\n");
    writeFileSync(join(dir, "single.txt"), "single");
    await ok(["nfs", "put", "cli-fs", join(dir, "single.txt")]);
    await ok(["nfs", "put", "cli-fs", join(dir, "single.txt"), "in/"]);
    await ok(["nfs", "put", "cli-fs", src, "/data"]);
    writeFileSync(join(dir, "single.txt"), "replaced");
    await ok(["nfs", "put", "cli-fs", join(dir, "single.txt")]); // put replaces, as on a file system
    expect(await lsJson(["cli-fs"])).toEqual(["data", "in", "single.txt"]);
    expect(await lsJson(["cli-fs", "/data"])).toEqual(["a.csv", "sub"]);
    expect(await lsJson(["cli-fs", "**/*.csv"])).toEqual(["data/a.csv", "data/sub/b.csv"]);
    expect(await ok(["nfs", "ls", "cli-fs", "/data"])).toMatch(/sub\/.*directory/);

    expect(await ok(["nfs", "get", "cli-fs", "single.txt", "-"])).toBe("replaced");
    const out = join(dir, "out");
    await ok(["nfs", "get", "cli-fs", "/data", out]);
    expect(readFileSync(join(out, "sub", "b.csv"), "utf8")).toBe("c\n3\n");
    const dump = join(dir, "dump");
    await ok(["nfs", "get", "cli-fs", "**", dump]);
    expect(readFileSync(join(dump, "data", "a.csv"), "utf8")).toBe("a,b\n1,2\n");
    expect(readFileSync(join(dump, "in", "single.txt"), "utf8")).toBe("single");
    await fails(["nfs", "get", "cli-fs", "**", dump], /exists \(use --force/, 2);
    await ok(["nfs", "get", "cli-fs", "**", dump, "--force"]);
    await fails(["nfs", "get", "cli-fs", "*.txt", "-"], /only for a single file/, 2);

    await fails(["nfs", "rm", "cli-fs", "/data"], /not empty/);
    await ok(["nfs", "rm", "cli-fs", "/data", "-r"]);
    expect(await lsJson(["cli-fs"])).toEqual(["in", "single.txt"]);
    await fails(["nfs", "ls", "cli-fs", "/data"], /not found/);

    await fails(["nfs", "delete", "cli-fs"], /Refusing without --yes/, 2);
    expect(await ok(["nfs", "delete", "cli-fs", "--yes"])).toBe("Deleted network file system 'cli-fs'\n");
    expect(await ok(["nfs", "delete", "cli-fs", "--yes", "--allow-missing"])).toBe("Network file system 'cli-fs' did not exist; nothing deleted\n");
    await fails(["nfs", "ls", "cli-fs"], /not found/);
    expect(existsSync(join(dump, "single.txt"))).toBe(true);
  });

  it("bad input is a clear error", async () => {
    await fails(["nfs", "create", "bad name"], /name/);
    await fails(["nfs", "put", "nope", join(dir, "missing")], /not found|does not exist/);
    await fails(["run", "--nfs", "x:relative", "--", "true"], /expected NAME:\/absolute\/path/, 2);
    await fails(["nfs", "mount", "no-such-fs", join(dir, "mnt")], /not found/);
  });
});
