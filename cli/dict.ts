import { inspect } from "node:util";
import type { Command } from "commander";
import { NotFoundError } from "../protocol/errors.js";
import { confirm, deletedMessage, formatTime, parseCount, printJson, printTable, withClient } from "./output.js";

/** Dict keys and values as JSON: bigint → string, Date → ISO, bytes → base64, Map → object (or pairs), Set → array. */
/** A value as Node's inspect shows it: the type stays visible ('1' vs 1, 1n, Map(1) {...}). */
const repr = (value: unknown): string => inspect(value, { depth: 6, breakLength: 100, maxStringLength: 2000, colors: false });

export function toJsonValue(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (value instanceof Set) return [...value].map(toJsonValue);
  if (value instanceof Map) {
    const pairs = [...value].map(([k, v]) => [toJsonValue(k), toJsonValue(v)] as const);
    return pairs.every(([k]) => typeof k === "string") ? Object.fromEntries(pairs) : pairs;
  }
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  return value === undefined ? null : value;
}

/** A value for people: strings as they are, everything else as compact JSON. */
const display = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(toJsonValue(value)));

export function registerDict(program: Command): void {
  const dict = program
    .command("dict")
    .description("Manage dicts and inspect their contents")
    .addHelpText(
      "after",
      "\nKeys given on the command line are strings. Values print as text, or as JSON with --json\n(bigint as a string, Date as ISO, bytes as base64). See docs/dicts.md.",
    );

  dict
    .command("create <name>")
    .description("Create a named dict (a no-op if it exists)")
    .action((name: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.dicts.objects.create(name, { allowExisting: true });
        process.stdout.write(`Created dict '${name}'\n`);
      }),
    );

  dict
    .command("list")
    .description("List named dicts, newest first")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const dicts = await silo.dicts.objects.list();
        if (opts.json) return printJson(dicts.map((d) => ({ name: d.name, id: d.id, createdAt: d.createdAt.toISOString() })));
        printTable(["Name", "Created at"], dicts.map((d) => [d.name ?? "", formatTime(d.createdAt)]));
      }),
    );

  dict
    .command("clear <name>")
    .description("Delete every entry of a dict (the dict stays)")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const d = await silo.dicts.fromName(name);
        await confirm(`Delete all entries of dict '${name}'?`, opts.yes);
        await d.clear();
        process.stdout.write(`Cleared dict '${name}'\n`);
      }),
    );

  dict
    .command("delete <name>")
    .description("Delete a named dict and all its data (irreversible)")
    .option("--allow-missing", "no error if the dict does not exist")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { allowMissing?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete dict '${name}' and all its data?`, opts.yes);
        process.stdout.write(deletedMessage("dict", name, await silo.dicts.delete(name, { allowMissing: opts.allowMissing })));
      }),
    );

  dict
    .command("get <name> <key>")
    .description("Print the value of a key (the key is taken as a string)")
    .action((name: string, key: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const d = await silo.dicts.fromName<string, unknown>(name);
        const missing = Symbol("missing");
        const value = await d.get(key, missing);
        if (value === missing) throw new NotFoundError(`Key '${key}' not found in dict '${name}'`, "NOT_FOUND");
        process.stdout.write(`${display(value)}\n`);
      }),
    );

  dict
    .command("items <name> [n]")
    .description("Print the entries of a dict (the first N, default 20)")
    .option("-a, --all", "print every entry, ignoring N (may be slow)")
    .option("--json", "machine-readable output: an array of [key, value]")
    .option("--repr", "show each key and value with its type (Map, Set, bigint, Date, Buffer, ...), as Node's inspect prints it")
    .action((name: string, n: string | undefined, opts: { all?: boolean; json?: boolean; repr?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const limit = opts.all ? Number.POSITIVE_INFINITY : parseCount(n ?? "20");
        const d = await silo.dicts.fromName(name);
        const rows: Array<[unknown, unknown]> = [];
        if (limit > 0) {
          for await (const entry of d.items({ pageSize: Math.min(1000, limit) })) {
            rows.push(entry);
            if (rows.length >= limit) break;
          }
        }
        if (opts.json) return printJson(rows.map(([k, v]) => [toJsonValue(k), toJsonValue(v)]));
        const show = opts.repr ? repr : display;
        printTable(["Key", "Value"], rows.map(([k, v]) => [show(k), show(v)]));
      }),
    );
}
