// The bucket mount daemon's entry point: `silo bucket mount` starts it as its own process.
import { reportToParent } from "../common/daemon-process.js";
import { readDaemonConfig } from "../common/daemon-runtime.js";
import type { BucketDaemonConfig } from "./config.js";
import { runBucketDaemon } from "./daemon.js";

const config = await readDaemonConfig<BucketDaemonConfig>();
await runBucketDaemon(config, (err) => {
  reportToParent(err ? { error: err.message } : { ready: true });
  if (err) process.exitCode = 1;
});
// Reads of /dev/fuse may still hold thread-pool threads (a lazily detached mount); the daemon's work is done here.
process.exit(process.exitCode ?? 0);
