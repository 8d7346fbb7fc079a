/**
 * `cutover kv get|put|del|range|watch`, over `cutover.v1.KV`: the replicated store, for debugging.
 */
import { Option, type Command } from 'commander';
import { CommandFailedError } from '../cli-errors.ts';
import type { MessageObject } from '../client/schema.ts';
import { emit, emitItem, table, type Column, type Output } from '../output/output.ts';
import { parseCount, runAction } from './context.ts';

const KV = 'cutover.v1.KV';

interface KeyValue {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
}

interface WatchEvent {
  type: string;
  revision: number;
  kv: KeyValue | null;
  prev_kv: KeyValue | null;
}

function kvTable(output: Output, kvs: readonly KeyValue[], empty: string): string {
  const columns: Column<KeyValue>[] = [
    { header: 'KEY', cell: (kv) => kv.key, flexible: 1 },
    { header: 'VALUE', cell: (kv) => kv.value, flexible: 1 },
    { header: 'MOD-REV', cell: (kv) => String(kv.mod_revision), align: 'right' },
    { header: 'VERSION', cell: (kv) => String(kv.version), align: 'right' },
  ];
  return table(output, columns, kvs, empty);
}

function eventLine(event: WatchEvent): string {
  const key = event.kv?.key ?? event.prev_kv?.key ?? '';
  return event.type === 'DELETE' ? `DELETE ${key} (revision ${event.revision})` : `PUT ${key} = ${event.kv?.value ?? ''} (revision ${event.revision})`;
}

/** Registers `cutover kv …`. */
export function registerKvCommands(program: Command): void {
  const kv = program.command('kv').description('the replicated key-value store, for debugging (cutover.v1.KV)');

  kv.command('get')
    .description('read one key (exit 1 when it does not exist)')
    .argument('<key>', 'the key')
    .option('--serializable', 'read this node\'s copy without asking the leader (may be stale)')
    .action(
      runAction(async (context, [key], flags) => {
        const response = await context.session().unary(`${KV}/Get`, { key: String(key), serializable: flags.serializable === true }, { idempotent: true });
        if (context.output.format !== 'table' || response.found === true) emit(context.output, response, () => kvTable(context.output, [response.kv as KeyValue], ''));
        if (response.found !== true) throw new CommandFailedError('KEY_NOT_FOUND', `key "${String(key)}" does not exist (revision ${Number(response.revision)})`, 'list keys with `cutover kv range <prefix>`');
      }),
    );

  kv.command('put')
    .description('set a key')
    .argument('<key>', 'the key')
    .argument('<value>', 'the value (text)')
    .action(
      runAction(async (context, [key, value]) => {
        // Setting a value twice leaves the same value: safe to repeat on another node.
        const response = await context.session().unary(`${KV}/Put`, { key: String(key), value: String(value) }, { idempotent: true });
        emit(context.output, response, () => `${String(key)} = ${String(value)} (revision ${Number(response.revision)})`);
      }),
    );

  kv.command('del')
    .description('delete a key, or every key under a prefix')
    .argument('<key>', 'the key (or prefix)')
    .option('--prefix', 'delete every key that starts with <key>')
    .action(
      runAction(async (context, [key], flags) => {
        const response = await context.session().unary(`${KV}/Delete`, { key: String(key), prefix: flags.prefix === true }, { idempotent: true });
        const deleted = response.deleted as KeyValue[];
        emit(context.output, response, () => `deleted ${deleted.length} key${deleted.length === 1 ? '' : 's'} (revision ${Number(response.revision)})`);
      }),
    );

  kv.command('range')
    .description('read every key under a prefix, in key order')
    .argument('[prefix]', 'the prefix; all keys when omitted', '')
    .addOption(new Option('--limit <n>', 'most keys; 0 = up to the server\'s maximum').default('0'))
    .option('--serializable', 'read this node\'s copy without asking the leader (may be stale)')
    .action(
      runAction(async (context, [prefix], flags) => {
        const request = { prefix: String(prefix), limit: parseCount('--limit', String(flags.limit), { min: 0 }), serializable: flags.serializable === true };
        const response = await context.session().unary(`${KV}/Range`, request, { idempotent: true });
        const more = response.more === true ? `(more keys after these: raise --limit or narrow the prefix)\n` : '';
        emit(context.output, response, () => kvTable(context.output, response.kvs as KeyValue[], `no keys under "${String(prefix)}" (revision ${Number(response.revision)})`) + more);
      }),
    );

  kv.command('watch')
    .description('print changes under a prefix as they happen (Ctrl-C stops); -o json prints one JSON event per line')
    .argument('[prefix]', 'the prefix; all keys when omitted', '')
    .addOption(new Option('--rev <n>', 'first revision to print; 0 = only changes from now').default('0'))
    .addOption(new Option('--count <n>', 'stop after this many events; 0 = never').default('0'))
    .action(
      runAction(async (context, [prefix], flags) => {
        const startRevision = parseCount('--rev', String(flags.rev), { min: 0 });
        const countMax = parseCount('--count', String(flags.count), { min: 0 });
        let seen = 0;
        let lastRevision = 0;
        // A watch resumed on another node starts after the last event printed: none twice, none lost.
        const request = (): MessageObject => ({ prefix: String(prefix), start_revision: lastRevision > 0 ? lastRevision + 1 : startRevision });
        await context.session().serverStream(
          `${KV}/Watch`,
          request,
          (message) => {
            for (const event of message.events as WatchEvent[]) {
              if (countMax > 0 && seen >= countMax) return false;
              emitItem(context.output, event, () => eventLine(event));
              lastRevision = Math.max(lastRevision, event.revision);
              seen++;
            }
            return countMax === 0 || seen < countMax;
          },
          { idempotent: true },
        );
      }),
    );
}
