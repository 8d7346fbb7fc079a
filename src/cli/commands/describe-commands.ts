/**
 * `cutover describe [symbol]` (what reflection says) and `cutover call <service/method> [json]`
 * (any method, generic): the two commands that expose the reflection-driven client directly.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import protobuf from 'protobufjs';
import { UsageError } from '../cli-errors.ts';
import { fullName, messageFromJson, type ApiSchema, type MessageObject, type MethodSchema } from '../client/schema.ts';
import { serviceOf } from '../client/session.ts';
import { emit, emitItem, type Output } from '../output/output.ts';
import { describeFields, describeMethod, methodLine, serviceText, typeText } from '../output/proto-text.ts';
import { parseJsonArgument, runAction, type CommandContext } from './context.ts';

/** Every service, its methods wrapped under it to fit the width. */
function servicesText(output: Output, schema: ApiSchema): string {
  const nameWidth = Math.max(...schema.services.map((s) => s.length));
  const lines: string[] = [];
  for (const name of schema.services) {
    const methods = Object.keys(schema.root.lookupService(name).methods);
    const room = Math.max(20, output.width - nameWidth - 2);
    let line = '';
    const wrapped: string[] = [];
    for (const method of methods) {
      if (line !== '' && line.length + 1 + method.length > room) {
        wrapped.push(line);
        line = method;
      } else line = line === '' ? method : `${line} ${method}`;
    }
    wrapped.push(line);
    wrapped.forEach((text, i) => lines.push(`${i === 0 ? output.styles.bold(name.padEnd(nameWidth)) : ' '.repeat(nameWidth)}  ${text}`.trimEnd()));
  }
  return `${lines.join('\n')}\n`;
}

function describeAll(context: CommandContext, schema: ApiSchema): void {
  const data = { services: schema.services.map((name) => ({ name, methods: schema.root.lookupService(name).methodsArray.map(describeMethod) })) };
  emit(context.output, data, () => servicesText(context.output, schema));
}

function describeMethodSymbol(context: CommandContext, schema: ApiSchema, method: MethodSchema): void {
  const service = schema.root.lookupService(method.service);
  const rpc = service.methods[method.name]!;
  const data = { service: method.service, method: describeMethod(rpc), request: { name: fullName(method.request), fields: describeFields(method.request) }, response: { name: fullName(method.response), fields: describeFields(method.response) } };
  emit(context.output, data, () => [`${method.service}:`, methodLine(rpc, service), '', typeText(method.request), '', typeText(method.response)].join('\n'));
}

/** Resolves `symbol` as a method, a service, or a message or enum type, in that order. */
function describeSymbol(context: CommandContext, schema: ApiSchema, symbol: string): void {
  if (symbol.includes('/')) return describeMethodSymbol(context, schema, schema.method(symbol));
  const named = schema.root.lookup(symbol.replace(/^\./, ''));
  if (named instanceof protobuf.Service || schema.services.some((s) => s.endsWith(`.${symbol}`))) {
    const service = named instanceof protobuf.Service ? named : schema.service(symbol);
    emit(context.output, { service: fullName(service), methods: service.methodsArray.map(describeMethod) }, () => serviceText(service));
    return;
  }
  if (named instanceof protobuf.Type || named instanceof protobuf.Enum) {
    const data = named instanceof protobuf.Type ? { message: fullName(named), fields: describeFields(named) } : { enum: fullName(named), values: named.values };
    emit(context.output, data, () => typeText(named));
    return;
  }
  if (named instanceof protobuf.Method) return describeMethodSymbol(context, schema, schema.method(`${fullName(named.parent!)}/${named.name}`));
  throw new UsageError(`reflection knows no service, method or type "${symbol}"`, 'run `cutover describe` to list services');
}

/** The request messages for `call`: one object, or an array for a client-streaming method. */
function callMessages(method: MethodSchema, text: string): MessageObject[] {
  const json = parseJsonArgument('[json]', text === '-' ? readFileSync(0, 'utf8') : text);
  if (Array.isArray(json)) {
    if (!method.requestStream) throw new UsageError(`${method.service}/${method.name} takes one request, not an array`, 'pass one JSON object');
    return json.map((item, i) => messageFromJson(method.request, item, `[${i}]`));
  }
  return [messageFromJson(method.request, json)];
}

async function call(context: CommandContext, reference: string, text: string, idempotent: boolean): Promise<void> {
  const session = context.session();
  const method = (await session.schema(serviceOf(reference))).method(reference);
  const messages = callMessages(method, text);
  const options = { idempotent };
  const print = (message: MessageObject): void => emitItem(context.output, message, () => JSON.stringify(message, null, 2));
  if (!method.requestStream && !method.responseStream) {
    const response = await session.unary(reference, messages[0]!, options);
    emit(context.output, response, () => JSON.stringify(response, null, 2));
  } else if (method.requestStream && !method.responseStream) {
    const response = await session.clientStream(reference, messages, options);
    emit(context.output, response, () => JSON.stringify(response, null, 2));
  } else if (!method.requestStream) {
    await session.serverStream(reference, () => messages[0]!, (m) => (print(m), true), options);
  } else {
    await session.bidiStream(reference, messages, print, options);
  }
}

/** Registers `cutover describe` and `cutover call`. */
export function registerDescribeCommands(program: Command): void {
  program
    .command('describe')
    .description('what the node\'s gRPC reflection says: every service, or one service, method or message')
    .argument('[symbol]', 'a service (cutover.v1.KV or KV), a method (KV/Put) or a message type (cutover.v1.PutRequest)')
    .action(
      runAction(async (context, [symbol]) => {
        // A fresh discovery, not the cache: this command is about what the node says now.
        const schema = await context.session().schema();
        if (symbol === undefined) describeAll(context, schema);
        else describeSymbol(context, schema, String(symbol));
      }),
    );

  program
    .command('call')
    .description('call any method by name with a JSON request; prints the JSON response (streams: one per message)')
    .argument('<service/method>', 'e.g. cutover.v1.KV/Get or KV/Get')
    .argument('[json]', 'the request as JSON (.proto or lowerCamelCase field names); an array for a client-streaming method; - reads stdin', '{}')
    .option('--idempotent', 'the call is safe to repeat: retry it on another node after UNAVAILABLE')
    .action(runAction(async (context, [reference, json], flags) => call(context, String(reference), String(json), flags.idempotent === true)));
}
