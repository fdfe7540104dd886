import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AlreadyExistsError, InvalidError, type NetworkFileSystem, NoSpaceError, NotFoundError } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
const dir = mkdtempSync(join(tmpdir(), "silo-nfs-api-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function text(nfs: NetworkFileSystem, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of nfs.readFile(path)) chunks.push(c);
  return Buffer.concat(chunks).toString();
}
const paths = (entries: Array<{ path: string }>) => entries.map((e) => e.path).sort();

describe("NetworkFileSystem API", () => {
  it("fromName, create, list, delete; its own kind beside volumes", async () => {
    const silo = fx.silo;
    await expect(silo.networkFileSystems.fromName("shared")).rejects.toBeInstanceOf(NotFoundError);
    const nfs = await silo.networkFileSystems.fromName("shared", { createIfMissing: true });
    expect(nfs.id).toMatch(/^nf-/);
    await expect(silo.networkFileSystems.objects.create("shared")).rejects.toBeInstanceOf(AlreadyExistsError);
    // Kinds are separate namespaces: a volume of the same name is another object.
    const vol = await silo.volumes.fromName("shared", { createIfMissing: true });
    expect(vol.id).not.toBe(nfs.id);
    expect((await silo.networkFileSystems.objects.list()).map((n) => n.id)).toEqual([nfs.id]);
    expect((await silo.volumes.objects.list()).map((v) => v.id)).toEqual([vol.id]);
    // The volume routes do not hand an NFS id to a volume handle of another kind's name, and vice versa.
    await expect(silo.volumes.fromName("no-such")).rejects.toBeInstanceOf(NotFoundError);
    await nfs.writeFile("/x.txt", Buffer.from("x"));
    expect(await silo.networkFileSystems.delete("shared")).toBe(true);
    await expect(nfs.listdir("/")).rejects.toBeInstanceOf(NotFoundError);
    expect(await silo.networkFileSystems.delete("shared", { allowMissing: true })).toBe(false);
    expect(await vol.listdir("/")).toEqual([]);
  });

  it("writeFile, readFile, listdir of a directory, a file and globs; removeFile", async () => {
    const nfs = await fx.silo.networkFileSystems.fromName("files", { createIfMissing: true });
    expect(await nfs.writeFile("/a/b/c.txt", Buffer.from("deep"))).toBe(4); // parents created
    expect(await nfs.writeFile("top.txt", Buffer.from("top"))).toBe(3);
    await nfs.writeFile("/a/one.log", Buffer.from("1"));
    await nfs.writeFile("/a/b/two.log", Buffer.from("22"));
    const local = join(dir, "streamed.bin");
    writeFileSync(local, Buffer.alloc(9 * 1024 * 1024 + 5, 3)); // more than one 8 MiB block
    expect(await nfs.writeFile("/bins/", createReadStream(local))).toBe(9 * 1024 * 1024 + 5); // the stream's file name
    expect(await text(nfs, "/a/b/c.txt")).toBe("deep");
    let n = 0;
    for await (const c of nfs.readFile("bins/streamed.bin")) n += c.length;
    expect(n).toBe(9 * 1024 * 1024 + 5);

    expect(paths(await nfs.listdir("/"))).toEqual(["a", "bins", "top.txt"]);
    expect(paths(await nfs.listdir("/a"))).toEqual(["b", "one.log"]); // relative to the directory
    expect(paths(await nfs.listdir("/a/b/"))).toEqual(["c.txt", "two.log"]);
    const file = await nfs.listdir("/a/b/c.txt");
    expect(file).toMatchObject([{ path: "a/b/c.txt", type: "file", size: 4 }]);
    expect(paths(await nfs.listdir("**/*.log"))).toEqual(["a/b/two.log", "a/one.log"]);
    expect(paths(await nfs.listdir("/a/*.log"))).toEqual(["a/one.log"]);
    expect(paths(await nfs.listdir("a/**"))).toEqual(["a/b", "a/b/c.txt", "a/b/two.log", "a/one.log"]);
    expect(paths(await nfs.listdir("*.txt"))).toEqual(["top.txt"]);
    expect(paths(await nfs.listdir("a/b/?.txt"))).toEqual(["c.txt"].map((p) => `a/b/${p}`));
    expect(await nfs.listdir("nothing/**/*.x")).toEqual([]);
    await expect(nfs.listdir("/missing")).rejects.toBeInstanceOf(NotFoundError);

    await nfs.writeFile("top.txt", Buffer.from("overwritten")); // no commit, no reload: the next read sees it
    expect(await text(nfs, "top.txt")).toBe("overwritten");
    await expect(nfs.removeFile("/a")).rejects.toBeInstanceOf(InvalidError); // not empty
    await nfs.removeFile("/a", { recursive: true });
    await nfs.removeFile("top.txt");
    expect(paths(await nfs.listdir("/"))).toEqual(["bins"]);
    await expect(nfs.removeFile("top.txt")).rejects.toBeInstanceOf(NotFoundError);
    await expect(nfs.writeFile("/", Buffer.from("x"))).rejects.toBeInstanceOf(InvalidError);
    await expect(nfs.writeFile("/dir/", Buffer.from("x"))).rejects.toThrow(/names a directory/);
    await expect(nfs.writeFile("../escape", Buffer.from("x"))).rejects.toBeInstanceOf(InvalidError);
  });

  it("the inode limit holds; bad options are refused", async () => {
    const small = await fx.silo.networkFileSystems.fromName("tiny", { createIfMissing: true, inodeLimit: 2 });
    expect((await small.info()).inodeLimit).toBe(2);
    await small.writeFile("one", Buffer.from("1"));
    await small.writeFile("two", Buffer.from("2"));
    await expect(small.writeFile("three", Buffer.from("3"))).rejects.toBeInstanceOf(NoSpaceError);
    expect(paths(await small.listdir("/"))).toEqual(["one", "two"]);
    await small.writeFile("two", Buffer.from("overwrite is fine")); // no new inode
    await expect(fx.silo.networkFileSystems.fromName("bad-limit", { createIfMissing: true, inodeLimit: 0 })).rejects.toBeInstanceOf(InvalidError);
    await expect(fx.silo.networkFileSystems.fromName("bad name")).rejects.toBeInstanceOf(InvalidError);
  });

  it("addLocalFile and addLocalDir", async () => {
    const nfs = await fx.silo.networkFileSystems.fromName("adds", { createIfMissing: true });
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "sub"), { recursive: true });
    writeFileSync(join(tree, "r.txt"), "root file");
    writeFileSync(join(tree, "sub", "s.txt"), "sub file");
    await nfs.addLocalFile(join(tree, "r.txt"));
    await nfs.addLocalFile(join(tree, "r.txt"), "/copies/");
    await nfs.addLocalFile(join(tree, "r.txt"), "/renamed.txt");
    await nfs.addLocalDir(tree);
    await nfs.addLocalDir(tree, "/elsewhere");
    expect(paths(await nfs.listdir("**"))).toEqual([
      "copies", "copies/r.txt", "elsewhere", "elsewhere/r.txt", "elsewhere/sub", "elsewhere/sub/s.txt",
      "r.txt", "renamed.txt", "tree", "tree/r.txt", "tree/sub", "tree/sub/s.txt",
    ]);
    expect(await text(nfs, "elsewhere/sub/s.txt")).toBe("sub file");
    await expect(nfs.addLocalFile(tree)).rejects.toBeInstanceOf(InvalidError);
    await expect(nfs.addLocalDir(join(tree, "r.txt"))).rejects.toBeInstanceOf(InvalidError);
    expect(readFileSync(join(tree, "r.txt"), "utf8")).toBe("root file");
  });

  it("ephemeral: gone after close; environments isolate", async () => {
    const eph = await fx.silo.networkFileSystems.ephemeral();
    expect(eph.name).toBeNull();
    expect(await eph.listdir("/")).toEqual([]);
    await eph.writeFile("f", Buffer.from("x"));
    await eph.close();
    await expect(eph.listdir("/")).rejects.toBeInstanceOf(NotFoundError);

    await fx.silo.environments.create("nfs-other");
    await using other = fx.server.client({ environment: "nfs-other" });
    const mine = await fx.silo.networkFileSystems.fromName("iso", { createIfMissing: true });
    await mine.writeFile("secret.txt", Buffer.from("main only"));
    await expect(other.networkFileSystems.fromName("iso")).rejects.toBeInstanceOf(NotFoundError);
    // Not even by id: the other environment's handle on the same id is refused.
    const res = await fetch(`${fx.server.url}/v1/volumes/${mine.id}/list?path=`, {
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "x-silo-environment": "nfs-other" },
    });
    expect(res.status).toBe(404);
    // Deleting the environment deletes its NFS too.
    await other.networkFileSystems.fromName("there", { createIfMissing: true });
    expect(await fx.silo.environments.delete("nfs-other", { force: true })).toEqual({ objectsDeleted: 1 });
  });
});
