// The volume mount daemon's entry point: `silo volume mount` and `silo run` start it as its own
// process, exactly like the bucket daemon (fuse/bucket/main.ts): config on stdin, ready on fd 3.
import { SiloClient } from "../../client/silo-client.js";
import { reportToParent } from "../common/daemon-process.js";
import { readDaemonConfig } from "../common/daemon-runtime.js";
import type { VolumeDaemonConfig } from "./config.js";
import { runVolumeDaemon } from "./daemon.js";

const config = await readDaemonConfig<VolumeDaemonConfig>();
const silo = new SiloClient(config.client);
let code = 1;
try {
  const volume = await silo.volumes.fromName(config.volume);
  code = await runVolumeDaemon(volume.blocks, {
    dir: config.mountPoint,
    readOnly: config.readOnly,
    commitIntervalMs: config.commitIntervalMs,
    cacheBytes: config.cacheBytes,
    stateDir: config.stateDir,
    exitWithParent: config.exitWithParent,
    server: config.client.serverUrl,
    environment: config.client.environment,
    finalCommitRetryMs: config.finalCommitRetryMs,
    journalRoot: config.journalRoot,
  });
} catch (err) {
  // runVolumeDaemon reported its own failures; this covers the volume lookup.
  reportToParent({ error: (err as Error).message });
  process.stderr.write(`[silo volume mount] ${(err as Error).message}\n`);
}
await silo.close().catch(() => {});
// fuse-native keeps a handle open after unmount; the daemon's work is done here.
process.exit(code);
