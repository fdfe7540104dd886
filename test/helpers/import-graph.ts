import { readFileSync, readdirSync } from "node:fs";
import { join, posix, relative } from "node:path";

/** The project's layers, by top-level folder. Folders not listed (bench, test, scripts) are not checked. */
export const LAYERS = ["protocol", "lib", "services", "client", "fuse", "cli"] as const;
export type Layer = (typeof LAYERS)[number];

/** Which layers each layer may import (itself included). cli is the composition root. */
export const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  protocol: ["protocol"],
  lib: ["lib"],
  services: ["services", "protocol", "lib"],
  client: ["client", "protocol", "lib"],
  fuse: ["fuse", "client", "protocol", "lib"],
  cli: ["cli", "services", "client", "fuse", "protocol", "lib"],
};

/** A daemon's entry point: only cli/ starts daemons by importing them. */
const DAEMON_ENTRY = /^fuse\/[^/]+\/main\.ts$/;

export interface Violation {
  from: string;
  to: string;
  rule: string;
}

/** Every module specifier a TypeScript source imports or re-exports (static, type-only and dynamic). */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

const layerOf = (path: string): Layer | undefined => LAYERS.find((l) => path === l || path.startsWith(`${l}/`));

/** `services/dicts/x.ts` → `dicts` when `dicts` is a kind. */
function kindOf(path: string, kinds: ReadonlySet<string>): string | undefined {
  const m = /^services\/([^/]+)\//.exec(path);
  return m && kinds.has(m[1]!) ? m[1] : undefined;
}

/** Kinds are the folders services/kinds.ts registers (`./dicts/index.js` → `dicts`). */
export function kindsFrom(kindsSource: string): Set<string> {
  const kinds = new Set<string>();
  for (const spec of importSpecifiers(kindsSource)) {
    const m = /^\.\/([^/]+)\//.exec(spec);
    if (m) kinds.add(m[1]!);
  }
  return kinds;
}

/**
 * Checks the dependency rules over `files` (repo-relative path → source):
 * layers import only what MAY_IMPORT allows, only cli/ imports a daemon entry (fuse/x/main.ts),
 * no kind under services/ imports another kind, and services/kinds.ts registers each kind
 * through its `index.ts`.
 */
export function boundaryViolations(files: ReadonlyMap<string, string>): Violation[] {
  const kindsSource = files.get("services/kinds.ts") ?? "";
  const kinds = kindsFrom(kindsSource);
  const violations: Violation[] = [];
  // Each kind's server entry point has the same name, so a reader finds every kind's the same way.
  for (const spec of importSpecifiers(kindsSource)) {
    if (/^\.\/[^/]+\//.test(spec) && !/^\.\/[^/]+\/index\.js$/.test(spec)) {
      violations.push({ from: "services/kinds.ts", to: spec, rule: "a kind's entry point is services/<kind>/index.ts" });
    }
  }
  for (const [from, source] of files) {
    const fromLayer = layerOf(from);
    if (!fromLayer) continue;
    for (const spec of importSpecifiers(source)) {
      if (!spec.startsWith(".")) continue; // packages and node: builtins
      const to = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, ".ts");
      const toLayer = layerOf(to);
      if (to.startsWith("..") || !toLayer) {
        violations.push({ from, to, rule: `${fromLayer}/ imports outside the layered folders` });
        continue;
      }
      if (!MAY_IMPORT[fromLayer].includes(toLayer)) {
        violations.push({ from, to, rule: `${fromLayer}/ must not import ${toLayer}/` });
      }
      if (DAEMON_ENTRY.test(to) && fromLayer !== "cli") {
        violations.push({ from, to, rule: "only cli/ imports a daemon's entry point" });
      }
      const fromKind = kindOf(from, kinds);
      const toKind = kindOf(to, kinds);
      if (fromKind && toKind && fromKind !== toKind) {
        violations.push({ from, to, rule: `kind services/${fromKind} must not import kind services/${toKind}` });
      }
    }
  }
  return violations;
}

/** The layered folders' TypeScript sources under `root`, keyed by repo-relative posix path. */
export function readLayers(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ts$/.test(entry.name) && !/\.(test|d)\.ts$/.test(entry.name)) {
        files.set(relative(root, path).split("\\").join("/"), readFileSync(path, "utf8"));
      }
    }
  };
  for (const layer of LAYERS) {
    try {
      walk(join(root, layer));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return files;
}

/**
 * What a module loads when it is imported: its static, non-type-only imports (dynamic ones load
 * later, when first needed; `import type` is erased).
 */
export function eagerImportSpecifiers(source: string): string[] {
  return [...source.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?\sfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gms)].map((m) => (m[1] ?? m[2])!);
}

/**
 * The packages `entry` loads at start (through its eager imports within `files`), each with the
 * chain of modules that first reached it, entry first.
 */
export function eagerPackages(files: ReadonlyMap<string, string>, entry: string): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const via = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  while (queue.length > 0) {
    const from = queue.shift()!;
    const chain = via.get(from)!;
    for (const spec of eagerImportSpecifiers(files.get(from) ?? "")) {
      if (!spec.startsWith(".")) {
        if (!spec.startsWith("node:") && !packages.has(spec)) packages.set(spec, chain);
        continue;
      }
      const to = posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, ".ts");
      if (!via.has(to)) {
        via.set(to, [...chain, to]);
        queue.push(to);
      }
    }
  }
  return packages;
}
