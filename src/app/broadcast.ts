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
  const connIds: number[] = [];
  for (const session of recipients) {
    if (session !== except && session.isOpen) connIds.push(session.connId);
  }
  if (connIds.length > 0) table.backend.sendMany(connIds, frame);
  table.packetsOut += connIds.length;
  return connIds.length;
}
