import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { SiloError } from "../protocol/errors.js";
import { registerAdmin } from "./admin.js";
import { registerBucket } from "./bucket.js";
import { registerCompletion } from "./completion.js";
import { registerDict } from "./dict.js";
import { UsageError } from "./output.js";
import { registerNfs } from "./nfs.js";
import { registerQueue } from "./queue.js";
import { registerRun } from "./run.js";
import { registerSecret } from "./secret.js";
import { registerServe } from "./serve.js";
import { registerVolume } from "./volume.js";
import { registerVolumeMount } from "./volume-mount.js";

/** The package's version: dist/cli/main.js sits two levels below package.json. */
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command("silo")
  .description("silo: volumes, network file systems, dicts, queues and bucket mounts for compute jobs, on hardware you own")
  .version(version, "-V, --version", "print silo's version")
  .option("-e, --env <environment>", "environment to act in (default $SILO_ENVIRONMENT, else main)")
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError()
  .exitOverride();

registerServe(program);
registerAdmin(program);
registerDict(program);
registerQueue(program);
registerVolume(program);
registerVolumeMount(program);
registerNfs(program);
registerRun(program);
registerSecret(program);
registerBucket(program);
registerCompletion(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode);
  }
  if (err instanceof UsageError) {
    process.stderr.write(`Error: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof SiloError) {
    process.stderr.write(`Error: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`Error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
