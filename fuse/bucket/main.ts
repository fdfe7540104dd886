// The bucket mount daemon's entry point, started like every daemon (fuse/<kind>/main.ts):
// config on stdin, ready on fd 3 (fuse/common/daemon-process.ts).
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
