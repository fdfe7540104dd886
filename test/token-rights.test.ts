/** Token rights follow roles, and the server's files are its user's alone (docs/operating.md). */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuthError, ForbiddenError, NotFoundError } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

describe("token rights", () => {
  it("only an admin or the issuing token revokes a token; plain tokens see only themselves", async () => {
    const admin = fx.silo;
    const adminId = fx.server.profile.tokenId;
    const a = await admin.tokens.create({ label: "a" });
    await using asA = fx.server.client({ tokenId: a.tokenId, tokenSecret: a.tokenSecret });
    const b = await asA.tokens.create({ label: "b (issued by a)" });
    await using asB = fx.server.client({ tokenId: b.tokenId, tokenSecret: b.tokenSecret });
    const c = await admin.tokens.create({ label: "c" });

    // Listing: plain tokens see only themselves; the admin sees all.
    expect((await asA.tokens.list()).map((t) => t.id)).toEqual([a.tokenId]);
    expect((await asB.tokens.list()).map((t) => t.id)).toEqual([b.tokenId]);
    expect((await admin.tokens.list()).map((t) => t.id)).toEqual(expect.arrayContaining([adminId, a.tokenId, b.tokenId, c.tokenId]));

    // A plain token cannot revoke the admin, a sibling, or the token that issued it; nor itself.
    await expect(asB.tokens.revoke(adminId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(asA.tokens.revoke(adminId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(asA.tokens.revoke(c.tokenId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(asB.tokens.revoke(a.tokenId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(asB.tokens.revoke(b.tokenId)).rejects.toBeInstanceOf(ForbiddenError);
    expect((await admin.whoami()).admin).toBe(true);

    // The issuer may revoke what it issued; the admin anything in its workspace.
    await asA.tokens.revoke(b.tokenId);
    await expect(asB.tokens.list()).rejects.toBeInstanceOf(AuthError);
    await admin.tokens.revoke(a.tokenId);
    await expect(asA.tokens.list()).rejects.toBeInstanceOf(AuthError);
    await admin.tokens.revoke(c.tokenId);
  });
});

describe("file modes", () => {
  it("the home and every directory under it are 0700, every data and key file 0600", async () => {
    // Touch every kind so that each creates its files.
    const silo = fx.silo;
    await (await silo.dicts.fromName("m", { createIfMissing: true })).put("k", "v");
    await (await silo.queues.fromName("m", { createIfMissing: true })).put("v");
    const vol = await silo.volumes.fromName("m", { createIfMissing: true });
    await vol.blocks.uploadBlocks([{ hash: "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", data: Buffer.from("a") }]);
    await silo.secrets.create("m", { A: "1" });

    const seen: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isSymbolicLink()) continue;
        const mode = statSync(path).mode & 0o777;
        seen.push(path);
        if (e.isDirectory()) {
          expect(mode.toString(8), path).toBe("700");
          walk(path);
        } else {
          expect(mode.toString(8), path).toBe("600");
        }
      }
    };
    expect((statSync(fx.server.home).mode & 0o777).toString(8)).toBe("700");
    walk(fx.server.home);
    for (const name of ["meta.sqlite", "volumes.sqlite", "data.mdb", "lock.mdb", "secrets.key", "config.json"]) {
      expect(seen.some((p) => p.endsWith(`/${name}`)), name).toBe(true);
    }
  });
});
