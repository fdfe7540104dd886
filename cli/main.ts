import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { isLongRunning, registerCommands } from "./commands.js";

/** The package's version: dist/cli/main.js sits two levels below package.json. */
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

// The program's version only as the first argument: commander would take a program option
// anywhere, and `silo volume restore NAME --version V` names a volume's version.
if (process.argv[2] === "-V" || process.argv[2] === "--version") {
  process.stdout.write(`${version}\n`);
  process.exit(0);
}

// undici (the client's HTTP) parses answers with a wasm module that V8 compiles twice: with its
// baseline compiler, then again with its optimizing one in background threads. A command that
// ends in seconds never earns the second compile back (~0.2 CPU-s a run, a tenth of a 1 GiB
// `volume get`'s CPU; docs/benchmarks.md); a server or foreground mount runs for days and keeps it.
if (!isLongRunning(process.argv.slice(2))) setFlagsFromString("--liftoff-only");

// Imported only now: `--version` answers before any of it loads.
const [{ Command, CommanderError }, { errorLine }, { UsageError }] = await Promise.all([
  import("commander"),
  import("./error-line.js"),
  import("./output.js"),
]);

const program = new Command("silo")
  .description("silo: volumes, network file systems, dicts, queues and bucket mounts for compute jobs, on hardware you own")
  .addHelpText("after", "\n`silo -V` / `silo --version` prints silo's version.")
  .option("-e, --env <environment>", "environment to act in (default $SILO_ENVIRONMENT, else main)")
  .option("--debug", "on failure, print the stack trace (and its causes) instead of one line")
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError("(add --help for usage)")
  .exitOverride();

await registerCommands(program, process.argv.slice(2));

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
