/**
 * The API as reflection describes it: a protobufjs Root built from the server's
 * FileDescriptorProtos, the services the server lists, and the conversions between JSON-like
 * objects and wire bytes that every CLI command uses (no compiled stubs).
 *
 * Objects use the field names of the .proto files (snake_case). Decoded messages carry every
 * field (defaults filled in), 64-bit integers as numbers, enums as their names and bytes as
 * base64, so `-o json` output has one stable shape per message.
 */
import protobuf from 'protobufjs';
import { UsageError } from '../cli-errors.ts';

/** What a decoded message looks like: `toObject` with these options. */
export const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: true, arrays: true, objects: true, oneofs: false };

/** A method resolved against the schema. */
export interface MethodSchema {
  /** Fully qualified service name, e.g. `cutover.v1.KV`. */
  readonly service: string;
  readonly name: string;
  /** The HTTP/2 path, `/cutover.v1.KV/Put`. */
  readonly path: string;
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** A JSON-like message value keyed by .proto field names. */
export type MessageObject = Record<string, unknown>;

interface DescriptorExtension {
  readonly FileDescriptorProto: protobuf.Type;
  readonly FileDescriptorSet: protobuf.Type;
}
type RootWithDescriptors = typeof protobuf.Root & { fromDescriptor(set: protobuf.Message): protobuf.Root };

/**
 * protobufjs' descriptor extension (it adds `Root.fromDescriptor`), loaded on first use: only a
 * cache miss pays for it.
 */
async function descriptorExtension(): Promise<DescriptorExtension> {
  return (await import('protobufjs/ext/descriptor/index.js')).default as unknown as DescriptorExtension;
}

/** Names of files that `files` import but do not include (reflection may leave them to be asked for). */
export async function missingDependencies(files: readonly Uint8Array[]): Promise<string[]> {
  const descriptor = await descriptorExtension();
  const protos = files.map((bytes) => descriptor.FileDescriptorProto.decode(bytes) as unknown as { name: string; dependency: string[] });
  const present = new Set(protos.map((p) => p.name));
  return [...new Set(protos.flatMap((p) => p.dependency))].filter((name) => !present.has(name));
}

/** See the module comment. */
export class ApiSchema {
  constructor(
    readonly root: protobuf.Root,
    /** Fully qualified names of the services the server lists, sorted. */
    readonly services: readonly string[],
  ) {}

  /** Builds the Root from serialized FileDescriptorProtos (any order; every dependency must be among them). */
  static async fromFileDescriptors(files: readonly Uint8Array[], services: readonly string[]): Promise<ApiSchema> {
    const descriptor = await descriptorExtension();
    const protos = files.map((bytes) => descriptor.FileDescriptorProto.decode(bytes));
    const set = descriptor.FileDescriptorSet.create({ file: protos });
    const root = (protobuf.Root as RootWithDescriptors).fromDescriptor(set);
    root.resolveAll();
    return new ApiSchema(root, [...services].sort());
  }

  /**
   * From the JSON form that `toJSON` wrote (the descriptor cache). Types resolve on first use
   * (`method()`, encoding, decoding, `field.resolve()`), not all at once as `Root.fromJSON` does:
   * resolving the whole API and generating every message's constructor cost ~10 ms of each
   * command's start-up, for the handful of types one command uses.
   */
  static fromJSON(json: protobuf.INamespace, services: readonly string[]): ApiSchema {
    const root = new protobuf.Root();
    if (json.options !== undefined) root.setOptions(json.options);
    root.addJSON(json.nested ?? {});
    return new ApiSchema(root, services);
  }

  toJSON(): protobuf.INamespace {
    return this.root.toJSON();
  }

  /**
   * The service named `name`: fully qualified, or a unique suffix of a listed service after a dot
   * (`KV`, `v1.KV`). Throws UsageError naming the listed services otherwise.
   */
  service(name: string): protobuf.Service {
    const candidates = this.services.filter((s) => s === name || s.endsWith(`.${name}`));
    const exact = candidates.find((s) => s === name);
    const chosen = exact ?? (candidates.length === 1 ? candidates[0] : undefined);
    if (chosen === undefined) {
      const why = candidates.length > 1 ? `is ambiguous (${candidates.join(', ')})` : 'is not served';
      throw new UsageError(`service "${name}" ${why}; the node serves ${this.services.join(', ')}`, 'run `cutover describe` to see every service and method');
    }
    return this.root.lookupService(chosen);
  }

  /** `service/Method` or `service.Method`, with the service as `service()` accepts it. */
  method(reference: string): MethodSchema {
    const slash = reference.lastIndexOf('/');
    const split = slash >= 0 ? slash : reference.lastIndexOf('.');
    if (split <= 0 || split === reference.length - 1) throw new UsageError(`"${reference}" is not service/Method`, 'for example `cutover call cutover.v1.KV/Get \'{"key":"a"}\'`');
    const service = this.service(reference.slice(0, split).replace(/^\//, ''));
    const name = reference.slice(split + 1);
    const method = service.methods[name];
    if (method === undefined) throw new UsageError(`${fullName(service)} has no method "${name}"; it has ${Object.keys(service.methods).join(', ')}`, `run \`cutover describe ${fullName(service)}\``);
    method.resolve();
    const { resolvedRequestType: request, resolvedResponseType: response } = method;
    if (request === null || response === null) throw new UsageError(`the types of ${fullName(service)}/${name} did not resolve`, 'the node\'s reflection data is incomplete');
    return { service: fullName(service), name, path: `/${fullName(service)}/${name}`, request, response, requestStream: method.requestStream === true, responseStream: method.responseStream === true };
  }

  /** A message type by fully qualified name, or undefined. */
  type(name: string): protobuf.Type | undefined {
    const found = this.root.lookup(name.replace(/^\./, ''));
    return found instanceof protobuf.Type ? found : undefined;
  }
}

/** A reflection object's name without protobufjs' leading dot. */
export function fullName(object: protobuf.ReflectionObject): string {
  return object.fullName.replace(/^\./, '');
}

/** Encodes a message object (already in .proto field names) to wire bytes. */
export function encodeMessage(type: protobuf.Type, value: MessageObject): Buffer {
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

/**
 * Decodes wire bytes to a message object with `DECODE_OPTIONS`, its keys in .proto field order
 * (protobufjs puts repeated fields first), so that JSON output reads like the .proto.
 */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): MessageObject {
  return inFieldOrder(type, type.toObject(type.decode(bytes), DECODE_OPTIONS));
}

function inFieldOrder(type: protobuf.Type, object: MessageObject): MessageObject {
  const out: MessageObject = {};
  for (const field of type.fieldsArray) {
    if (!(field.name in object)) continue;
    const value = object[field.name];
    const nested = field.resolve().resolvedType;
    if (!(nested instanceof protobuf.Type) || value === null || value === undefined) out[field.name] = value;
    else if (field.map) out[field.name] = Object.fromEntries(Object.entries(value as MessageObject).map(([k, v]) => [k, inFieldOrder(nested, v as MessageObject)]));
    else if (field.repeated) out[field.name] = (value as MessageObject[]).map((v) => inFieldOrder(nested, v));
    else out[field.name] = inFieldOrder(nested, value as MessageObject);
  }
  return out;
}

/**
 * Checks JSON typed by a person against `type` and returns it keyed by .proto field names. Keys
 * may be the .proto name or its lowerCamelCase JSON name; an unknown key is a UsageError that lists
 * the fields, where protobufjs would silently drop it.
 */
export function messageFromJson(type: protobuf.Type, value: unknown, at = type.name): MessageObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${at} must be a JSON object, got ${JSON.stringify(value)}`, `run \`cutover describe ${fullName(type)}\` to see its fields`);
  const out: MessageObject = {};
  for (const [key, item] of Object.entries(value)) {
    const field = type.fields[key] ?? type.fieldsArray.find((f) => protobuf.util.camelCase(f.name) === key);
    if (field === undefined) {
      throw new UsageError(`${fullName(type)} has no field "${key}" (at ${at}); its fields are ${type.fieldsArray.map((f) => f.name).join(', ') || 'none'}`, `run \`cutover describe ${fullName(type)}\``);
    }
    out[field.name] = fieldFromJson(field, item, `${at}.${field.name}`);
  }
  return out;
}

function fieldFromJson(field: protobuf.Field, value: unknown, at: string): unknown {
  field.resolve();
  const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
  if (nested === undefined || value === null) return value;
  if (field.map) {
    if (typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${at} must be a JSON object (a map)`, 'check the JSON');
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, messageFromJson(nested, v, `${at}[${k}]`)]));
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new UsageError(`${at} must be a JSON array`, 'check the JSON');
    return value.map((v, i) => messageFromJson(nested, v, `${at}[${i}]`));
  }
  return messageFromJson(nested, value, at);
}
