/**
 * Branded numeric types: a term is not an index and an index is not a count. The brands cost
 * nothing at run time; they stop the compiler from mixing them up.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A Raft term. Starts at 0, only grows. */
export type Term = Brand<number, 'Term'>;
/** A position in the Raft log. 0 means "before the first entry". */
export type LogIndex = Brand<number, 'LogIndex'>;
/** A cluster member id. 0 means "none". */
export type NodeId = Brand<number, 'NodeId'>;
/** A KV store revision. */
export type Revision = Brand<number, 'Revision'>;

export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;
export const nodeId = (n: number): NodeId => n as NodeId;
export const revision = (n: number): Revision => n as Revision;

/** The "no node" id, used for "no vote" and "no leader known". */
export const NONE = 0 as NodeId;
