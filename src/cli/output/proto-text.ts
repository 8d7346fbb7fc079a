/**
 * Services, methods and messages as reflection describes them, printed in .proto syntax (for
 * `cutover describe`), and the same as plain data (for `-o json|yaml`).
 */
import protobuf from 'protobufjs';
import { fullName } from '../client/schema.ts';

/** `describe` data for one method. */
export interface MethodDescription {
  name: string;
  request_type: string;
  response_type: string;
  client_streaming: boolean;
  server_streaming: boolean;
}

/** `describe` data for one field. */
export interface FieldDescription {
  name: string;
  number: number;
  type: string;
  label: 'repeated' | 'map' | 'optional' | '';
  oneof: string;
}

/** A name as seen from `context`: without the package (or enclosing message) they share. */
function relativeName(target: protobuf.ReflectionObject, context: protobuf.ReflectionObject): string {
  const name = fullName(target);
  for (let scope: protobuf.ReflectionObject | null = context; scope !== null && scope.parent !== null; scope = scope.parent) {
    const prefix = `${fullName(scope)}.`;
    if (prefix !== '.' && name.startsWith(prefix)) return name.slice(prefix.length);
  }
  return name;
}

function typeName(field: protobuf.Field, context: protobuf.ReflectionObject): string {
  field.resolve();
  return field.resolvedType === null ? field.type : relativeName(field.resolvedType, context);
}

export function describeMethod(method: protobuf.Method): MethodDescription {
  method.resolve();
  return {
    name: method.name,
    request_type: method.resolvedRequestType === null ? method.requestType : fullName(method.resolvedRequestType),
    response_type: method.resolvedResponseType === null ? method.responseType : fullName(method.resolvedResponseType),
    client_streaming: method.requestStream === true,
    server_streaming: method.responseStream === true,
  };
}

/** `rpc Put(PutRequest) returns (PutResponse);` with names relative to the service's package. */
export function methodLine(method: protobuf.Method, service: protobuf.Service): string {
  method.resolve();
  const name = (type: protobuf.Type | null, fallback: string): string => (type === null ? fallback : relativeName(type, service));
  const request = `${method.requestStream === true ? 'stream ' : ''}${name(method.resolvedRequestType, method.requestType)}`;
  const response = `${method.responseStream === true ? 'stream ' : ''}${name(method.resolvedResponseType, method.responseType)}`;
  return `rpc ${method.name}(${request}) returns (${response});`;
}

export function serviceText(service: protobuf.Service): string {
  return [`service ${fullName(service)} {`, ...service.methodsArray.map((m) => `  ${methodLine(m, service)}`), '}'].join('\n');
}

/** Proto3 synthetic oneofs (`optional` fields) start with an underscore and hold one field. */
function isSyntheticOneof(oneof: protobuf.OneOf): boolean {
  return oneof.name.startsWith('_') && oneof.fieldsArray.length === 1;
}

export function describeFields(type: protobuf.Type): FieldDescription[] {
  return type.fieldsArray.map((field) => {
    const oneof = field.partOf !== null && !isSyntheticOneof(field.partOf) ? field.partOf.name : '';
    const label = field.map ? 'map' : field.repeated ? 'repeated' : field.partOf !== null && isSyntheticOneof(field.partOf) ? 'optional' : '';
    const type = field.map ? `map<${(field as unknown as protobuf.MapField).keyType}, ${typeName(field, field.parent ?? field)}>` : typeName(field, field.parent ?? field);
    return { name: field.name, number: field.id, type, label, oneof };
  });
}

function fieldLine(field: FieldDescription): string {
  const label = field.label === 'repeated' || field.label === 'optional' ? `${field.label} ` : '';
  return `${label}${field.type} ${field.name} = ${field.number};`;
}

/** A message (with its nested messages and enums) or an enum in .proto syntax. */
export function typeText(object: protobuf.Type | protobuf.Enum, indent = ''): string {
  if (object instanceof protobuf.Enum) {
    const values = Object.entries(object.values).map(([name, number]) => `${indent}  ${name} = ${number};`);
    return [`${indent}enum ${object.name} {`, ...values, `${indent}}`].join('\n');
  }
  const lines = [`${indent}message ${object.name} {`];
  for (const nested of object.nestedArray) {
    if (nested instanceof protobuf.Type || nested instanceof protobuf.Enum) lines.push(typeText(nested, `${indent}  `));
  }
  const fields = describeFields(object);
  const oneofs = new Map<string, FieldDescription[]>();
  for (const field of fields) {
    if (field.oneof === '') lines.push(`${indent}  ${fieldLine(field)}`);
    else oneofs.set(field.oneof, [...(oneofs.get(field.oneof) ?? []), field]);
  }
  for (const [name, members] of oneofs) {
    lines.push(`${indent}  oneof ${name} {`, ...members.map((f) => `${indent}    ${fieldLine(f)}`), `${indent}  }`);
  }
  lines.push(`${indent}}`);
  return lines.join('\n');
}
