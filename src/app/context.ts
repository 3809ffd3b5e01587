import type { PacketKey, Session } from '../session';

/** What middleware and handlers know about one incoming packet. */
export interface PacketContext<M = any> {
  readonly session: Session;
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
 */
export type PacketHandler<M = any, R = any> = (
  session: Session,
  message: M,
  ctx: PacketContext<M>,
) => R | void | Promise<R | void>;

/** Receives every error a handler or middleware throws or rejects with. */
export type ErrorHook = (error: unknown, ctx: PacketContext) => void;
