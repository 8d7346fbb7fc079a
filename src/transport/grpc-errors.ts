/**
 * Cutover errors over gRPC, for every server and client in the process: the status comes from the
 * one code table (src/util/status-table.ts), our code and the leader hint travel in trailers.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { CutoverError, NotLeaderError } from '../util/errors.ts';
import { statusOfCode } from '../util/status-table.ts';

/** Metadata keys that carry our error code and the leader hint. */
export const ERROR_CODE_KEY = 'cutover-error-code';
export const LEADER_ID_KEY = 'cutover-leader-id';
export const LEADER_ADDRESS_KEY = 'cutover-leader-address';

/**
 * Turns any error into a gRPC ServiceError: the status from the table, the message, and our
 * code in trailing metadata; NOT_LEADER also carries the leader's id and address.
 */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (!(error instanceof CutoverError)) {
    return { code: status.INTERNAL, details: error instanceof Error ? error.message : String(error), metadata };
  }
  metadata.set(ERROR_CODE_KEY, error.code);
  if (error instanceof NotLeaderError) {
    metadata.set(LEADER_ID_KEY, String(error.leaderId));
    if (error.leaderAddress !== undefined) metadata.set(LEADER_ADDRESS_KEY, error.leaderAddress);
  }
  return { code: statusOfCode(error.code) as status, details: error.message, metadata };
}

/** The inverse, for our own clients: rebuilds a CutoverError from a gRPC error. */
export function fromServiceError(error: ServiceError): CutoverError {
  const code = String(error.metadata?.get(ERROR_CODE_KEY)[0] ?? '');
  const message = error.details || error.message;
  if (code === 'NOT_LEADER') {
    const leaderId = Number(error.metadata.get(LEADER_ID_KEY)[0] ?? 0);
    const address = error.metadata.get(LEADER_ADDRESS_KEY)[0];
    return new NotLeaderError(leaderId, message, address === undefined ? undefined : String(address));
  }
  if (code !== '') return new CutoverError(code, message);
  const byStatus = error.code === status.UNAVAILABLE ? 'UNAVAILABLE' : error.code === status.DEADLINE_EXCEEDED ? 'TIMEOUT' : 'RPC_FAILED';
  return new CutoverError(byStatus, message, { cause: error });
}
