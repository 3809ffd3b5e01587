import type { PacketKey, Session, SessionTable } from '../session';

export interface BroadcastOptions {
  /** A session that should not receive this packet (usually its sender). */
  except?: Session;
}

/**
 * Encodes a packet once and hands the one frame to `sendMany` for every open
 * session among `recipients`. Returns how many sessions it was queued for.
 * A recipient whose queue overflows is closed with `backpressure` by the
 * backend; the others are unaffected.
 */
export function broadcast(
  table: SessionTable,
  recipients: Iterable<Session>,
  packet: PacketKey,
  message: unknown,
  options?: BroadcastOptions,
): number {
  const frame = table.encode(packet, message);
  const except = options?.except;
  let ids = table.recipientIds;
  let count = 0;
  for (const session of recipients) {
    if (session === except || !session.isOpen) continue;
    if (count === ids.length) ids = table.recipientIds = grow(ids);
    ids[count++] = session.connId;
  }
  // sendMany reads the ids before it returns (see the Backend contract), so one scratch array serves every call.
  if (count > 0) table.backend.sendMany(ids.subarray(0, count), frame);
  table.packetsOut += count;
  return count;
}

function grow(ids: Float64Array): Float64Array {
  const grown = new Float64Array(ids.length * 2);
  grown.set(ids);
  return grown;
}
