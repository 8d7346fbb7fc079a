/**
 * The replicated state machine the raft target runs on every node: a map of registers (key → value)
 * with client sessions, so that a retried write (same client id and sequence) applies once and
 * answers with its first result. Commands travel in log entries as JSON. Also the operations its
 * clients run (`registerOperations`).
 */
import { assert } from '../src/util/assert.ts';
import type { RegisterInput, RegisterOutput } from './checkers/register-model.ts';
import type { OperationSpec } from './workload.ts';

/** A write command as it is stored in a log entry. Reads never enter the log. */
export interface RegisterCommand {
  readonly clientId: number;
  readonly sequence: number;
  readonly key: string;
  readonly input: Exclude<RegisterInput, { kind: 'get' }>;
}

interface Session {
  readonly sequence: number;
  readonly output: RegisterOutput;
}

interface SerialisedMachine {
  values: [string, string][];
  sessions: [number, number, RegisterOutput][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes of a command in a log entry (JSON). */
export function encodeCommand(command: RegisterCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** The inverse of `encodeCommand`; asserts on bytes that are not a command (a bug, never input). */
export function decodeCommand(data: Uint8Array): RegisterCommand {
  const command = JSON.parse(decoder.decode(data)) as RegisterCommand;
  assert(typeof command.clientId === 'number' && typeof command.key === 'string', 'register: malformed command');
  return command;
}

/** Registers plus the client session table. */
export class RegisterMachine {
  private readonly values = new Map<string, string>();
  /** The last sequence applied per client and its output: clients have one operation at a time. */
  private readonly sessions = new Map<number, Session>();

  /**
   * Applies `command`. Returns its output, the first output again for a duplicate of the last
   * command of that client, or undefined for an older duplicate (its client has moved on).
   */
  apply(command: RegisterCommand): RegisterOutput | undefined {
    const session = this.sessions.get(command.clientId);
    if (session !== undefined && command.sequence < session.sequence) return undefined;
    if (session !== undefined && command.sequence === session.sequence) return session.output;
    const output = this.execute(command);
    this.sessions.set(command.clientId, { sequence: command.sequence, output });
    return output;
  }

  /** The current value of `key`, null when never written. */
  read(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  /** The whole machine as bytes, in a canonical order (equal machines give equal bytes). */
  serialise(): Uint8Array {
    const values = [...this.values.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const sessions = [...this.sessions.entries()].sort((a, b) => a[0] - b[0]).map(([id, s]): [number, number, RegisterOutput] => [id, s.sequence, s.output]);
    const serialised: SerialisedMachine = { values, sessions };
    return encoder.encode(JSON.stringify(serialised));
  }

  /** A machine restored from `serialise()` output; empty bytes give an empty machine. */
  static restore(data: Uint8Array): RegisterMachine {
    const machine = new RegisterMachine();
    if (data.length === 0) return machine;
    const serialised = JSON.parse(decoder.decode(data)) as SerialisedMachine;
    for (const [key, value] of serialised.values) machine.values.set(key, value);
    for (const [id, sequence, output] of serialised.sessions) machine.sessions.set(id, { sequence, output });
    return machine;
  }

  private execute(command: RegisterCommand): RegisterOutput {
    const input = command.input;
    switch (input.kind) {
      case 'put':
        this.values.set(command.key, input.value);
        return { kind: 'put' };
      case 'cas': {
        const ok = this.read(command.key) === input.expected;
        if (ok) this.values.set(command.key, input.value);
        return { kind: 'cas', ok };
      }
    }
  }
}

/** The raft target's client operations: put, get and compare-and-set by the seed's weights. */
export const registerOperations: OperationSpec<RegisterInput, RegisterOutput> = {
  draw(random, options, clientId, sequence, lastSeen) {
    const { getWeight, putWeight, casWeight } = options;
    const draw = random.nextFloat() * (getWeight + putWeight + casWeight);
    const value = `c${clientId}s${sequence}`;
    if (draw < getWeight) return { kind: 'get' };
    if (draw < getWeight + putWeight) return { kind: 'put', value };
    const expected = random.nextFloat() < 0.2 ? null : lastSeen;
    return { kind: 'cas', expected, value };
  },
  isRead: (input) => input.kind === 'get',
  learn(input, output) {
    if (output.kind === 'get') return output.value;
    if (input.kind !== 'get' && (output.kind === 'put' || (output.kind === 'cas' && output.ok))) return input.value;
    return undefined;
  },
  describe(input) {
    if (input.kind === 'get') return 'get';
    if (input.kind === 'put') return `put ${input.value}`;
    return `cas ${String(input.expected)}=>${input.value}`;
  },
  describeOutput(output) {
    if (output.kind === 'get') return String(output.value);
    if (output.kind === 'cas') return output.ok ? 'ok' : 'failed';
    return 'ok';
  },
};
