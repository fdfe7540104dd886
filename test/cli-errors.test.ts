import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliResult, runCli, siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const spare = mkdtempSync(join(tmpdir(), "silo-cli-errors-"));
afterAll(() => rmSync(spare, { recursive: true, force: true }));

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, SILO_HOME: spare, ...extra });

/** A failure shown as exactly one `Error: …` line, without a stack frame or a doubled prefix. */
function expectOneLine(res: CliResult, pattern: RegExp): void {
  expect(res.code).not.toBe(0);
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^Error: /);
  expect(lines[0]).not.toMatch(/Error: Error:/);
  expect(lines[0]).toMatch(pattern);
}

describe("start-up errors are one clear line", () => {
  it("a second server on a home in use", async () => {
    const res = await runCli(["serve", "--port", "0"], env({ SILO_HOME: fx.server.home }));
    expectOneLine(res, /Another silo serve .* is using/);
  });

  it("a port already in use, with what to do", async () => {
    const port = new URL(fx.server.url).port;
    const res = await runCli(["serve", "--port", port], env());
    expectOneLine(res, /EADDRINUSE.*pick another --port/);
  });

  it("a malformed --metrics-listen or --blobs", async () => {
    expectOneLine(await runCli(["serve", "--port", "0", "--metrics-listen", "nope"], env()), /--metrics-listen wants HOST:PORT/);
    expectOneLine(await runCli(["serve", "--port", "0", "--blobs", "bogus"], env()), /--blobs must be/);
  });

  it("a bad option value is commander's one line plus a hint, not the whole help", async () => {
    const res = await runCli(["serve", "--port", "abc"], env());
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split("\n")).toEqual([expect.stringMatching(/--port.*'abc' is invalid/), "(add --help for usage)"]);
    const high = await runCli(["serve", "--port", "99999"], env());
    expect(high.stderr.trim().split("\n")).toEqual([expect.stringMatching(/--port.*'99999' is invalid. Expected a TCP port, 0 to 65535/), "(add --help for usage)"]);
  });

  it("a home that cannot be created: the directory and the reason", async () => {
    // A path through a file: ENOTDIR whoever runs it (root ignores permission bits).
    const file = join(spare, "a-file");
    writeFileSync(file, "");
    expectOneLine(await runCli(["serve", "--port", "0", "--home", join(file, "home")], env()), /Cannot create the silo home directory .*a-file\/home\/data: ENOTDIR.*not a directory/);
    // Node's own recursive mkdir spins forever here; the server must answer at once.
    expectOneLine(await runCli(["serve", "--port", "0", "--home", "/proc/no-such-home"], env()), /Cannot create the silo home directory \/proc\/no-such-home: ENOENT/);
  });

  it.skipIf(process.getuid?.() !== 0)("a home on a read-only file system", async () => {
    const ro = mkdtempSync(join(tmpdir(), "silo-ro-home-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro]);
    try {
      expectOneLine(await runCli(["serve", "--port", "0", "--home", join(ro, "home")], env()), /Cannot create the silo home directory .*: EROFS.*read-only.*pick another --home/);
    } finally {
      execFileSync("umount", [ro]);
      rmSync(ro, { recursive: true, force: true });
    }
  });

  it("--debug prints the stack trace instead", async () => {
    const res = await runCli(["serve", "--port", "0", "--debug"], env({ SILO_HOME: fx.server.home }));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/Another silo serve/);
    expect(res.stderr).toMatch(/\n\s+at /);
  });
});

describe("client errors are one clear line", () => {
  it("an unreachable server", async () => {
    const res = await runCli(["dict", "list"], env({ SILO_SERVER_URL: "http://127.0.0.1:1", SILO_TOKEN_ID: "tk-x", SILO_TOKEN_SECRET: "y" }));
    expectOneLine(res, /127\.0\.0\.1:1/);
  });

  it("a wrong token", async () => {
    const res = await fx.server.cli(["dict", "list"], { env: { SILO_TOKEN_SECRET: "wrong" } });
    expectOneLine(res, /token/i);
  });
});
