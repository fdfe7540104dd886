// The network file system mount daemon's entry point, started like every daemon
// (fuse/<kind>/main.ts): config on stdin, ready on fd 3 (fuse/common/daemon-process.ts).
import { readDaemonConfig } from "../common/daemon-runtime.js";
import type { VolumeDaemonConfig } from "../volume/config.js";
import { serveNfsMount } from "./daemon.js";

const code = await serveNfsMount(await readDaemonConfig<VolumeDaemonConfig>());
// Reads of /dev/fuse may still hold thread-pool threads (a lazily detached mount); the daemon's work is done here.
process.exit(code);
