import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { committedText, within } from "./helpers/volume-mounts.js";
import { SILO_BIN, siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();
beforeAll(async () => {
  await fx.silo.volumes.fromName("work", { createIfMissing: true });
});

const run = (args: string[]) => within(90_000, `silo run ${args.join(" ")}`, fx.server.cli(["run", ...args]));

describe("silo run", () => {
  it("exits with the command's status and commits on exit without an explicit commit", async () => {
    const ok = await run(["-v", "work:/mnt/work", "--", "sh", "-c", "echo done > /mnt/work/result.txt"]);
    expect(ok.code).toBe(0);
    expect(await committedText(fx.silo, "work", "result.txt")).toBe("done\n");
    const vol = await fx.silo.volumes.fromName("work");

    const failing = await run(["-v", "work:/mnt/work", "--", "sh", "-c", "echo partial > /mnt/work/partial.txt; exit 3"]);
    expect(failing.code).toBe(3);
    // Work done before a failure is committed too (the final commit runs whatever the status).
    expect((await vol.listdir("")).map((e) => e.path).sort()).toEqual(["partial.txt", "result.txt"]);

    const missing = await run(["--", "/no/such/command"]);
    expect(missing.code).toBe(127);
  });

  it("gives the command SILO_MOUNTS and credentials, and mounts privately", async () => {
    const r = await run(["-v", "work:/mnt/ro:ro", "-v", "work:/srv/rw", "--", "sh", "-c", "echo $SILO_MOUNTS; echo $SILO_SERVER_URL; cat /proc/self/mountinfo"]);
    expect(r.code).toBe(0);
    const [mountsLine, url] = r.stdout.split("\n");
    const mounts = JSON.parse(mountsLine!) as Record<string, { kind: string; name: string; readOnly: boolean; socket: string }>;
    expect(Object.keys(mounts).sort()).toEqual(["/mnt/ro", "/srv/rw"]);
    expect(mounts["/mnt/ro"]).toMatchObject({ kind: "volume", name: "work", readOnly: true });
    expect(mounts["/srv/rw"]).toMatchObject({ kind: "volume", name: "work", readOnly: false });
    expect(url).toBe(fx.server.url);
    expect(r.stdout).toMatch(/ \/srv\/rw .*fuse\.silo/);
    // The host (this process) never saw the mounts.
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toMatch(/\/srv\/rw/);
  });

  it("--host-mounts mounts in the host namespace and cleans up after the command", async () => {
    const dir = join(tmpdir(), `silo-run-host-${process.pid}`);
    const r = await run(["--host-mounts", "-v", `work:${dir}`, "--", "sh", "-c", `echo host > ${dir}/host.txt; grep -c ' ${dir} ' /proc/1/mountinfo`]);
    expect(r.code).toBe(0);
    // Visible to every process while the command ran; gone (and the directory removed) after it.
    expect(r.stdout.trim()).toBe("1");
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(dir);
    expect(existsSync(dir)).toBe(false);
    expect(await committedText(fx.silo, "work", "host.txt")).toBe("host\n");
  });

  it("read-only mounts fail writes with EROFS", async () => {
    const r = await run(["-v", "work:/mnt/ro:ro", "--", "sh", "-c", "echo x > /mnt/ro/nope.txt"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it("forwards signals to the command and exits with its status", async () => {
    const proc = spawn(
      process.execPath,
      [SILO_BIN, "run", "-v", "work:/mnt/sig", "--", "sh", "-c", "trap 'echo caught > /mnt/sig/signal.txt; exit 7' TERM; echo started; while :; do sleep 0.1; done"],
      { env: fx.server.env },
    );
    let out = "";
    let err = "";
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    await within(60_000, "job start", new Promise<void>((r) => proc.stdout.on("data", (d: Buffer) => (out += d.toString()).includes("started") && r())));
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    proc.kill("SIGTERM");
    expect({ code: await within(60_000, "job exit", exited), err }).toMatchObject({ code: 7 });
    expect(await committedText(fx.silo, "work", "signal.txt")).toBe("caught\n");
  });

  it("a killed command ends with 128+signal", async () => {
    const r = await run(["-v", "work:/mnt/k", "--", "sh", "-c", "kill -KILL $$"]);
    expect(r.code).toBe(137);
  });
});

describe("Volume.commit() / reload() outside a mount", () => {
  it("commit() is a no-op and reload() a clear error", async () => {
    const script = `
      import { SiloClient } from ${JSON.stringify(join(import.meta.dirname, "../dist/client/index.js"))};
      const silo = new SiloClient();
      const vol = await silo.volumes.fromName("work");
      const before = await vol.blocks.latestVersion();
      await vol.commit();
      console.log(JSON.stringify({ same: before === (await vol.blocks.latestVersion()) }));
      try { await vol.reload(); } catch (err) { console.log(JSON.stringify({ name: err.name, message: err.message })); }
      await silo.close();`;
    const r = await within(30_000, "script", runNode(script));
    const [first, second] = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toEqual({ same: true });
    expect(second!.name).toBe("InvalidError");
    expect(String(second!.message)).toMatch(/not mounted/);
  });
});

function runNode(script: string) {
  return new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", script], { env: fx.server.env });
    let stdout = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => process.stderr.write(d));
    p.on("exit", (code) => resolve({ code, stdout }));
  });
}
