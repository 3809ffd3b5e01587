import { CONN_SLOT_LIMIT } from './backend';

/**
 * The layout of the memory JS shares with the native reactor; it mirrors
 * native/protocol.h, and the loader refuses an addon whose `protocol` export
 * disagrees (a stale build).
 */
export const PROTOCOL = {
  // The seam's connection ids are the reactor's own.
  SLOT_LIMIT: CONN_SLOT_LIMIT,
  GEN_MASK: (1 << 24) - 1,
  EVENT_INTS: 6,
  EV_ACCEPT: 1,
  EV_CONNECT: 2,
  EV_DATA: 3,
  EV_DRAIN: 4,
  EV_CLOSE: 5,
  EV_RELAYED: 6,
  CLOSE_PEER: 0,
  CLOSE_ERROR: 1,
  CLOSE_LOCAL: 2,
  CLOSE_BACKPRESSURE: 3,
  CMD_SEND: 1,
  CMD_SEND_MANY: 2,
  CMD_CLOSE: 3,
  CMD_GROUP: 4,
  CONTROL_INTS: 2,
  CONTROL_COMMAND_INTS: 0,
  CONTROL_ARENA_BYTES: 1,
} as const;

export function protocolMismatch(native: Record<string, number>): string | undefined {
  for (const [key, value] of Object.entries(PROTOCOL)) {
    if (native[key] !== value) return `protocol.${key} is ${native[key]} in the addon, ${value} in JS`;
  }
  return undefined;
}
