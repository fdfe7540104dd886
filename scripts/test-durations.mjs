// Rewrites test/durations.json (the order test/longest-first.ts runs test files in) from the
// per-file times of the last full `npm test` (test-artifacts/vitest.json). A file the s3
// project runs again keeps the longer of its two times.
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const report = JSON.parse(readFileSync(join(root, "test-artifacts/vitest.json"), "utf8"));
const seconds = {};
for (const file of report.testResults) {
  const path = relative(root, file.name);
  const s = Math.round((file.endTime - file.startTime) / 100) / 10;
  seconds[path] = Math.max(seconds[path] ?? 0, s);
}
const sorted = Object.entries(seconds).sort(([, a], [, b]) => b - a);
writeFileSync(join(root, "test/durations.json"), `${JSON.stringify(Object.fromEntries(sorted), null, 1)}\n`);
