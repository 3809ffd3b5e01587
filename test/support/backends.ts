import { availableBackends, type BackendKind, type Server, type WebSocketListenOptions } from '../../src';
import type { ProtocolName } from '../../src/protocol';

/**
 * Every backend that loads on this machine. A transport suite wraps its
 * tests in `describe.each(backends)` so that each backend gets the same
 * cases; `test/backends.test.ts` fails when a backend CI expects is missing.
 */
export const backends: BackendKind[] = availableBackends();

/** Every wire protocol a listener can speak. */
export const protocols: ProtocolName[] = ['framed', 'websocket'];

/**
 * Every backend with every protocol: a suite about packets, sessions and
 * rooms runs `describe.each(matrix)('... on %s over %s', (backend, protocol) => ...)`.
 */
export const matrix: Array<[BackendKind, ProtocolName]> = backends.flatMap((backend) =>
  protocols.map((protocol): [BackendKind, ProtocolName] => [backend, protocol]),
);

/** The path the shared suites' WebSocket listeners open on. */
export const WS_PATH = '/play';

/**
 * Listens on 127.0.0.1 (a free port unless `port` is given) speaking
 * `protocol`; `webSocket` adds the WebSocket listener's own options.
 */
export function listen<Data extends object>(
  server: Server<Data>,
  protocol: ProtocolName,
  options: { port?: number; webSocket?: WebSocketListenOptions<Data> } = {},
): Promise<{ host: string; port: number }> {
  const address = { host: '127.0.0.1', port: options.port ?? 0 };
  if (protocol === 'framed') return server.listen(address);
  return server.listen({ ...address, protocol: 'websocket', path: WS_PATH, ...options.webSocket });
}

/** Where a client dials a server listening on `port` with `protocol`: `{ port }` or `{ url }`, to spread into `connect()`. */
export function target(protocol: ProtocolName, port: number): { port: number } | { url: string } {
  return protocol === 'framed' ? { port } : { url: `ws://127.0.0.1:${port}${WS_PATH}` };
}
