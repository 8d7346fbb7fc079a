/**
 * Reading values that other nodes wrote to the replicated store: a bad value is data, not a bug
 * here, so parsers return a reason instead of throwing and the caller ignores and counts it.
 */

/** A parse outcome: the value, or why it was refused. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** A refusal with its reason. */
export function refuse(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

/** Parses a JSON object (not an array, not null); anything else is refused with a reason. */
export function parseJsonObject(value: string): Parsed<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return refuse('value is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return refuse('value is not a JSON object');
  return { ok: true, value: json as Record<string, unknown> };
}
