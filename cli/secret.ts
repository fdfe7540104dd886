import type { Command } from "commander";
import { parseKeyValues, readDotenv, readJsonValues } from "./secret-sources.js";
import { confirm, deletedMessage, formatTime, printJson, printTable, UsageError, withClient } from "./output.js";

export function registerSecret(program: Command): void {
  const secret = program
    .command("secret")
    .description("Manage secrets: named KEY=VALUE sets (e.g. cloud credentials), stored encrypted on the server");

  secret
    .command("create <name> [pairs...]")
    .description("Create a secret from KEY=VALUE pairs and/or a file (values are never printed back)")
    .option("--from-dotenv <file>", "read KEY=VALUE lines from a .env file")
    .option("--from-json <file>", 'read a JSON object {"KEY": "value", ...} from a file')
    .option("--force", "overwrite the values of an existing secret of that name")
    .addHelpText(
      "after",
      "\nPairs given on the command line override the same keys from a file.\n\nExamples:\n" +
        "  silo secret create aws-creds AWS_ACCESS_KEY_ID=AKIA... AWS_SECRET_ACCESS_KEY=... AWS_REGION=eu-west-1\n" +
        "  silo secret create app-env --from-dotenv .env\n" +
        "  silo secret create app-env --from-json secrets.json --force",
    )
    .action((name: string, pairs: string[], opts: { force?: boolean; fromDotenv?: string; fromJson?: string }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const values = {
          ...(opts.fromDotenv ? readDotenv(opts.fromDotenv) : {}),
          ...(opts.fromJson ? readJsonValues(opts.fromJson) : {}),
          ...parseKeyValues(pairs),
        };
        if (Object.keys(values).length === 0) throw new UsageError("Give KEY=VALUE pairs, --from-dotenv FILE or --from-json FILE");
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
    .option("--allow-missing", "no error if the secret does not exist")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { yes?: boolean; allowMissing?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete secret '${name}'?`, opts.yes);
        process.stdout.write(deletedMessage("secret", name, await silo.secrets.delete(name, { allowMissing: opts.allowMissing })));
      }),
    );
}
