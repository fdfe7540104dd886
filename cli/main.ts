import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerAdmin } from "./admin.js";
import { registerBucket } from "./bucket.js";
import { registerCompletion } from "./completion.js";
import { registerDict } from "./dict.js";
import { errorLine } from "./error-line.js";
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
  .option("--debug", "on failure, print the stack trace (and its causes) instead of one line")
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError("(add --help for usage)")
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

// Read from argv, not from the parsed options: a failure may come before (or during) parsing.
const debug = process.argv.includes("--debug") || process.env.SILO_DEBUG === "1";

/** Every failure ends as one `Error: …` line on stderr (the whole stack with --debug) and a non-zero exit. */
function fail(err: unknown, exitCode: number): never {
  if (debug) console.error(err);
  else process.stderr.write(`Error: ${errorLine(err)}\n`);
  process.exit(exitCode);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has already printed its own one-line message.
    process.exit(err.exitCode);
  }
  fail(err, err instanceof UsageError ? 2 : 1);
}
