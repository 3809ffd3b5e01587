import type { PacketKey, Session } from '../session';

export type { ErrorHook, FaultContext, FaultSource } from '../session';

/** The type of `session.data` when none is given: any per-player state. */
export type DefaultData = Record<string, any>;

/** What middleware and handlers know about one incoming packet. */
export interface PacketContext<M = any, Data extends object = DefaultData> {
  readonly session: Session<Data>;
  /** The wire id. */
  readonly packetId: number;
  /** The codec's name for the packet, or its id without a codec. */
  readonly packet: PacketKey;
  /** The decoded message (raw bytes without a codec); middleware may replace it. */
  message: M;
  /** Per-packet scratch space shared by middleware and the handler. */
  readonly state: Record<string, unknown>;
}

/**
 * Handles one packet. A value it returns (or resolves to) is sent back to the
 * same session as the reply packet (the `reply` option of `handle`, else the
 * same packet id); `undefined` sends nothing.
 *
 * Without a codec, `message` is a view of the bytes as received, shared with
 * the other packets of the same read: copy it (`Buffer.from(message)`) to
 * keep it past the call without keeping that whole read alive.
 */
export type PacketHandler<M = any, R = any, Data extends object = DefaultData> = (
  session: Session<Data>,
  message: M,
  ctx: PacketContext<M, Data>,
) => R | void | Promise<R | void>;
