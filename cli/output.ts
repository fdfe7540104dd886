import { createRequire } from "node:module";
import type CliTable from "cli-table3";
import type { Command } from "commander";
import { type ClientConfig, resolveConfig } from "../client/config.js";
import type { SiloClient } from "../client/silo-client.js";

/** The global `-e/--env` option as client options. */
function envOptions(cmd: Command): Partial<ClientConfig> {
  const { env } = cmd.optsWithGlobals<{ env?: string }>();
  return env ? { environment: env } : {};
}

/** A command's client config (honouring `-e/--env`), for a daemon to connect with: loads no client code. */
export function configFor(cmd: Command): ClientConfig {
  return resolveConfig(envOptions(cmd));
}

/**
 * A client for a command, honouring the global `-e/--env` option. The client library (undici,
 * the protocol schemas) loads here, on first use, not at every CLI start.
 */
export async function clientFor(cmd: Command): Promise<SiloClient> {
  const { SiloClient } = await import("../client/silo-client.js");
  return new SiloClient(envOptions(cmd));
}

/** Runs a command's body with a client, closing it afterwards; errors reach main's handler. */
export async function withClient<T>(cmd: Command, fn: (silo: SiloClient) => Promise<T>): Promise<T> {
  const silo = await clientFor(cmd);
  try {
    return await fn(silo);
  } finally {
    await silo.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`);
}

// cli-table3 is loaded on first use: most commands print no table, and every CLI start would pay for it.
const require = createRequire(import.meta.url);

/** A table for people: one row per record, columns in the given order. */
export function printTable(head: string[], rows: Array<Array<string | number>>): void {
  const Table = require("cli-table3") as typeof CliTable;
  const table = new Table({ head, style: { head: process.stdout.isTTY ? ["cyan"] : [], border: process.stdout.isTTY ? ["grey"] : [] } });
  table.push(...rows.map((r) => r.map(String)));
  process.stdout.write(`${table.toString()}\n`);
}

export const formatTime = (ms: number | Date) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

/** Asks before a destructive step unless `--yes`; without a terminal to ask on, refuses. */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new UsageError(`${question} Refusing without --yes (no terminal to ask on).`);
  // Loaded on first use: most commands ask nothing.
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("Aborted.");
  } finally {
    rl.close();
  }
}

/** What a `delete [--allow-missing]` did, in words: "Deleted dict 'x'" or "Dict 'x' did not exist; nothing deleted". */
export function deletedMessage(kind: string, name: string, existed: boolean): string {
  return existed ? `Deleted ${kind} '${name}'\n` : `${kind.charAt(0).toUpperCase()}${kind.slice(1)} '${name}' did not exist; nothing deleted\n`;
}

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses a positive integer argument such as `N` in `dict items NAME N`. */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`Expected a non-negative whole number, got '${value}'`);
  return n;
}
