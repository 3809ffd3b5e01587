export * from './app';
export {
  Session,
  InboundSession,
  OutboundSession,
  BUILT_IN_CLOSE_REASONS,
  type CloseReason,
  type PacketKey,
  type SessionState,
  type ReconnectOptions,
} from './session';
export { availableBackends, selectBackend, DEFAULT_QUEUE_LIMITS } from './backend';
export type { Backend, BackendKind, BackendChoice, BackendStats, BackendEvent } from './backend';
export { FrameDecoder, encodeFrame, encodePacket, readPacketId, packetPayload, resolveFraming } from './protocol';
export type { Framing, FramingOptions } from './protocol';
export { ErrorCodes, RingportError } from './errors';
export type { ErrorCode } from './errors';
