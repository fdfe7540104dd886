import type { Command } from "commander";
import { confirm, formatTime, printJson, printTable, UsageError, withClient } from "./output.js";

export function registerAdmin(program: Command): void {
  const workspace = program.command("workspace").description("Manage workspaces (isolated tenants)");
  workspace
    .command("create <name>")
    .description("Create a workspace (admin token) and print a token for it")
    .option("--json", "machine-readable output")
    .action((name: string, opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const res = await silo.workspaces.create(name);
        if (opts.json) return printJson(res);
        process.stdout.write(
          `Created workspace '${res.workspace.name}'.\nToken (shown once):\n  SILO_TOKEN_ID=${res.tokenId}\n  SILO_TOKEN_SECRET=${res.tokenSecret}\n`,
        );
      }),
    );

  const token = program.command("token").description("Manage API tokens of your workspace");
  token
    .command("create")
    .description("Create a token for your workspace and print it (the secret is shown once)")
    .option("--label <label>", "what the token is for")
    .option("--json", "machine-readable output")
    .action((opts: { label?: string; json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const res = await silo.tokens.create({ label: opts.label });
        if (opts.json) return printJson(res);
        process.stdout.write(`SILO_TOKEN_ID=${res.tokenId}\nSILO_TOKEN_SECRET=${res.tokenSecret}\n`);
      }),
    );
  token
    .command("list")
    .description("List your workspace's tokens (never their secrets)")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const tokens = await silo.tokens.list();
        if (opts.json) return printJson(tokens);
        printTable(
          ["Token ID", "Label", "Admin", "Created at", "Revoked at"],
          tokens.map((t) => [t.id, t.label, t.admin ? "yes" : "", formatTime(t.createdAt), t.revokedAt ? formatTime(t.revokedAt) : ""]),
        );
      }),
    );
  token
    .command("revoke <token-id>")
    .description("Revoke a token: every later request with it gets 401")
    .action((tokenId: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.tokens.revoke(tokenId);
        process.stdout.write(`Revoked ${tokenId}\n`);
      }),
    );

  const environment = program.command("environment").alias("env").description("Manage environments (namespaces in a workspace)");
  environment
    .command("create <name>")
    .description("Create an environment")
    .action((name: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.environments.create(name);
        process.stdout.write(`Created environment '${name}'\n`);
      }),
    );
  environment
    .command("list")
    .description("List environments")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const envs = await silo.environments.list();
        if (opts.json) return printJson(envs);
        printTable(["Name", "Created at"], envs.map((e) => [e.name, formatTime(e.createdAt)]));
      }),
    );
  environment
    .command("update <name>")
    .description("Change an environment: --name renames it (its objects move with it)")
    .option("--name <new-name>", "the new name")
    .option("--set-name <new-name>", "the same as --name (Modal's spelling)")
    .action((name: string, opts: { name?: string; setName?: string }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const newName = opts.name ?? opts.setName;
        if (!newName) throw new UsageError("Nothing to change: pass --name NEW_NAME");
        await silo.environments.rename(name, newName);
        process.stdout.write(`Renamed environment '${name}' to '${newName}'\n`);
      }),
    );
  environment
    .command("delete <name>")
    .description("Delete an environment (refused while it holds objects, unless --force)")
    .option("--force", "also delete every object in it, with all its data (irreversible)")
    .option("-y, --yes", "do not ask for confirmation")
    .option("--confirm", "the same as --yes (Modal's spelling)")
    .action((name: string, opts: { force?: boolean; yes?: boolean; confirm?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const question = opts.force ? `Delete environment '${name}' and every object in it?` : `Delete environment '${name}'?`;
        await confirm(question, opts.yes || opts.confirm);
        const { objectsDeleted } = await silo.environments.delete(name, { force: opts.force });
        process.stdout.write(
          `Deleted environment '${name}'${objectsDeleted ? ` and its ${objectsDeleted} object${objectsDeleted === 1 ? "" : "s"}` : ""}\n`,
        );
      }),
    );
}
