import type { Command, Option } from "commander";
import { UsageError } from "./output.js";

/** One command of the tree, as the completion scripts need it. */
interface Node {
  path: string[];
  subcommands: string[];
  options: string[];
}

const optionFlags = (options: readonly Option[]): string[] =>
  options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f && !o.hidden));

/** Every command of the program, depth first, with its subcommand names and option flags. */
function walk(cmd: Command, path: string[] = []): Node[] {
  const subs = cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
  const node: Node = {
    path,
    subcommands: subs.flatMap((c) => [c.name(), ...c.aliases()]),
    options: [...optionFlags(cmd.options), "--help"],
  };
  return [node, ...subs.flatMap((c) => [c.name(), ...c.aliases()].flatMap((name) => walk(c, [...path, name])))];
}

const words = (list: string[]) => list.join(" ");

function bash(program: string, nodes: Node[]): string {
  const cases = nodes
    .map((n) => `    "${n.path.join(" ")}") subs="${words(n.subcommands)}"; opts="${words(n.options)}" ;;`)
    .join("\n");
  return `# bash completion for ${program}; load with: source <(${program} completion bash)
_${program}_complete() {
  local cur cmdpath="" w i subs opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if _${program}_known "\${cmdpath:+$cmdpath }$w"; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  _${program}_node "$cmdpath"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$subs" ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
_${program}_node() {
  subs=""; opts=""
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
_${program}_known() { local subs opts; _${program}_node "$1"; }
complete -F _${program}_complete ${program}
`;
}

function zsh(program: string, nodes: Node[]): string {
  const cases = nodes.map((n) => `    "${n.path.join(" ")}") subs=(${words(n.subcommands)}); opts=(${words(n.options)}) ;;`).join("\n");
  return `#compdef ${program}
# zsh completion for ${program}; load with: source <(${program} completion zsh)  (after compinit)
_${program}_node() {
  subs=(); opts=()
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
_${program}() {
  local cmdpath="" w i
  local -a subs opts
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if _${program}_node "\${cmdpath:+$cmdpath }$w"; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  _${program}_node "$cmdpath"
  if [[ "$PREFIX" == -* ]]; then
    compadd -- $opts
  elif (( \${#subs} )); then
    compadd -- $subs
  else
    _files
  fi
}
compdef _${program} ${program}
`;
}

function fish(program: string, nodes: Node[]): string {
  const lines: string[] = [`# fish completion for ${program}; load with: ${program} completion fish | source`, `complete -c ${program} -f`];
  for (const n of nodes) {
    // fish's __fish_seen_subcommand_from cannot tell levels apart; match the exact command path instead.
    const cond = `__${program}_path_is '${n.path.join(" ")}'`;
    if (n.subcommands.length) lines.push(`complete -c ${program} -n "${cond}" -a '${words(n.subcommands)}'`);
    for (const flag of n.options) {
      lines.push(flag.startsWith("--") ? `complete -c ${program} -n "${cond}" -l '${flag.slice(2)}'` : `complete -c ${program} -n "${cond}" -s '${flag.slice(1)}'`);
    }
  }
  const known = nodes.map((n) => `'${n.path.join(" ")}'`).join(" ");
  return `function __${program}_path_is
    set -l path ''
    for w in (commandline -opc)[2..-1]
        string match -q -- '-*' $w; and continue
        set -l next (string trim -- "$path $w")
        contains -- $next ${known}; and set path $next
    end
    test "$path" = "$argv[1]"
end
${lines.join("\n")}
`;
}

const SHELLS = { bash, zsh, fish } as const;

export function registerCompletion(program: Command): void {
  program
    .command("completion <shell>")
    .description("Print a shell completion script (bash, zsh or fish)")
    .addHelpText(
      "after",
      "\nLoad it in the current shell, or add the line to your shell's start-up file:\n" +
        "  bash:  source <(silo completion bash)\n" +
        "  zsh:   source <(silo completion zsh)      (after compinit)\n" +
        "  fish:  silo completion fish | source",
    )
    .action((shell: string) => {
      const make = SHELLS[shell as keyof typeof SHELLS];
      if (!make) throw new UsageError(`Unknown shell '${shell}': choose bash, zsh or fish`);
      process.stdout.write(make(program.name(), walk(program)));
    });
}
