/**
 * Types of the replicated key-value store. Keys are UTF-8 strings; values are strings (JSON by
 * convention in Cutover's layout, but the store does not parse them).
 */

/** A stored key with its MVCC metadata. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the put that created the key (since its last deletion). */
  readonly createRevision: number;
  /** Revision of the last put to the key. */
  readonly modRevision: number;
  /** Number of puts since the key was created; 1 after the first. */
  readonly version: number;
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'exists';
export type CompareOp = '=' | '!=' | '<' | '>';

/** One condition of a transaction. A missing key has version, createRevision and modRevision 0. */
export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  /** A string for `value`, a number for revisions/version, a boolean for `exists`. */
  readonly value: string | number | boolean;
}

export type Operation =
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'deletePrefix'; readonly prefix: string }
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'range'; readonly prefix: string; readonly limit: number };

/** A write command as it travels through the Raft log. */
export type Command =
  | Operation
  | { readonly type: 'txn'; readonly compare: readonly Compare[]; readonly success: readonly Operation[]; readonly failure: readonly Operation[] }
  | { readonly type: 'compact'; readonly revision: number };

/** A command with the client identity that makes a retried proposal apply once. */
export interface Request {
  /** 0 means "no dedup" (the command is applied every time it is committed). */
  readonly clientId: number;
  readonly sequence: number;
  readonly command: Command;
  /**
   * Set by a follower that forwarded the request to its leader: `nodeId:nonce:counter`, unique
   * across the follower's restarts, so the follower can recognise the entry when it applies it.
   * The state machine ignores it.
   */
  readonly origin?: string;
}

export type OperationResult =
  | { readonly type: 'put'; readonly revision: number; readonly prev: KeyValue | undefined }
  | { readonly type: 'delete'; readonly revision: number; readonly deleted: readonly KeyValue[] }
  | { readonly type: 'get'; readonly kv: KeyValue | undefined }
  | { readonly type: 'range'; readonly kvs: readonly KeyValue[]; readonly more: boolean };

export type CommandResult =
  | OperationResult
  | { readonly type: 'txn'; readonly succeeded: boolean; readonly revision: number; readonly results: readonly OperationResult[] }
  | { readonly type: 'compact'; readonly revision: number };

/** A change seen by a watcher. `prev` is the value before the change, if the key existed. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly revision: number;
  readonly kv: KeyValue;
  readonly prev: KeyValue | undefined;
}
