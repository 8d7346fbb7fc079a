/** Raft Message ⇄ cutover.peer.v1.Message, through the real protobuf serialisers. */
import test from 'ava';
import type { Message, MessageType } from '../../src/raft/index.ts';
import { decodeMessage, encodedBytesUpperBound, encodeMessage, MalformedMessageError, snapshotHeaderBytesUpperBound } from '../../src/transport/codec.ts';
import { raftService, type WireMessage } from '../../src/transport/proto.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { snapMessage } from './helpers.ts';

const TYPES: MessageType[] = ['preVote', 'preVoteResp', 'vote', 'voteResp', 'app', 'appResp', 'heartbeat', 'heartbeatResp', 'timeoutNow', 'readIndex', 'readIndexResp', 'transferLeader'];

/** Serialises `messages` as one batch and reads them back as wire objects. */
function wireRoundTrip(messages: readonly Message[]): WireMessage[] {
  const bytes = raftService.Send.requestSerialize({ messages: messages.map(encodeMessage) });
  return raftService.Send.requestDeserialize(bytes).messages;
}

function randomMessage(random: SeededRandom, type: MessageType): Message {
  const big = (): number => (random.nextFloat() < 0.3 ? Number.MAX_SAFE_INTEGER - random.nextInt(0, 1000) : random.nextInt(0, 1_000_000));
  const entries = Array.from({ length: random.nextInt(0, 4) }, () => ({
    term: big(),
    index: big(),
    type: random.nextFloat() < 0.5 ? ('normal' as const) : ('confChange' as const),
    data: Uint8Array.from({ length: random.nextInt(0, 300) }, () => random.nextInt(0, 256)),
  }));
  const message: Message = { type, from: big(), to: big(), term: big(), logTerm: big(), index: big(), entries, commit: big(), reject: random.nextFloat() < 0.5, rejectHint: big() };
  return random.nextFloat() < 0.5 ? message : { ...message, context: 'read-ü-' + 'x'.repeat(random.nextInt(0, 200)) };
}

test('every message type survives the wire unchanged', (t) => {
  const random = new SeededRandom(42);
  const messages = TYPES.flatMap((type) => [randomMessage(random, type), randomMessage(random, type)]);
  const decoded = wireRoundTrip(messages).map((wire) => decodeMessage(wire));
  t.deepEqual(decoded, messages);
  t.true(decoded.every((m) => m.entries.every((e) => e.data.constructor === Uint8Array)), 'entry data is a plain Uint8Array');
});

test('an empty context is kept apart from no context', (t) => {
  const base = randomMessage(new SeededRandom(1), 'readIndex');
  const { context: _dropped, ...without } = base;
  const [withEmpty, withNone] = wireRoundTrip([{ ...without, context: '' }, without]).map((wire) => decodeMessage(wire));
  t.is(withEmpty?.context, '');
  t.false(withNone !== undefined && 'context' in withNone);
});

test('the size bound is never below the encoded size', (t) => {
  const random = new SeededRandom(7);
  for (let i = 0; i < 300; i++) {
    const message = randomMessage(random, TYPES[i % TYPES.length] ?? 'app');
    const encoded = raftService.Send.requestSerialize({ messages: [encodeMessage(message)] }).byteLength;
    t.true(encodedBytesUpperBound(message) >= encoded, `bound ${encodedBytesUpperBound(message)} < encoded ${encoded}`);
  }
  const snap = snapMessage(1, 2, 16);
  const header = raftService.SendSnapshot.requestSerialize({ header: { message: encodeMessage(snap), total_bytes: 2 ** 40, crc32: 2 ** 32 - 1 } }).byteLength;
  t.true(snapshotHeaderBytesUpperBound(snap) >= header);
});

test('unknown enum values and inexact integers are refused with TRANSPORT_MALFORMED_MESSAGE', (t) => {
  const [wire] = wireRoundTrip([randomMessage(new SeededRandom(3), 'app')]);
  if (wire === undefined) return t.fail();
  for (const bad of [{ ...wire, type: 99 }, { ...wire, type: 'MESSAGE_TYPE_UNSPECIFIED' as const }, { ...wire, term: 2 ** 60 }]) {
    const error = t.throws(() => decodeMessage(bad), { instanceOf: MalformedMessageError });
    t.is(error?.code, 'TRANSPORT_MALFORMED_MESSAGE');
  }
  const [big] = raftService.Send.requestDeserialize(raftService.Send.requestSerialize({ messages: [{ ...wire, commit: 2 ** 60 }] })).messages;
  t.is(t.throws(() => decodeMessage(big ?? wire))?.constructor, MalformedMessageError, 'a uint64 past 2^53 on the wire');
  return undefined;
});

test('a snap message needs its data', (t) => {
  const snap = snapMessage(1, 2, 32);
  const [wire] = wireRoundTrip([snap]);
  if (wire === undefined) return t.fail();
  t.throws(() => decodeMessage(wire), { instanceOf: MalformedMessageError });
  t.deepEqual(decodeMessage(wire, snap.snapshot?.data), snap);
  return undefined;
});
