import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** Seconds per test file in an earlier full run (`node scripts/test-durations.mjs` rewrites it). */
const DURATIONS_FILE = join(import.meta.dirname, "durations.json");

/**
 * Orders test files longest first across projects, so the long suites start while the short
 * ones are still queued to fill in behind them. Vitest's own order needs its cache of an
 * earlier run on this machine (a clean clone has none, and then it runs larger files first)
 * and runs projects one after another, which left the s3 project's long suites to the end
 * with one or two workers busy. Files of no earlier run go first, as vitest does with
 * unknown files: a new suite may be long.
 */
export class LongestFirstSequencer extends BaseSequencer {
  private readonly seconds = new Map<string, number>(
    Object.entries(JSON.parse(readFileSync(DURATIONS_FILE, "utf8")) as Record<string, number>),
  );

  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const expected = (f: TestSpecification) => this.seconds.get(relative(root, f.moduleId)) ?? Number.MAX_VALUE;
    return [...files].sort(
      (a, b) => a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder || expected(b) - expected(a),
    );
  }
}
