/**
 * Small formatters for table cells: local times with a relative age, sizes, short hashes.
 */

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `2025-06-01 14:03` in the local time zone (minutes: the relative age gives the seconds). */
export function localTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** `5m ago`, `2h ago`, `3d ago`; `in 4s` for a time ahead of `nowMs` (clock skew). */
export function relativeAge(epochMs: number, nowMs: number): string {
  const seconds = Math.round((nowMs - epochMs) / 1000);
  const magnitude = Math.abs(seconds);
  const amount = magnitude < 60 ? `${magnitude}s` : magnitude < 3600 ? `${Math.floor(magnitude / 60)}m` : magnitude < 86_400 ? `${Math.floor(magnitude / 3600)}h` : `${Math.floor(magnitude / 86_400)}d`;
  return seconds >= 0 ? `${amount} ago` : `in ${amount}`;
}

/** Local time and age, `2025-06-01 14:03 (5m ago)`; `-` for 0 (unknown). */
export function timeWithAge(epochMs: number, nowMs: number): string {
  return epochMs > 0 ? `${localTime(epochMs)} (${relativeAge(epochMs, nowMs)})` : '-';
}

/** `812 B`, `1.2 KiB`, `3.4 MiB`. */
export function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The first 12 hex digits of a hash. */
export function shortHash(hex: string): string {
  return hex.slice(0, 12);
}
