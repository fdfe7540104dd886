import { defineConfig } from "vitest/config";

/**
 * Suites that run a second time with volume blocks in S3 (the project's Swift server; see
 * test/helpers/blob-backend.ts). Any suite that starts its servers with SiloServer can opt in
 * by being listed here.
 */
const S3_BLOB_SUITES = ["test/volume*.test.ts", "test/mount*.test.ts"];

export default defineConfig({
  test: {
    // Every suite starts real servers (and some real mounts): generous, not tight.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "local", include: ["test/**/*.test.ts", "fuse/**/*.test.ts"] } },
      { extends: true, test: { name: "s3", include: S3_BLOB_SUITES, env: { SILO_TEST_BLOBS: "s3" } } },
    ],
  },
});
