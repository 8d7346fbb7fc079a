/**
 * Event id sources for changes that are not an update's log entry (API calls, membership,
 * instance health): deterministic text made from what identifies the change, so that a retried
 * write puts the same key. `eventSource` joins the parts with '.', replaces what an id may not
 * hold ('/', whitespace) with '_', and keeps long sources within EVENT_SOURCE_LENGTH_MAX by
 * cutting them and appending a hash of the whole (FNV-1a, 32 bits: the parts are never secret,
 * and the time prefix of the id already separates almost everything).
 */
import { EVENT_SOURCE_LENGTH_MAX } from './event.ts';

const KEPT_LENGTH = EVENT_SOURCE_LENGTH_MAX - 10;

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** A valid, deterministic id source from `parts` (at least one non-empty). */
export function eventSource(...parts: readonly (string | number)[]): string {
  const joined = parts
    .map(String)
    .join('.')
    .replace(/[/\s]/g, '_');
  const text = joined.length === 0 ? '_' : joined;
  return text.length <= EVENT_SOURCE_LENGTH_MAX ? text : `${text.slice(0, KEPT_LENGTH)}~${fnv1a(text)}`;
}
