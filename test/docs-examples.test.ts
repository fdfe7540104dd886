import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { transform } from "rolldown/experimental";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, SILO_BIN, siloServerFixture } from "./helpers/silo-server.js";

/**
 * Every TypeScript/JavaScript example in README.md and docs/ runs as written on the Node the
 * README names (this test's Node, 20): types are stripped and nothing else is changed (target
 * esnext), so syntax Node 20 lacks (`await using`) fails here as it would for a reader.
 *
 * An HTML comment on the line before a fence steers one block:
 * - `<!-- example: continues -->`: the block is the rest of the previous block's program.
 * - `<!-- example: silo run ARGS -->`: the program runs inside `silo run ARGS -- node prog.mjs`
 *   (for examples that only make sense with a mount); the volumes its `-v` names are created
 *   first, as the text around such an example says.
 * - `<!-- example: not runnable: REASON -->`: skipped (e.g. a list of signatures), with a reason.
 * Programs run in a directory holding `weights.bin` and `dataset/` (the local files examples
 * upload), where `import ... from "silo"` resolves to this package.
 */

interface Program {
  where: string;
  code: string;
  siloRun?: string[];
}

const FENCE = /^```(ts|typescript|js|javascript|mjs)\s*$/;

function programs(): { run: Program[]; skipped: Array<{ where: string; reason: string }> } {
  const files = ["README.md", ...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const run: Program[] = [];
  const skipped: Array<{ where: string; reason: string }> = [];
  for (const file of files) {
    const lines = readFileSync(join(REPO, file), "utf8").split("\n");
    let last: Program | undefined;
    for (let i = 0; i < lines.length; i++) {
      if (!FENCE.test(lines[i]!)) {
        if (/^```/.test(lines[i]!)) for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
        continue;
      }
      const directive = /^<!-- example: (.*) -->$/.exec(lines[i - 1] ?? "")?.[1]?.trim();
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
      const where = `${file}:${i - body.length}`;
      const code = body.join("\n");
      if (directive?.startsWith("not runnable")) {
        skipped.push({ where, reason: directive.replace(/^not runnable:?\s*/, "") });
      } else if (directive === "continues") {
        if (!last) throw new Error(`${where}: 'continues' without a block before it`);
        last.code += `\n${code}`;
      } else {
        last = { where, code, siloRun: directive?.startsWith("silo run ") ? directive.slice("silo run ".length).split(/\s+/) : undefined };
        run.push(last);
      }
    }
  }
  return { run, skipped };
}

const sh = promisify(execFile);
const fx = siloServerFixture();
const { run, skipped } = programs();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "silo-docs-examples-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(REPO, join(dir, "node_modules", "silo"));
  writeFileSync(join(dir, "weights.bin"), Buffer.alloc(3 * 1024 * 1024, 7));
  mkdirSync(join(dir, "dataset", "train"), { recursive: true });
  writeFileSync(join(dir, "dataset", "train", "0001.txt"), "a sample\n");
  writeFileSync(join(dir, "my_db_dump.csv"), "id,name\n1,alice\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("docs examples", () => {
  it("finds the examples, and every skipped one says why", () => {
    expect(run.length).toBeGreaterThanOrEqual(7);
    for (const s of skipped) expect(s.reason, s.where).not.toBe("");
  });

  it.each(run.map((p) => [p.where, p] as const))("%s runs on this Node", async (_where, program) => {
    const out = await transform(`${program.where.replace(/[/:]/g, "_")}.ts`, program.code, { target: "esnext" });
    expect(out.errors, program.code).toEqual([]);
    const file = join(dir, `${program.where.replace(/[/:.]/g, "_")}.mjs`);
    writeFileSync(file, out.code);
    for (const spec of program.siloRun ?? []) {
      const volume = /^([^-:][^:]*):\//.exec(spec)?.[1];
      if (volume) await fx.silo.volumes.objects.create(volume, { allowExisting: true });
    }
    const [cmd, args] = program.siloRun
      ? [process.execPath, [SILO_BIN, "run", ...program.siloRun, "--", process.execPath, file]]
      : [process.execPath, [file]];
    const res = await sh(cmd, args, { cwd: dir, env: fx.server.env, timeout: 60_000 }).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
    const failed = "code" in res && res.code !== undefined && res.code !== 0;
    expect(failed, `${program.where} failed:\n${res.stderr}\n--- program ---\n${out.code}`).toBe(false);
  });
});
