/**
 * What every operator command gets: the global flags parsed and checked, a lazily opened Session
 * and the Output. `runAction` wraps a command body so that its channels close when it ends.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { UsageError } from '../cli-errors.ts';
import { cacheDirectory } from '../client/descriptor-cache.ts';
import { Session } from '../client/session.ts';
import { parseOutputFormat, prepareOutput, stdoutOutput, type Output } from '../output/output.ts';

/** The local cluster that `cutover local` (npm start) runs. */
export const DEFAULT_ENDPOINTS = '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
export const DEFAULT_TIMEOUT = '10s';

/** The global flags as commander hands them over. */
export interface GlobalFlags {
  readonly endpoints: string;
  readonly timeout: string;
  readonly output: string;
  readonly color: boolean;
  readonly debug?: boolean;
}

/** A command's view of the world. */
export interface CommandContext {
  readonly output: Output;
  readonly timeoutMs: number;
  readonly debug: boolean;
  /** The session, opened on first use (commands that only print never connect). */
  session(): Session;
}

/** `500ms`, `10s`, `2m`, or a bare number of seconds → milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) throw new UsageError(`${flag} takes a duration like 500ms, 10s or 2m; got "${text}"`, `for example \`${flag} 30s\``);
  const value = Number(match[1]);
  const ms = match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000;
  if (ms <= 0) throw new UsageError(`${flag} must be more than 0; got "${text}"`, `for example \`${flag} 30s\``);
  return ms;
}

/** `host:port,…` → a checked list. */
export function parseEndpoints(text: string): string[] {
  const endpoints = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints is empty', 'give host:port,… or set CUTOVER_ENDPOINTS');
  for (const endpoint of endpoints) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(endpoint) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(endpoint)) {
      throw new UsageError(`--endpoints: "${endpoint}" is not host:port`, 'for example `--endpoints 127.0.0.1:7001,127.0.0.1:7002`');
    }
  }
  return endpoints;
}

/** A positive integer argument or flag value. */
export function parseCount(name: string, text: string, { min = 1 }: { min?: number } = {}): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) throw new UsageError(`${name} must be an integer ≥ ${min}; got "${text}"`, `run the command with --help`);
  return value;
}

/** The OS user, the default actor of every command. */
export function osUser(): string {
  try {
    const name = os.userInfo().username;
    if (name !== '') return name;
  } catch {
    /* no passwd entry (some containers) */
  }
  return process.env.USER ?? process.env.USERNAME ?? 'anonymous';
}

/** `group:artifact`, checked for shape only (the cluster checks the rest). */
export function parseArtifact(text: string): string {
  if (!/^[^:\s]+:[^:\s]+$/.test(text)) throw new UsageError(`"${text}" is not groupId:artifactId`, 'for example `org.example:greeter`');
  return text;
}

/** JSON typed on the command line; `name` says which argument. */
export function parseJsonArgument(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${name} is not valid JSON (${error instanceof Error ? error.message : String(error)})`, `quote it for the shell, for example '{"name":"Ada"}'`);
  }
}

function contextOf(command: Command, open: (session: Session) => void): CommandContext {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const output = stdoutOutput(parseOutputFormat(flags.output), flags.color, process.env);
  const timeoutMs = parseDuration('--timeout', flags.timeout);
  const endpoints = parseEndpoints(flags.endpoints);
  const debug = flags.debug === true;
  let session: Session | undefined;
  return {
    output,
    timeoutMs,
    debug,
    session() {
      if (session === undefined) {
        session = new Session({ endpoints, timeoutMs, cacheDirectory: cacheDirectory(process.env), actor: osUser(), ...(debug ? { trace: (line: string) => process.stderr.write(`cutover: ${line}\n`) } : {}) });
        open(session);
      }
      return session;
    },
  };
}

/**
 * Wraps a command body for commander's `.action()`: the last argument commander passes is the
 * Command, which carries the flags. Channels are closed when the body ends, however it ends.
 */
export function runAction(body: (context: CommandContext, args: readonly unknown[], flags: Record<string, unknown>) => Promise<void>): (...params: unknown[]) => Promise<void> {
  return async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const flags = params[params.length - 2] as Record<string, unknown>;
    const sessions: Session[] = [];
    const context = contextOf(command, (s) => sessions.push(s));
    try {
      await prepareOutput(context.output);
      await body(context, params.slice(0, -2), flags);
    } finally {
      for (const s of sessions) s.close();
    }
  };
}
