import type { Command } from "commander";

/** Adds one or more top-level commands to the program. */
type Register = (program: Command) => unknown;

/** `silo volume` subcommands cli/volume.ts registers: running one of these loads neither the mount commands nor their modules. */
const VOLUME_TRANSFER_COMMANDS = new Set(["create", "list", "ls", "put", "get", "rm", "cp", "history", "restore", "fork", "rename", "delete"]);

/**
 * Each top-level command (with its aliases) and the module that registers it, in the order
 * `silo --help` lists them. Modules load on demand: a command's run loads only its own code,
 * not every other command's clients and libraries.
 */
const COMMANDS: ReadonlyArray<{ names: readonly string[]; load: (sub: string | undefined) => Promise<Register[]> }> = [
  { names: ["serve"], load: async () => [(await import("./serve.js")).registerServe] },
  { names: ["workspace", "token", "environment", "env"], load: async () => [(await import("./admin.js")).registerAdmin] },
  { names: ["dict"], load: async () => [(await import("./dict.js")).registerDict] },
  { names: ["queue"], load: async () => [(await import("./queue.js")).registerQueue] },
  {
    names: ["volume"],
    load: async (sub) => {
      if (sub !== undefined && VOLUME_TRANSFER_COMMANDS.has(sub)) return [(await import("./volume.js")).registerVolume];
      const [volume, mount] = await Promise.all([import("./volume.js"), import("./volume-mount.js")]);
      return [volume.registerVolume, mount.registerVolumeMount];
    },
  },
  { names: ["nfs"], load: async () => [(await import("./nfs.js")).registerNfs] },
  { names: ["run"], load: async () => [(await import("./run.js")).registerRun] },
  { names: ["secret"], load: async () => [(await import("./secret.js")).registerSecret] },
  { names: ["bucket"], load: async () => [(await import("./bucket.js")).registerBucket] },
  { names: ["completion"], load: async () => [(await import("./completion.js")).registerCompletion] },
];

/**
 * The command word in `args` (argv after the script): the first argument that is not a global
 * option, and the word after it (its subcommand, when that follows at once). Undefined when it
 * cannot be told cheaply (an unknown option, or none given).
 */
function commandWords(args: readonly string[]): [string | undefined, string | undefined] {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "-e" || a === "--env") i++;
    else if (a === "--debug" || a.startsWith("--env=")) continue;
    else if (a.startsWith("-")) return [undefined, undefined];
    else return [a, args[i + 1]];
  }
  return [undefined, undefined];
}

const commandWord = (args: readonly string[]) => commandWords(args)[0];

/**
 * Whether `args` run a process meant to last (a server, a mount served in the foreground)
 * rather than a command that ends in seconds.
 */
export function isLongRunning(args: readonly string[]): boolean {
  return commandWord(args) === "serve" || args.includes("--foreground");
}

/**
 * Registers the command named in `args` only, or every command when none is named, the name is
 * unknown, or it is `completion` (help, suggestions for a typo and the completion script list
 * them all).
 */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const [word, sub] = commandWords(args);
  const named = word === "completion" ? undefined : COMMANDS.find((c) => word !== undefined && c.names.includes(word));
  const chosen = named ? [named] : COMMANDS;
  const registers = await Promise.all(chosen.map((c) => c.load(named ? sub : undefined)));
  for (const register of registers.flat()) register(program);
}
