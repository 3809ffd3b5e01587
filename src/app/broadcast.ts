import type { WireProtocol } from '../protocol';
import type { PacketKey, RecipientGroup, Session, SessionTable } from '../session';

export interface BroadcastOptions {
  /** A session that should not receive this packet (usually its sender). */
  except?: Session;
}

/**
 * Encodes a packet's payload once, and its bytes once per protocol among the
 * recipients (a room of native and browser players: one framed encoding, one
 * WebSocket encoding), and hands each protocol's bytes to one `sendMany` for
 * every open session that speaks it. Returns how many sessions it was queued
 * for. A recipient whose queue overflows is closed with `backpressure` by the
 * backend; the others are unaffected.
 */
export function broadcast(
  table: SessionTable,
  recipients: Iterable<Session>,
  packet: PacketKey,
  message: unknown,
  options?: BroadcastOptions,
): number {
  const packetId = table.codec.idOf(packet);
  return broadcastPayload(table, recipients, packetId, table.codec.encode(packetId, message), options?.except);
}

/** As {@link broadcast}, for a payload already encoded (a relayed packet, as it came). */
export function broadcastPayload(
  table: SessionTable,
  recipients: Iterable<Session>,
  packetId: number,
  payload: Uint8Array,
  except: Session | undefined,
): number {
  const groups = table.recipientGroups;
  let group = groups[0];
  let total = 0;
  for (const session of recipients) {
    if (session === except || !session.isOpen) continue;
    // Recipients mostly share one protocol: the group of the last one is checked first.
    if (session.protocol !== group.protocol) group = groupFor(groups, session.protocol);
    if (group.count === group.ids.length) group.ids = grow(group.ids);
    group.ids[group.count++] = session.connId;
    total++;
  }
  for (const g of groups) {
    if (g.count === 0) continue;
    const bytes = g.protocol!.encode(packetId, payload, 'server');
    // sendMany reads the ids before it returns (see the Backend contract), so the scratch serves every call.
    table.backend.sendMany(g.ids, bytes, g.count);
    const traffic = table.traffic[g.protocol!.name];
    traffic.packetsOut += g.count;
    traffic.bytesOut += g.count * bytes.length;
    g.count = 0;
  }
  table.packetsOut += total;
  return total;
}

function groupFor(groups: RecipientGroup[], protocol: WireProtocol): RecipientGroup {
  for (const g of groups) {
    if (g.protocol === protocol) return g;
  }
  // The first group is unclaimed until a broadcast has a recipient.
  const free = groups.find((g) => g.protocol === undefined);
  if (free !== undefined) {
    free.protocol = protocol;
    return free;
  }
  const created: RecipientGroup = { protocol, ids: new Float64Array(64), count: 0 };
  groups.push(created);
  return created;
}

function grow(ids: Float64Array): Float64Array {
  const grown = new Float64Array(ids.length * 2);
  grown.set(ids);
  return grown;
}
