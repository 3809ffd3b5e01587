export type { ProtocolName, ProtocolStream, Role, StreamPeer, WireProtocol } from './protocol';
export { BUILT_IN_CLOSE_REASONS, type CloseReason } from './close-reason';
export { FramedProtocol } from './framed/framed-protocol';
export * from './framed';
export * from './websocket';
export * from './http';
