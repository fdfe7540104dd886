import type { Command } from "commander";
import { confirm, formatTime, printJson, printTable, UsageError, withClient } from "./output.js";

/** `KEY=VALUE` arguments to an object; the value may contain '='. */
export function parseKeyValues(pairs: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`Expected KEY=VALUE, got '${pair}'`);
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return values;
}

export function registerSecret(program: Command): void {
  const secret = program
    .command("secret")
    .description("Manage secrets: named KEY=VALUE sets (e.g. cloud credentials), stored encrypted on the server");

  secret
    .command("create <name> <pairs...>")
    .description("Create a secret from KEY=VALUE pairs (values are never printed back)")
    .option("--force", "overwrite the values of an existing secret of that name")
    .addHelpText("after", "\nExample:\n  silo secret create aws-creds AWS_ACCESS_KEY_ID=AKIA... AWS_SECRET_ACCESS_KEY=... AWS_REGION=eu-west-1")
    .action((name: string, pairs: string[], opts: { force?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const values = parseKeyValues(pairs);
        await silo.secrets.create(name, values, { overwrite: opts.force });
        process.stdout.write(`Created secret '${name}' with keys: ${Object.keys(values).sort().join(", ")}\n`);
      }),
    );

  secret
    .command("list")
    .description("List secrets (names and dates; never values)")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const secrets = await silo.secrets.list();
        if (opts.json) return printJson(secrets.map((s) => ({ name: s.name, createdAt: s.createdAt.toISOString() })));
        printTable(["Name", "Created at"], secrets.map((s) => [s.name, formatTime(s.createdAt)]));
      }),
    );

  secret
    .command("delete <name>")
    .description("Delete a secret")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete secret '${name}'?`, opts.yes);
        await silo.secrets.delete(name);
        process.stdout.write(`Deleted secret '${name}'\n`);
      }),
    );
}
