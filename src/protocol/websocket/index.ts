export { WebSocketProtocol } from './websocket-protocol';
export type { UpgradeDecision, UpgradeRequest, WebSocketClientOptions, WebSocketServerOptions } from './websocket-protocol';
export { closeCodeFor, closeReasonFor, APPLICATION_CLOSE_CODE } from './close-codes';
