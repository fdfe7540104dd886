import { defineConfig } from "vitest/config";
import { LongestFirstSequencer } from "./test/longest-first.js";

/**
 * Suites that run a second time with volume blocks in S3 (the project's Swift server; see
 * test/helpers/blob-backend.ts). Any suite that starts its servers with SiloServer can opt in
 * by being listed here.
 *
 * Only suites whose outcome depends on where blocks live: they put, fetch, verify, collect and
 * pin blocks (s3-blobs.test.ts covers the backend itself). Journal recovery and commit/reload
 * (mount-journal, mount) upload through the same engine as mount-large and mount-transfer.
 * Metadata suites (POSIX semantics, xattrs, locks, history, commit checks) and
 * NetworkFileSystem (no blocks at all) would only repeat the local run; re-running them
 * doubled CI time to 29 minutes.
 */
const S3_BLOB_SUITES = [
  "test/volume.test.ts",
  "test/volume-gc.test.ts",
  "test/volume-pins.test.ts",
  "test/mount-large.test.ts",
  "test/mount-holes.test.ts",
  "test/mount-transfer.test.ts",
  "test/mount-compose.test.ts",
];

/**
 * The fast layer: tests beside the pure modules (`x.test.ts` next to `x.ts`) and in-process
 * tests in test/unit/ (no spawned server, no mount). It runs first: `npx vitest run --project unit`.
 */
const UNIT_SUITES = ["{protocol,lib,services,client,fuse,cli}/**/*.test.ts", "test/unit/**/*.test.ts"];

export default defineConfig({
  test: {
    // Every end-to-end suite starts real servers (and some real mounts), and a CLI test starts a
    // dozen node processes: generous, not tight (a loaded 2-core machine takes minutes for those).
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Vitest's default is one worker fewer than the CPUs: on the 2-core machines one file at a
    // time (24 min). The suites mostly wait on their servers and mounts (separate processes, own
    // temporary homes and mount points; with two files at a time the run used 1.2 of 2 cores),
    // so three files at a time.
    maxWorkers: 3,
    // The JSON report keeps per-file durations (test-artifacts/ is ignored by git).
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest.json" }]],
    // Longest files first, the s3 project's among the local ones (test/durations.json): the
    // default order ran the s3 project last, and its long suites were the run's tail.
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      {
        extends: true,
        // In-process tests only: one worker process runs many files (isolate: false) instead of a
        // fresh process and module graph per file, which cost more than the tests themselves
        // (the unit project alone, load 8-12: 111 s and 47 CPU-s isolated, 28-40 s and 21-24 CPU-s not).
        test: { name: "unit", include: UNIT_SUITES, testTimeout: 10_000, isolate: false, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: "local", include: ["test/**/*.test.ts"], exclude: ["test/unit/**"], sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: { name: "s3", include: S3_BLOB_SUITES, env: { SILO_TEST_BLOBS: "s3" }, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
