import { HttpProtocol, type Framing, type WebSocketProtocol } from '../../protocol';
import type { Guard } from '../../session';
import type { Codec } from '../codec';
import type { DefaultData } from '../context';
import { webSocketListener, type WebSocketListenOptions } from '../websocket-options';
import type { HttpRoutes } from './http-routes';

export interface HttpListenOptions<Data extends object = DefaultData> {
  /** A body over this is refused with 413 before it is buffered. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * A connection that completes no request for this long is closed, with
   * 408 when one was under way. Default 10 s: long enough for a slow mobile
   * client's request, short enough that slowloris heads and idle keep-alive
   * connections do not pile up.
   */
  requestTimeoutMs?: number;
  /** WebSocket upgrades on this listener: their path and options (see WebSocketListenOptions). */
  websocket?: WebSocketListenOptions<Data> & { path: string };
}

/** RFC 9112 sets no limit; 16 KiB is what most servers allow a request head (nginx 8-32 KiB, Node 16 KiB). */
const MAX_HEAD_BYTES = 16 * 1024;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The protocol of one HTTP listener, answering through `routes`. */
export function httpListener<Data extends object>(
  options: HttpListenOptions<Data>,
  routes: HttpRoutes,
  framing: Framing,
  codec: Codec,
  guard: Guard,
): HttpProtocol {
  const upgrades = new Map<string, WebSocketProtocol>();
  if (options.websocket !== undefined) upgrades.set(options.websocket.path, webSocketListener(options.websocket, framing, codec, guard));
  return new HttpProtocol({
    respond: routes.respond,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxHeadBytes: MAX_HEAD_BYTES,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    upgrades,
    maxQueueBytes: routes.maxQueueBytes,
  });
}
