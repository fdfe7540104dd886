import { describe, expect, it } from "vitest";
import { boundaryViolations, eagerPackages, importSpecifiers, readLayers } from "../helpers/import-graph.js";
import { REPO } from "../helpers/repo.js";

const tree = (files: Record<string, string>) =>
  new Map(Object.entries({ "services/kinds.ts": 'import "./dicts/index.js";\nimport "./queues/index.js";', ...files }));

describe("import boundaries", () => {
  it("the project's own import graph keeps every rule", () => {
    const files = readLayers(REPO);
    expect(files.size).toBeGreaterThan(50);
    expect(boundaryViolations(files)).toEqual([]);
  });

  it("finds static, type-only, re-exported, side-effect and dynamic imports", () => {
    const src = [
      'import { a } from "./a.js";',
      'import type {\n  B,\n  C,\n} from "../b.js";',
      'export { d } from "./d.js";',
      'export * from "./e.js";',
      'import "./f.js";',
      'const g = await import("./g.js");',
      '// "./not-an-import.js" in a comment line is ignored: it has no import keyword',
    ].join("\n");
    expect(importSpecifiers(src).sort()).toEqual(["../b.js", "./a.js", "./d.js", "./e.js", "./f.js", "./g.js"]);
  });

  it("flags each broken rule", () => {
    const rules = (files: Record<string, string>) => boundaryViolations(tree(files)).map((v) => v.rule);
    expect(rules({ "protocol/x.ts": 'import { y } from "../lib/y.js";' })).toEqual(["protocol/ must not import lib/"]);
    expect(rules({ "lib/x.ts": 'import type { E } from "../protocol/errors.js";' })).toEqual(["lib/ must not import protocol/"]);
    expect(rules({ "services/x.ts": 'import { c } from "../client/index.js";' })).toEqual(["services/ must not import client/"]);
    expect(rules({ "services/x.ts": 'import { f } from "../fuse/volume/daemon.js";' })).toEqual(["services/ must not import fuse/"]);
    expect(rules({ "client/x.ts": 'import { s } from "../services/app.js";' })).toEqual(["client/ must not import services/"]);
    expect(rules({ "client/x.ts": 'import { c } from "../cli/main.js";' })).toEqual(["client/ must not import cli/"]);
    expect(rules({ "fuse/volume/x.ts": 'import { s } from "../../services/app.js";' })).toEqual(["fuse/ must not import services/"]);
    expect(rules({ "fuse/volume/x.ts": 'import { m } from "../bucket/main.js";' })).toEqual(["only cli/ imports a daemon's entry point"]);
    expect(rules({ "services/dicts/x.ts": 'import { q } from "../queues/store.js";' })).toEqual([
      "kind services/dicts must not import kind services/queues",
    ]);
    expect(rules({ "client/x.ts": 'import { b } from "../bench/lib/measure.js";' })).toEqual(["client/ imports outside the layered folders"]);
    expect(rules({ "services/kinds.ts": 'import "./dicts/index.js";\nimport "./queues/plugin.js";' })).toEqual(["a kind's entry point is services/<kind>/index.ts"]);
  });

  it("allows what the layering allows", () => {
    expect(
      boundaryViolations(
        tree({
          "services/dicts/x.ts": 'import { g } from "../kv-group-commit.js";\nimport { o } from "../objects/registry.js";\nimport { l } from "../../protocol/limits.js";',
          "fuse/volume/x.ts": 'import { c } from "../../client/index.js";\nimport { clock } from "../../lib/clock.js";',
          "cli/x.ts": 'import { s } from "../services/server.js";\nimport "../fuse/bucket/main.js";\nimport { c } from "../client/index.js";',
          "client/x.ts": 'import { readFile } from "node:fs/promises";\nimport { Agent } from "undici";',
        }),
      ),
    ).toEqual([]);
  });

  it("every mount daemon starts from its own fuse/<kind>/main.ts, never by re-running the CLI", () => {
    const files = readLayers(REPO);
    const entries = [...files.keys()].filter((f) => /^fuse\/[^/]+\/main\.ts$/.test(f)).sort();
    expect(entries).toEqual(["fuse/bucket/main.ts", "fuse/nfs/main.ts", "fuse/volume/main.ts"]);
    // Every launch outside the spawner itself names a daemon entry (not process.argv[1], the CLI).
    const calls = [...files]
      .filter(([f]) => f !== "fuse/common/daemon-process.ts")
      .flatMap(([f, src]) => src.split("\n").filter((l) => /spawnDaemon\(/.test(l) && !/^\s*(\/\/|\*|\/\*)/.test(l)).map((l) => `${f}: ${l.trim()}`));
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(call).toMatch(/spawnDaemon\(daemonEntry\(/);
  });

  // TypeBox builds the server's route schemas; loading it cost every daemon and CLI start ~0.3-0.45
  // CPU-s (docs/benchmarks.md, "Start time"). Nothing that checks names or sizes requests needs it.
  it("mount daemons, the client and the CLI start without loading TypeBox", () => {
    const files = readLayers(REPO);
    for (const entry of ["fuse/volume/main.ts", "fuse/bucket/main.ts", "fuse/nfs/main.ts", "client/index.ts", "cli/main.ts"]) {
      expect(files.has(entry), entry).toBe(true);
      const chain = eagerPackages(files, entry).get("typebox");
      expect(chain, `${entry} loads typebox via ${chain?.join(" -> ")}`).toBeUndefined();
    }
  });

  it("follows eager imports only", () => {
    const files = new Map(
      Object.entries({
        "client/a.ts": 'import { b } from "./b.js";\nimport type { T } from "./t.js";\nconst l = await import("./lazy.js");',
        "client/b.ts": 'export { x } from "../protocol/x.js";',
        "client/t.ts": 'import { Type } from "typebox";',
        "client/lazy.ts": 'import { Type } from "typebox";',
        "protocol/x.ts": 'import "msgpackr";\nimport { readFileSync } from "node:fs";',
      }),
    );
    const found = eagerPackages(files, "client/a.ts");
    expect([...found.keys()]).toEqual(["msgpackr"]);
    expect(found.get("msgpackr")).toEqual(["client/a.ts", "client/b.ts", "protocol/x.ts"]);
    files.set("protocol/x.ts", 'import { Type, type Static } from "typebox";');
    expect(eagerPackages(files, "client/a.ts").get("typebox")).toEqual(["client/a.ts", "client/b.ts", "protocol/x.ts"]);
  });
});
