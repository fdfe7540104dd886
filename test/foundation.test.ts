import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuthError, ForbiddenError, InvalidError, NotFoundError, SiloClient } from "../client/index.js";
import { REPO, SiloServer, siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

describe("silo serve bootstrap and auth", () => {
  it("writes a profile whose admin token works", async () => {
    await using silo = fx.server.client();
    const me = await silo.whoami();
    expect(me).toMatchObject({ workspace: "default", admin: true, environment: "main" });
  });

  it("the client reads the profile from SILO_HOME when no env vars are set", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.SILO_SERVER_URL;
      delete process.env.SILO_TOKEN_ID;
      delete process.env.SILO_TOKEN_SECRET;
      process.env.SILO_HOME = fx.server.home;
      await using silo = new SiloClient();
      expect((await silo.whoami()).workspace).toBe("default");
    } finally {
      process.env = saved;
    }
  });

  it("rejects a wrong secret, an unknown token and a revoked token with AuthError", async () => {
    await using bad = fx.server.client({ tokenSecret: "wrong" });
    await expect(bad.whoami()).rejects.toBeInstanceOf(AuthError);
    await using unknown = fx.server.client({ tokenId: "tk-nope" });
    await expect(unknown.whoami()).rejects.toBeInstanceOf(AuthError);

    await using admin = fx.server.client();
    const t = await admin.tokens.create({ label: "to revoke" });
    await using other = fx.server.client(t);
    expect((await other.whoami()).tokenId).toBe(t.tokenId);
    await admin.tokens.revoke(t.tokenId);
    await expect(other.whoami()).rejects.toBeInstanceOf(AuthError);
    const listed = await admin.tokens.list();
    expect(listed.find((x) => x.id === t.tokenId)?.revokedAt).toBeTypeOf("number");
  });

  it("rejects unauthenticated HTTP requests with 401 and a JSON error body", async () => {
    const res = await fetch(`${fx.server.url}/v1/whoami`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: "AUTH", message: expect.any(String) } });
  });

  it("accepts JSON requests so curl works", async () => {
    const res = await fetch(`${fx.server.url}/v1/environments`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "via-json" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "via-json" });
  });

  it("only admins create workspaces; a workspace token is not admin", async () => {
    await using admin = fx.server.client();
    const ws = await admin.workspaces.create("tenant-a");
    await using tenant = fx.server.client({ tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    expect(await tenant.whoami()).toMatchObject({ workspace: "tenant-a", admin: false });
    await expect(tenant.workspaces.create("tenant-b")).rejects.toBeInstanceOf(ForbiddenError);
    await expect(admin.workspaces.create("bad name!")).rejects.toBeInstanceOf(InvalidError);
  });

  it("environments must exist and are listed per workspace", async () => {
    await using admin = fx.server.client();
    await admin.environments.create("dev");
    expect((await admin.environments.list()).map((e) => e.name)).toEqual(expect.arrayContaining(["main", "dev"]));
    await using inMissing = fx.server.client({ environment: "nope" });
    await expect(inMissing.whoami()).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("the package", () => {
  it("a job imports the client as `silo` under plain node, with its config from the environment", async () => {
    const job = mkdtempSync(join(tmpdir(), "silo-job-"));
    try {
      // What `npm install /path/to/silo` gives a job: node_modules/silo pointing at the package.
      mkdirSync(join(job, "node_modules"));
      symlinkSync(REPO, join(job, "node_modules", "silo"));
      writeFileSync(
        join(job, "job.mjs"),
        `import { SiloClient, NotFoundError } from "silo";
         const silo = new SiloClient();
         const me = await silo.whoami();
         console.log(JSON.stringify({ workspace: me.workspace, errors: typeof NotFoundError }));
         await silo.close();`,
      );
      const out = execFileSync(process.execPath, ["job.mjs"], { cwd: job, env: fx.server.env, encoding: "utf8" });
      expect(JSON.parse(out)).toEqual({ workspace: "default", errors: "function" });
    } finally {
      rmSync(job, { recursive: true, force: true });
    }
  });
});

describe("CLI", () => {
  it("--help lists the commands", async () => {
    const res = await fx.server.cli(["--help"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("serve");
    expect(res.stdout).toContain("--env");
  });

  it("token create/list/revoke and environment create/list", async () => {
    const created = await fx.server.cli(["token", "create", "--label", "ci", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const { tokenId } = JSON.parse(created.stdout) as { tokenId: string };
    const list = await fx.server.cli(["token", "list", "--json"]);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ id: tokenId, label: "ci" })]));
    expect((await fx.server.cli(["token", "revoke", tokenId])).code).toBe(0);
    const again = await fx.server.cli(["token", "revoke", tokenId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not found/);

    expect((await fx.server.cli(["environment", "create", "staging"])).code).toBe(0);
    expect((await fx.server.cli(["environment", "list"])).stdout).toContain("staging");
  });

  it("workspace create prints a working token; a wrong token fails with a clear error", async () => {
    const res = await fx.server.cli(["workspace", "create", "cli-tenant", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const bad = await fx.server.cli(["token", "list"], { env: { SILO_TOKEN_SECRET: "wrong" } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/token/i);
  });
});

describe("durability of the bootstrap", () => {
  it("keeps the admin token across a restart", async () => {
    const before = fx.server.profile.tokenId;
    await fx.server.restart();
    expect(fx.server.profile.tokenId).toBe(before);
    await using silo = fx.server.client();
    expect((await silo.whoami()).admin).toBe(true);
  });
});

describe("one server per SILO_HOME", () => {
  it("refuses a second silo serve on the same home, with a clear error", async () => {
    const second = new SiloServer(fx.server.home);
    await expect(second.launch()).rejects.toThrow(/Another silo serve \(pid \d+\) is using/);
  });
});
