/**
 * `cutover completion bash|zsh`: a completion script generated from the command tree itself, so
 * it never lists a command or flag that does not exist.
 */
import type { Command } from 'commander';
import { UsageError } from '../cli-errors.ts';
import { OUTPUT_FORMATS } from '../output/output.ts';

interface Level {
  /** `/cluster/status`-style path of subcommand names; '' for the top. */
  readonly path: string;
  readonly commands: readonly { readonly name: string; readonly description: string }[];
  readonly flags: readonly { readonly flag: string; readonly description: string }[];
  /** The command takes a file or directory argument (slice publish). */
  readonly files: boolean;
}

/** Every command level, top first; global flags are offered at every level. */
function levels(program: Command): Level[] {
  const globals = program.options.flatMap((o) => (o.long === undefined ? [] : [{ flag: o.long, description: o.description }]));
  const out: Level[] = [];
  const walk = (command: Command, path: string): void => {
    const own = command === program ? [] : command.options.flatMap((o) => (o.long === undefined ? [] : [{ flag: o.long, description: o.description }]));
    const visible = command.commands.filter((c) => c.name() !== 'help');
    out.push({ path, commands: visible.map((c) => ({ name: c.name(), description: c.description() })), flags: [...own, ...globals, { flag: '--help', description: 'show help' }], files: command.registeredArguments.some((a) => /dir|file|tgz/.test(a.name())) });
    for (const sub of visible) walk(sub, `${path}/${sub.name()}`);
  };
  walk(program, '');
  return out;
}

function shellWords(words: readonly string[]): string {
  return words.join(' ');
}

function bashScript(program: Command): string {
  const all = levels(program);
  const known = all.filter((l) => l.path !== '').map((l) => `"${l.path}"`).join('|');
  const cases = all.map((l) => `    "${l.path}") words="${shellWords([...l.commands.map((c) => c.name), ...l.flags.map((f) => f.flag)])}"; files=${l.files ? 1 : 0} ;;`);
  return `# cutover bash completion. Load it with: source <(cutover completion bash)
_cutover() {
  local cur prev cmdpath="" word words="" files=0 i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "$cmdpath/$word" in
      ${known}) cmdpath="$cmdpath/$word" ;;
    esac
  done
  case "$prev" in
    -o|--output) COMPREPLY=( $(compgen -W "${OUTPUT_FORMATS.join(' ')}" -- "$cur") ); return ;;
  esac
  case "$cmdpath" in
${cases.join('\n')}
  esac
  if [[ $files == 1 && $cur != -* ]]; then
    COMPREPLY=( $(compgen -f -- "$cur") )
  else
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  fi
}
complete -o filenames -F _cutover cutover
`;
}

/** A zsh _describe entry: `name:description`, with colons in the name escaped. */
function zshEntry(name: string, description: string): string {
  return `'${name.replace(/:/g, '\\:')}:${description.replace(/'/g, "'\\''")}'`;
}

function zshScript(program: Command): string {
  const all = levels(program);
  const known = all.filter((l) => l.path !== '').map((l) => `"${l.path}"`).join('|');
  const cases = all.map((l) => {
    const commands = l.commands.map((c) => zshEntry(c.name, c.description)).join(' ');
    const flags = l.flags.map((f) => zshEntry(f.flag, f.description)).join(' ');
    const files = l.files ? ' _files;' : '';
    return `    "${l.path}") subcommands=(${commands}); flags=(${flags});${files} ;;`;
  });
  return `#compdef cutover
# cutover zsh completion. Load it with: source <(cutover completion zsh)
_cutover() {
  local cmdpath="" word i
  local -a subcommands flags
  for ((i = 2; i < CURRENT; i++)); do
    word="\${words[i]}"
    case "$cmdpath/$word" in
      ${known}) cmdpath="$cmdpath/$word" ;;
    esac
  done
  case "\${words[CURRENT-1]}" in
    -o|--output) compadd ${OUTPUT_FORMATS.join(' ')}; return ;;
  esac
  case "$cmdpath" in
${cases.join('\n')}
  esac
  (( \${#subcommands} )) && _describe 'command' subcommands
  [[ \${words[CURRENT]} == -* ]] && _describe 'flag' flags
}
compdef _cutover cutover
`;
}

/** Registers `cutover completion`. */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(cutover completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashScript(program));
      else if (shell === 'zsh') process.stdout.write(zshScript(program));
      else throw new UsageError(`no completion for "${shell}"; bash and zsh are supported`, 'run `cutover completion bash` or `cutover completion zsh`');
    });
}
