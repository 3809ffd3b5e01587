import { ErrorCodes, RingportError } from '../errors';
import { WebSocketProtocol, type Framing, type UpgradeDecision, type UpgradeRequest } from '../protocol';
import type { Guard, PacketKey } from '../session';
import type { Codec } from './codec';
import type { DefaultData } from './context';

/**
 * What an `onUpgrade` hook returns: nothing (or `true`) to accept, `{ data }`
 * to accept with the session's first `data`, or `{ status, body }` to refuse
 * with an HTTP status (401, 403, 429, ...) before any session exists.
 */
export type UpgradeResult<Data extends object = DefaultData> =
  | void
  | true
  | { readonly data: Data }
  | { readonly status: number; readonly body?: string };

export type { UpgradeRequest };

/** The options of a WebSocket listener or client that both sides share. */
interface WebSocketCommon {
  /**
   * Text messages arrive as this packet, their UTF-8 bytes (checked) its
   * payload, for browser code that sends JSON. Default: text is refused
   * with close code 1003.
   */
  textPacket?: PacketKey;
  /**
   * Ping a peer that has been quiet this long; close it with `idle-timeout`
   * if it stays quiet as long again. Default 30 s: proxies and NATs drop a
   * silent connection after about a minute, and a dead peer is found within
   * one. 0 turns pings off (the idle timeout then applies).
   */
  pingIntervalMs?: number;
}

export interface WebSocketListenOptions<Data extends object = DefaultData> extends WebSocketCommon {
  /** The path a WebSocket opens on; another path gets 404. Default `/`. */
  path?: string;
  /** Subprotocols spoken here, in order of preference; an offer of none of them gets 400. */
  subprotocols?: readonly string[];
  /** `Origin`s allowed to connect (browsers send one); any other gets 403. Default: any. */
  origins?: readonly string[];
  /** Sees each upgrade before any session exists, and accepts or refuses it (see `UpgradeResult`). */
  onUpgrade?: (request: UpgradeRequest) => UpgradeResult<Data> | Promise<UpgradeResult<Data>>;
}

export interface WebSocketConnectOptions extends WebSocketCommon {
  /** `ws://host:port/path?query`; `wss:` is not supported (terminate TLS in front of ringport). */
  url: string;
  /** Subprotocols to offer, in order of preference. */
  subprotocols?: readonly string[];
  /** Extra request headers (an `Origin`, an auth token). */
  headers?: Readonly<Record<string, string>>;
}

const DEFAULT_PING_INTERVAL_MS = 30_000;

function textPacketIdOf(codec: Codec, packet: PacketKey | undefined): number | undefined {
  return packet === undefined ? undefined : codec.idOf(packet);
}

/** Runs the application's hook through the guard: a throw or rejection is a fault, refused with 500. */
function guardedHook<Data extends object>(
  hook: NonNullable<WebSocketListenOptions<Data>['onUpgrade']>,
  guard: Guard,
): (request: UpgradeRequest) => Promise<UpgradeDecision> {
  return async (request) => {
    let result: UpgradeResult<Data>;
    try {
      result = await hook(request);
    } catch (error) {
      guard.fault(error, { source: 'hook', session: undefined, event: 'onUpgrade' });
      return { accept: false, status: 500, body: 'the upgrade check failed' };
    }
    if (result === undefined || result === true) return { accept: true };
    if ('status' in result) return { accept: false, status: result.status, body: result.body ?? '' };
    return { accept: true, data: result.data };
  };
}

/** The protocol of one WebSocket listener. */
export function webSocketListener<Data extends object>(
  options: WebSocketListenOptions<Data>,
  framing: Framing,
  codec: Codec,
  guard: Guard,
): WebSocketProtocol {
  const path = options.path ?? '/';
  if (!path.startsWith('/')) throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `path must start with /, got '${path}'`);
  return new WebSocketProtocol(
    framing,
    {
      path,
      subprotocols: options.subprotocols ?? [],
      origins: options.origins === undefined ? undefined : new Set(options.origins),
      authorize: options.onUpgrade === undefined ? undefined : guardedHook(options.onUpgrade, guard),
      textPacketId: textPacketIdOf(codec, options.textPacket),
      keepAliveMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    },
    undefined,
  );
}

/** The protocol of a client that dials `options.url`, and where to dial. */
export function webSocketClient(
  options: WebSocketConnectOptions,
  framing: Framing,
  codec: Codec,
): { protocol: WebSocketProtocol; host: string; port: number } {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `not a URL: '${options.url}'`);
  }
  if (url.protocol !== 'ws:') {
    throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `${url.protocol} URLs are not supported; use ws://`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 80 : Number(url.port);
  const protocol = new WebSocketProtocol(framing, undefined, {
    host: url.host,
    path: `${url.pathname}${url.search}`,
    subprotocols: options.subprotocols ?? [],
    headers: options.headers ?? {},
    textPacketId: textPacketIdOf(codec, options.textPacket),
    keepAliveMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
  });
  return { protocol, host, port };
}
