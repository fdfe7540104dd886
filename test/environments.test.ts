import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { ConflictError, InvalidError, NotFoundError } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

describe("environments", () => {
  it("delete is refused while the environment holds objects; force deletes them with their data", async () => {
    await using silo = fx.server.client();
    await silo.environments.create("doomed");
    await using inEnv = fx.server.client({ environment: "doomed" });
    const d = await inEnv.dicts.fromName("d", { createIfMissing: true });
    await d.put("k", "v");
    await inEnv.secrets.create("s", { A: "b" });
    const q = await inEnv.queues.fromName("q", { createIfMissing: true });
    await q.put(1);

    const refused = await silo.environments.delete("doomed").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toMatch(/holds 3 objects \(dict, queue, secret\).*force/);
    // Refusal changed nothing.
    expect(await d.get("k")).toBe("v");
    expect((await silo.environments.list()).map((e) => e.name)).toContain("doomed");

    expect(await silo.environments.delete("doomed", { force: true })).toEqual({ objectsDeleted: 3 });
    expect((await silo.environments.list()).map((e) => e.name)).not.toContain("doomed");
    // Requests naming it are refused now, and its objects are gone for good: re-creating it shows nothing.
    await expect(inEnv.dicts.fromName("d")).rejects.toBeInstanceOf(NotFoundError);
    await silo.environments.create("doomed");
    await expect(inEnv.dicts.fromName("d")).rejects.toBeInstanceOf(NotFoundError);
    await expect(inEnv.secrets.fromName("s")).rejects.toBeInstanceOf(NotFoundError);
    expect(await inEnv.dicts.objects.list()).toEqual([]);
    // An empty environment is deleted without force.
    expect(await silo.environments.delete("doomed")).toEqual({ objectsDeleted: 0 });
  });

  it("delete does not touch other environments; main and missing environments are refused", async () => {
    await using silo = fx.server.client();
    await silo.environments.create("keep");
    await silo.environments.create("drop");
    await using keep = fx.server.client({ environment: "keep" });
    await using drop = fx.server.client({ environment: "drop" });
    await (await keep.dicts.fromName("same", { createIfMissing: true })).put("k", "kept");
    await (await drop.dicts.fromName("same", { createIfMissing: true })).put("k", "dropped");
    await silo.environments.delete("drop", { force: true });
    expect(await (await keep.dicts.fromName("same")).get("k")).toBe("kept");
    await expect(silo.environments.delete("main", { force: true })).rejects.toBeInstanceOf(InvalidError);
    await expect(silo.environments.delete("never-was")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a create authenticated before its environment's deletion, with its body after it, fails and leaves nothing", async () => {
    await using silo = fx.server.client();
    await silo.environments.create("racing");
    // The server answers "100 Continue" while it handles the request's headers (authentication
    // included), before reading the body: the deletion then runs between the two halves.
    const body = JSON.stringify({ name: "late", allowExisting: false, options: {} });
    const url = new URL(`${fx.server.url}/v1/objects/dict`);
    const req = request(url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`,
        "x-silo-environment": "racing",
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        expect: "100-continue",
      },
    });
    const response = new Promise<number>((resolve, reject) => {
      req.once("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once("error", reject);
    });
    await new Promise<void>((resolve) => req.once("continue", resolve));
    expect(await silo.environments.delete("racing")).toEqual({ objectsDeleted: 0 });
    req.end(body);
    expect(await response).toBe(404);
    // Had it landed, it would reappear in a new environment of the same name.
    await silo.environments.create("racing");
    await using inEnv = fx.server.client({ environment: "racing" });
    expect(await inEnv.dicts.objects.list()).toEqual([]);
  });

  it("rename moves the objects with the environment", async () => {
    await using silo = fx.server.client();
    await silo.environments.create("old-name");
    await using before = fx.server.client({ environment: "old-name" });
    const d = await before.dicts.fromName("cfg", { createIfMissing: true });
    await d.put("k", 42);
    await silo.environments.rename("old-name", "new-name");
    const names = (await silo.environments.list()).map((e) => e.name);
    expect(names).toContain("new-name");
    expect(names).not.toContain("old-name");
    await using after = fx.server.client({ environment: "new-name" });
    expect(await (await after.dicts.fromName("cfg")).get("k")).toBe(42);
    // The old name resolves nothing, also for a handle made before (its id was remembered by the server).
    await expect(d.get("k")).rejects.toBeInstanceOf(NotFoundError);
    await expect(before.dicts.fromName("cfg")).rejects.toBeInstanceOf(NotFoundError);
    await silo.environments.create("taken");
    await expect(silo.environments.rename("new-name", "taken")).rejects.toThrow(/already exists/);
    await expect(silo.environments.rename("main", "other")).rejects.toBeInstanceOf(InvalidError);
    await expect(silo.environments.rename("new-name", "bad name")).rejects.toBeInstanceOf(InvalidError);
  });

  it("CLI: environment update --name, delete [--force]", async () => {
    const ok = async (args: string[]) => {
      const r = await fx.server.cli(args);
      expect(r.code, `silo ${args.join(" ")}\n${r.stderr}`).toBe(0);
      return r.stdout;
    };
    await ok(["environment", "create", "cli-env"]);
    await ok(["-e", "cli-env", "dict", "create", "x"]);
    expect(await ok(["environment", "update", "cli-env", "--name", "cli-env2"])).toContain("Renamed environment 'cli-env' to 'cli-env2'");
    const refused = await fx.server.cli(["environment", "delete", "cli-env2", "--yes"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds 1 object \(dict\)/);
    expect(await ok(["environment", "delete", "cli-env2", "--force", "--yes"])).toContain("Deleted environment 'cli-env2' and its 1 object");
    expect(await ok(["environment", "list"])).not.toContain("cli-env2");
    const noTty = await fx.server.cli(["environment", "delete", "whatever"]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/Refusing without --yes/);
  });
});
