import { inspect } from "node:util";
import type { Command } from "commander";
import { UsageError, confirm, deletedMessage, formatTime, parseCount, printJson, printTable, withClient } from "./output.js";

const PARTITION_HELP = "partition to use (default: the default partition)";

/** `silo queue …`: same shape as `modal queue`. */
export function registerQueue(program: Command): void {
  const queue = program.command("queue").description("Manage queues and inspect their contents");

  queue
    .command("create <name>")
    .description("Create a named queue (a no-op if it exists)")
    .action((name: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.queues.objects.create(name, { allowExisting: true });
        process.stdout.write(`Created queue '${name}'\n`);
      }),
    );

  queue
    .command("delete <name>")
    .description("Delete a named queue and all of its data")
    .option("--allow-missing", "no error if the queue does not exist")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { allowMissing?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete queue '${name}' and all its items?`, opts.yes);
        process.stdout.write(deletedMessage("queue", name, await silo.queues.delete(name, { allowMissing: opts.allowMissing })));
      }),
    );

  queue
    .command("list")
    .description("List the named queues of the environment, newest first")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const infos = await Promise.all((await silo.queues.objects.list()).map((q) => q.info()));
        if (opts.json) return printJson(infos.map((i) => ({ ...i, createdAt: i.createdAt.toISOString() })));
        printTable(
          ["Name", "Created at", "Partitions", "Total items"],
          infos.map((i) => [i.name ?? "", formatTime(i.createdAt), i.partitions, i.totalItems]),
        );
      }),
    );

  queue
    .command("clear <name>")
    .description("Remove the items of a partition (default: the default partition), or of all partitions")
    .option("-p, --partition <partition>", PARTITION_HELP)
    .option("-a, --all", "clear every partition")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { partition?: string; all?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        if (opts.partition !== undefined && opts.all) throw new UsageError("Give --partition or --all, not both");
        const q = await silo.queues.fromName(name);
        const what = opts.all ? "all partitions" : opts.partition ? `partition '${opts.partition}'` : "the default partition";
        await confirm(`Clear ${what} of queue '${name}'?`, opts.yes);
        await q.clear({ partition: opts.partition, all: opts.all });
        process.stdout.write(`Cleared ${what} of queue '${name}'\n`);
      }),
    );

  queue
    .command("peek <name> [n]")
    .description("Print the next N items of a partition without removing them (default N=1)")
    .option("-p, --partition <partition>", PARTITION_HELP)
    .option("--json", "print the items as one JSON array")
    .action((name: string, n: string | undefined, opts: { partition?: string; json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const q = await silo.queues.fromName(name);
        const items = await q.peek(n === undefined ? 1 : parseCount(n), { partition: opts.partition });
        if (opts.json) return printJson(items);
        for (const item of items) {
          process.stdout.write(`${inspect(item, { depth: null, breakLength: Infinity, colors: process.stdout.isTTY })}\n`);
        }
      }),
    );

  queue
    .command("len <name>")
    .description("Print the length of a partition, or the total over all partitions")
    .option("-p, --partition <partition>", PARTITION_HELP)
    .option("-t, --total", "sum the lengths of all partitions")
    .action((name: string, opts: { partition?: string; total?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const q = await silo.queues.fromName(name);
        process.stdout.write(`${await q.len({ partition: opts.partition, total: opts.total })}\n`);
      }),
    );
}
