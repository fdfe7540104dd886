import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError, InvalidError, NotFoundError } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  // Symlinks and sockets hold no data (the server's pid lock is a symlink naming its pid; run/ holds the local block sockets).
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isSymbolicLink() || e.isSocket() ? [] : [join(dir, e.name)],
  );
}

describe("secrets", () => {
  it("create, fromName, values, list, delete", async () => {
    await using silo = fx.server.client();
    await silo.secrets.create("aws", { AWS_ACCESS_KEY_ID: "AKIA-test", AWS_SECRET_ACCESS_KEY: "s3cr3t=with=equals" });
    const s = await silo.secrets.fromName("aws", { requiredKeys: ["AWS_ACCESS_KEY_ID"] });
    expect(await s.values()).toEqual({ AWS_ACCESS_KEY_ID: "AKIA-test", AWS_SECRET_ACCESS_KEY: "s3cr3t=with=equals" });
    expect(await s.keys()).toEqual(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    await expect(silo.secrets.fromName("aws", { requiredKeys: ["AWS_REGION"] })).rejects.toThrow(/missing required keys: AWS_REGION/);
    expect((await silo.secrets.list()).map((x) => x.name)).toContain("aws");
    await expect(silo.secrets.create("aws", { A: "b" })).rejects.toBeInstanceOf(AlreadyExistsError);
    await silo.secrets.create("aws", { A: "b" }, { overwrite: true });
    expect(await (await silo.secrets.fromName("aws")).values()).toEqual({ A: "b" });
    await silo.secrets.delete("aws");
    await expect(silo.secrets.fromName("aws")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("rejects bad names, keys and empty secrets", async () => {
    await using silo = fx.server.client();
    await expect(silo.secrets.create("bad name", { A: "b" })).rejects.toBeInstanceOf(InvalidError);
    await expect(silo.secrets.create("ok", {})).rejects.toBeInstanceOf(InvalidError);
    await expect(silo.secrets.create("ok", { "1BAD": "x" })).rejects.toBeInstanceOf(InvalidError);
    // The server checks too (curl callers skip the client's checks).
    const res = await fetch(`${fx.server.url}/v1/secrets`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ok", values: { "bad-key": "x" } }),
    });
    expect(res.status).toBe(400);
  });

  it("values are encrypted at rest: the plaintext is in no data file; the master key file is 0600", async () => {
    await using silo = fx.server.client();
    const marker = `plaintext-marker-${Math.random().toString(36).slice(2)}`;
    await silo.secrets.create("at-rest", { TOKEN: marker });
    await fx.server.restart(); // flushes WAL into the database file, and proves the key survives a restart
    await using again = fx.server.client();
    expect(await (await again.secrets.fromName("at-rest")).values()).toEqual({ TOKEN: marker });
    const files = filesUnder(fx.server.home);
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) expect(readFileSync(f).includes(marker), f).toBe(false);
    const keyFile = join(fx.server.home, "data", "secrets.key");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile).length).toBe(32);
  });

  it("are scoped to a workspace and an environment", async () => {
    await using admin = fx.server.client();
    await admin.secrets.create("scoped", { K: "main-value" });
    await admin.environments.create("dev");
    await using dev = fx.server.client({ environment: "dev" });
    await expect(dev.secrets.fromName("scoped")).rejects.toBeInstanceOf(NotFoundError);
    await dev.secrets.create("scoped", { K: "dev-value" });
    expect(await (await dev.secrets.fromName("scoped")).values()).toEqual({ K: "dev-value" });
    expect(await (await admin.secrets.fromName("scoped")).values()).toEqual({ K: "main-value" });

    const ws = await admin.workspaces.create("other-tenant");
    await using tenant = fx.server.client({ tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    await expect(tenant.secrets.fromName("scoped")).rejects.toBeInstanceOf(NotFoundError);
    const mine = await admin.secrets.fromName("scoped");
    // Knowing the id does not help another workspace.
    const res = await fetch(`${fx.server.url}/v1/secrets/${mine.id}/values`, { headers: { authorization: `Bearer ${ws.tokenId}:${ws.tokenSecret}` } });
    expect(res.status).toBe(404);
    const anon = await fetch(`${fx.server.url}/v1/secrets/${mine.id}/values`);
    expect(anon.status).toBe(401);
  });

  it("fromObject makes an ephemeral secret that close() deletes", async () => {
    await using silo = fx.server.client();
    const s = await silo.secrets.fromObject({ X: "y" });
    expect(s.ephemeral).toBe(true);
    expect(await s.values()).toEqual({ X: "y" });
    await s.close();
    await expect(s.values()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("CLI: create, list (never values), delete", async () => {
    let res = await fx.server.cli(["secret", "create", "cli-secret", "USER=alice", "PASSWORD=hunter2=x"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("PASSWORD, USER");
    expect(res.stdout).not.toContain("hunter2");
    res = await fx.server.cli(["secret", "create", "cli-secret", "USER=bob"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/already exists/);
    res = await fx.server.cli(["secret", "create", "cli-secret", "USER=bob", "--force"]);
    expect(res.code).toBe(0);
    res = await fx.server.cli(["secret", "create", "bad", "NOEQUALS"]);
    expect(res.code).toBe(2);
    res = await fx.server.cli(["secret", "list"]);
    expect(res.stdout).toContain("cli-secret");
    expect(res.stdout).not.toMatch(/bob|alice|hunter2/);
    res = await fx.server.cli(["secret", "list", "--json"]);
    expect((JSON.parse(res.stdout) as Array<{ name: string }>).map((s) => s.name)).toContain("cli-secret");
    res = await fx.server.cli(["secret", "delete", "cli-secret"]);
    expect(res.code).toBe(2); // no terminal to confirm on
    res = await fx.server.cli(["secret", "delete", "cli-secret", "--yes"]);
    expect(res.code).toBe(0);
    await using silo = fx.server.client();
    await expect(silo.secrets.fromName("cli-secret")).rejects.toBeInstanceOf(NotFoundError);
  });
});
