import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidError } from "../client/index.js";
import { REPO, siloServerFixture } from "./helpers/silo-server.js";

const sh = promisify(execFile);
const fx = siloServerFixture();
const dir = mkdtempSync(join(tmpdir(), "silo-cli-surface-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ok(args: string[]): Promise<string> {
  const r = await fx.server.cli(args);
  expect(r.code, `silo ${args.join(" ")}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe("secrets from files", () => {
  it("--from-dotenv reads comments, quotes, export and '=' in values; pairs override", async () => {
    const env = join(dir, "app.env");
    writeFileSync(env, `# comment\nexport DB_URL="postgres://u:p@h/db?x=1"\nTOKEN='single quoted'\nPLAIN=a=b=c\nOVERRIDDEN=file\n`);
    expect(await ok(["secret", "create", "from-env", "--from-dotenv", env, "OVERRIDDEN=cli"])).toContain(
      "Created secret 'from-env' with keys: DB_URL, OVERRIDDEN, PLAIN, TOKEN",
    );
    const s = await fx.silo.secrets.fromName("from-env");
    expect(await s.values()).toEqual({ DB_URL: "postgres://u:p@h/db?x=1", TOKEN: "single quoted", PLAIN: "a=b=c", OVERRIDDEN: "cli" });
  });

  it("--from-json takes a flat object; nested values, bad JSON and missing files are usage errors", async () => {
    const json = join(dir, "s.json");
    writeFileSync(json, JSON.stringify({ API_KEY: "k", PORT: 8080, DEBUG: true }));
    await ok(["secret", "create", "from-json", "--from-json", json]);
    expect(await (await fx.silo.secrets.fromName("from-json")).values()).toEqual({ API_KEY: "k", PORT: "8080", DEBUG: "true" });
    writeFileSync(json, JSON.stringify({ A: { nested: 1 } }));
    let r = await fx.server.cli(["secret", "create", "bad-json", "--from-json", json]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/value of "A" must be a string, number or boolean/);
    writeFileSync(json, "{not json");
    r = await fx.server.cli(["secret", "create", "bad-json", "--from-json", json]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not valid JSON/);
    r = await fx.server.cli(["secret", "create", "bad-json", "--from-dotenv", join(dir, "missing.env")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Cannot read/);
    r = await fx.server.cli(["secret", "create", "empty"]);
    expect(r.code).toBe(2);
    await expect(fx.silo.secrets.fromName("bad-json")).rejects.toThrow(/not found/);
  });
});

describe("delete messages say what happened", () => {
  it("--allow-missing of a missing object says it did not exist; of an existing one, that it was deleted", async () => {
    await ok(["secret", "create", "gone-soon", "A=b"]);
    expect(await ok(["secret", "delete", "gone-soon", "--allow-missing", "--yes"])).toBe("Deleted secret 'gone-soon'\n");
    expect(await ok(["secret", "delete", "gone-soon", "--allow-missing", "--yes"])).toBe("Secret 'gone-soon' did not exist; nothing deleted\n");
    expect(await ok(["dict", "delete", "never-was", "--allow-missing", "--yes"])).toBe("Dict 'never-was' did not exist; nothing deleted\n");
    expect(await ok(["queue", "delete", "never-was", "--allow-missing", "--yes"])).toBe("Queue 'never-was' did not exist; nothing deleted\n");
    expect(await ok(["volume", "delete", "never-was", "--allow-missing", "--yes"])).toBe("Volume 'never-was' did not exist; nothing deleted\n");
    const r = await fx.server.cli(["secret", "delete", "never-was", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not found/);
    expect(await fx.silo.dicts.delete("never-was", { allowMissing: true })).toBe(false);
    await fx.silo.dicts.objects.create("was");
    expect(await fx.silo.dicts.delete("was", { allowMissing: true })).toBe(true);
  });
});

describe("version, completion, dict items --repr", () => {
  it("--version prints the package version", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    expect((await ok(["--version"])).trim()).toBe(version);
    expect((await ok(["-V"])).trim()).toBe(version);
  });

  it("the bash completion script loads in bash and completes commands, subcommands and options", async () => {
    const script = await ok(["completion", "bash"]);
    const file = join(dir, "silo.bash");
    writeFileSync(file, script);
    // Drive the completion function as bash's programmable completion would.
    const complete = async (line: string) => {
      const words = line.split(" ");
      const { stdout } = await sh("bash", [
        "-c",
        `set -e; source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _silo_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
        "bash",
        file,
      ]);
      return stdout.trim().split("\n").filter(Boolean);
    };
    expect(await complete("silo vol")).toEqual(["volume"]);
    expect(await complete("silo volume ")).toEqual(expect.arrayContaining(["create", "delete", "list", "ls", "put", "get", "mount"]));
    expect(await complete("silo -e staging secret cr")).toEqual(["create"]);
    expect(await complete("silo secret create --from")).toEqual(["--from-dotenv", "--from-json"]);
    expect(await complete("silo environment ")).toEqual(expect.arrayContaining(["create", "list", "update", "delete"]));
    const { stdout } = await sh("bash", ["-c", `source "$1" && complete -p silo`, "bash", file]);
    expect(stdout).toContain("complete -F _silo_complete silo");
  });

  it("zsh and fish scripts are produced; an unknown shell is a usage error", async () => {
    expect(await ok(["completion", "zsh"])).toContain("compdef _silo silo");
    expect(await ok(["completion", "fish"])).toContain("complete -c silo");
    const r = await fx.server.cli(["completion", "tcsh"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/choose bash, zsh or fish/);
  });

  it("dict items --repr shows types the plain table hides", async () => {
    const d = await fx.silo.dicts.fromName("typed", { createIfMissing: true });
    await d.put("n", 1);
    await d.put("s", "1");
    await d.put("big", 12345678901234567890n);
    await d.put("m", new Map([["a", new Set([1])]]));
    const out = await ok(["dict", "items", "typed", "--repr"]);
    expect(out).toContain("'1'");
    expect(out).toContain("12345678901234567890n");
    expect(out).toContain("Map(1) { 'a' => Set(1) { 1 } }");
  });
});

describe("values the codec cannot round-trip are refused at put", () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const refused: Array<[string, unknown, RegExp]> = [
    ["a function", () => 1, /is a function/],
    ["a nested function", { cb: () => 1 }, /\(at cb\) is a function/],
    ["a symbol", Symbol("s"), /is a symbol/],
    ["symbol keys", { [Symbol("k")]: 1 }, /symbol keys/],
    ["a class instance", new Point(1, 2), /instance of Point/],
    ["a class instance in a Map", new Map([["p", new Point(1, 2)]]), /instance of Point/],
    ["a boxed string", new String("s"), /instance of String/],
    ["a Promise", Promise.resolve(1), /instance of Promise/],
  ];

  it.each(refused)("dict put refuses %s and stores nothing", async (_what, value, message) => {
    const d = await fx.silo.dicts.fromName("codec", { createIfMissing: true });
    const err = await d.put("k", value).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as Error).message).toMatch(message);
    expect(await d.contains("k")).toBe(false);
    await expect(d.put(value, "v")).rejects.toBeInstanceOf(InvalidError);
  });

  it.each(refused)("queue put refuses %s and enqueues nothing", async (_what, value, message) => {
    const q = await fx.silo.queues.fromName("codec", { createIfMissing: true });
    await expect(q.put(value)).rejects.toThrow(message);
    await expect(q.putMany([1, value])).rejects.toBeInstanceOf(InvalidError);
    expect(await q.len()).toBe(0);
  });

  it("everything the docs list comes back unchanged", async () => {
    const d = await fx.silo.dicts.fromName("codec-ok", { createIfMissing: true });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const values: unknown[] = [
      "s", 1.5, 2n ** 70n, true, null, undefined, [1, [2]], { a: { b: 1 } }, new Map([[1, "x"]]), new Set(["y"]),
      new Date(0), /re/g, new TypeError("t"), Buffer.from("b"), new Uint8Array([1]), new Float64Array([0.5]), Object.assign(Object.create(null) as object, { p: 1 }),
    ];
    for (const [i, v] of values.entries()) {
      await d.put(i, v);
      const back = await d.get(i);
      if (v instanceof Error) expect(back).toBeInstanceOf(TypeError);
      else if (v && typeof v === "object" && Object.getPrototypeOf(v) === null) expect(back).toEqual({ p: 1 });
      else expect(back).toEqual(v);
    }
    await d.put("cyclic", cyclic);
    const back = (await d.get("cyclic")) as Record<string, unknown>;
    expect(back.self).toBe(back);
  });
});
