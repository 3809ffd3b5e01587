import type { BackendStats } from '../backend';
import { resolveReconnect, type CloseReason, type OutboundSession, type PacketKey, type ReconnectOptions } from '../session';
import type { Middleware } from './compose';
import type { DefaultData, PacketHandler } from './context';
import { createEndpoint, type BackendInfo, type Endpoint } from './endpoint';
import type { EndpointOptions } from './options';
import { webSocketClient, type WebSocketConnectOptions } from './websocket-options';

interface ConnectCommon extends EndpointOptions {
  /**
   * Dial again after a lost connection (and after a failed first dial, or a
   * refused WebSocket handshake), with exponential backoff and jitter.
   * `true` takes the defaults; default off.
   */
  reconnect?: ReconnectOptions | boolean;
}

/**
 * Where to dial: `host` and `port` for framed TCP, or `url` (`ws://...`)
 * for WebSocket. Either way the session, its handlers, reconnect policy and
 * queue behave the same.
 */
export type ConnectOptions =
  | (ConnectCommon & { /** Default 127.0.0.1. */ host?: string; port: number; url?: undefined })
  | (ConnectCommon & WebSocketConnectOptions & { host?: undefined; port?: undefined });

export interface ClientEvents {
  close: [reason: CloseReason, error: { code: string; message: string } | undefined];
  reconnecting: [attempt: number, delayMs: number];
  reconnected: [];
  drain: [];
}

/**
 * The dialling side: one {@link OutboundSession} with its own handlers and
 * middleware. Packets sent while reconnecting are queued within a bound
 * (see `ReconnectOptions.maxQueuedBytes`). `Data` types `session.data`.
 */
export class Client<Data extends object = DefaultData> {
  readonly backend: BackendInfo;
  readonly session: OutboundSession<Data>;
  private readonly endpoint: Endpoint;
  private readonly closed: Promise<void>;

  /** @internal Use `connect()` or `createClient()`. */
  constructor(options: ConnectOptions) {
    const policy = resolveReconnect(options.reconnect);
    let release!: () => void;
    this.closed = new Promise<void>((resolve) => (release = resolve));
    let address = { host: options.host ?? '127.0.0.1', port: options.port ?? 0 };
    const hooks = {
      // The client's one session is gone for good: release the backend with it.
      onClose: () => void this.endpoint.table.shutdown().then(release),
    };
    // A client's server may be quiet for long stretches (a lobby); its idle timeout is the application's choice.
    if (options.url !== undefined) {
      const url = options.url;
      this.endpoint = createEndpoint(options, hooks, 0, (framing, codec) => {
        const dialled = webSocketClient({ ...options, url }, framing, codec);
        address = dialled;
        return dialled.protocol;
      });
    } else {
      this.endpoint = createEndpoint(options, hooks, 0);
    }
    this.backend = this.endpoint.backend;
    this.session = this.endpoint.table.open(address.host, address.port, policy) as OutboundSession<Data>;
  }

  use(middleware: Middleware<Data>): this {
    this.endpoint.dispatcher.use(middleware as Middleware);
    return this;
  }

  handle<M = any>(packet: PacketKey, handler: PacketHandler<M, any, Data>, options?: { reply?: PacketKey }): this {
    this.endpoint.dispatcher.handle(packet, handler as PacketHandler, options?.reply);
    return this;
  }

  /** See `Session.send`; while reconnecting, the packet is queued (and false returned). */
  send(packet: PacketKey, message: unknown): boolean {
    return this.session.send(packet, message);
  }

  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.session.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this {
    this.session.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  stats(): { packetsIn: number; packetsOut: number; backend: BackendStats } {
    const { table } = this.endpoint;
    return { packetsIn: table.packetsIn, packetsOut: table.packetsOut, backend: table.backend.stats() };
  }

  /** Flushes what is queued, closes with reason `closed`, and resolves once the connection is gone. */
  close(): Promise<void> {
    this.session.close('closed');
    return this.closed;
  }
}

/**
 * Creates a client and starts dialling at once, without waiting: `send`
 * queues (within `reconnect.maxQueuedBytes`) until the connection is up,
 * `client.session.whenOpen()` resolves when it is, and `close()` stops a dial
 * that is still retrying.
 */
export function createClient<Data extends object = DefaultData>(options: ConnectOptions): Client<Data> {
  return new Client<Data>(options);
}

/**
 * Dials a server and resolves once connected. Handlers added right after
 * this resolves see every packet: none can be dispatched before the caller's
 * code runs. Rejects with `RP_ERR_CONNECT_FAILED` when the server cannot be
 * reached (after the retries of `reconnect`, if given).
 */
export async function connect<Data extends object = DefaultData>(options: ConnectOptions): Promise<Client<Data>> {
  const client = new Client<Data>(options);
  await client.session.whenOpen();
  return client;
}
