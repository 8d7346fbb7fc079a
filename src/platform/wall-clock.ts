/**
 * Wall-clock time, for the few places that need a date rather than a duration: gRPC deadlines
 * (grpc-js takes them as epoch milliseconds) and timestamps shown to people.
 */
export function epochMs(): number {
  return Date.now();
}

/** A gRPC deadline `timeoutMs` from now. */
export function deadlineIn(timeoutMs: number): number {
  return Date.now() + timeoutMs;
}
