import { EventEmitter } from 'node:events';
import { DEFAULT_QUEUE_LIMITS, type BackendStats } from '../backend';
import { ErrorCodes, RingportError } from '../errors';
import type { CloseReason, InboundSession, PacketKey, Session } from '../session';
import { broadcast, type BroadcastOptions } from './broadcast';
import type { Middleware } from './compose';
import type { DefaultData, PacketHandler } from './context';
import { createEndpoint, type BackendInfo } from './endpoint';
import { SERVER_IDLE_TIMEOUT_MS, type EndpointOptions } from './options';
import type { Room } from './room';
import { RoomRegistry } from './room-registry';
import { webSocketListener, type WebSocketListenOptions } from './websocket-options';
import { httpListener, type HttpListenOptions } from './http/http-listener';
import { HttpRoutes } from './http/http-routes';
import { mountProbes } from './http/probes';
import { ServerMetrics } from './metrics/server-metrics';

export interface ServerOptions extends EndpointOptions {
  /**
   * Prometheus metrics, served at `GET /metrics` on every HTTP listener and
   * kept in `server.metrics`. Default on. Handlers are timed only once an
   * HTTP listener has opened, so a server that serves no HTTP reads no
   * clock per packet. `false` turns them off: no /metrics, no timing.
   */
  metrics?: boolean;
  /**
   * Packets a player in a room sends to the rest of the room as they are,
   * without a handler: position and input updates, voice. Such a packet from
   * a session in a room goes to every other member and to no handler or
   * middleware; from a session in no room it is handled as any other. On
   * the native backends the reactor relays them from framed sessions
   * itself, with no JS turn per packet (README, "Relayed packets").
   */
  relay?: readonly PacketKey[];
}

interface ListenAddress {
  /** Default: every interface. */
  host?: string;
  /** 0 picks a free port; see `server.address`. */
  port: number;
  /** The accept queue. Default: the system's limit (somaxconn), so a reconnect storm is not refused. */
  backlog?: number;
  reusePort?: boolean;
}

/**
 * Where to listen, and what the connections accepted there speak: framed
 * TCP (default) or WebSocket. The binding is fixed: a listener never sniffs.
 * Sessions of every listener share the server's handlers, middleware and rooms.
 */
export type ServerListenOptions<Data extends object = DefaultData> =
  | (ListenAddress & { protocol?: 'framed' })
  | (ListenAddress & { protocol: 'websocket' } & WebSocketListenOptions<Data>)
  | (ListenAddress & { protocol: 'http' } & HttpListenOptions<Data>);

export interface ServerStats {
  readonly sessions: number;
  readonly rooms: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly ignoredPackets: number;
  readonly backend: BackendStats;
}

export interface ServerEvents<Data extends object = DefaultData> {
  session: [session: InboundSession<Data>];
  sessionClose: [session: Session<Data>, reason: CloseReason, error: { code: string; message: string } | undefined];
}

/**
 * A game server: accepts sessions, routes their packets through middleware
 * to handlers, and broadcasts to everyone or to rooms. Events: `session`
 * (a peer connected), `sessionClose` (session, reason, error?). `Data` is
 * the type of every session's `data`.
 */
export class Server<Data extends object = DefaultData> extends EventEmitter<ServerEvents<Data>> {
  /** The backend in use and why it was chosen. */
  readonly backend: BackendInfo;
  /** Where the server listens, once `listen` has resolved. */
  address: { host: string; port: number } | undefined;
  /** The routes of the server's HTTP listeners (`listen({ protocol: 'http' })`). */
  readonly http: HttpRoutes;
  /** The server's metrics (its own prom-client Registry), or undefined with `metrics: false`. */
  readonly metrics: ServerMetrics | undefined;

  private readonly endpoint;
  private readonly roomRegistry: RoomRegistry<Room<Data>>;
  private closing: Promise<void> | undefined;
  /** While `close()`'s readiness grace runs: ends it now. */
  private endGrace: (() => void) | undefined;

  constructor(options: ServerOptions = {}) {
    super();
    this.endpoint = createEndpoint(options, {
      onAccept: (session) => {
        if (!this.accepting) session.close('shutdown');
        // The session layer does not know the application's Data type; the server does.
        else this.emit('session', session as InboundSession<Data>);
      },
      onClose: (session, reason, error) => {
        this.metrics?.sessionClosed(session.protocol.name, reason);
        session.room?.leave(session);
        this.emit('sessionClose', session as Session<Data>, reason, error);
      },
      relay: options.relay,
    }, SERVER_IDLE_TIMEOUT_MS);
    this.backend = this.endpoint.backend;
    this.roomRegistry = new RoomRegistry(this.endpoint.table);
    this.http = new HttpRoutes(this.endpoint.guard, options.limits?.maxQueueBytes ?? DEFAULT_QUEUE_LIMITS.maxQueueBytes);
    const { table, codec } = this.endpoint;
    this.metrics =
      options.metrics === false
        ? undefined
        : new ServerMetrics({ table, backendKind: this.backend.kind, rooms: () => this.roomRegistry.occupied, keyOf: (id) => codec.keyOf(id) });
    mountProbes(this.http, () => this.closing === undefined, this.metrics);
  }

  /**
   * Listeners run through the server's guard: one that throws (or rejects) is
   * reported to `onError` with its session, the `onHandlerError` policy
   * applies to that session, and the listeners after it still run.
   */
  override emit<K extends keyof ServerEvents<Data>>(event: K, ...args: ServerEvents<Data>[K]): boolean {
    return this.endpoint.guard.emit(this, event, args[0], args);
  }

  /** Adds middleware; it runs for every packet, in the order added, before the handler. */
  use(middleware: Middleware<Data>): this {
    this.endpoint.dispatcher.use(middleware as Middleware);
    return this;
  }

  /**
   * Routes a packet to a handler. What the handler returns is sent back to the
   * sender as `options.reply` (default: the same packet).
   */
  handle<M = any>(packet: PacketKey, handler: PacketHandler<M, any, Data>, options?: { reply?: PacketKey }): this {
    this.endpoint.dispatcher.handle(packet, handler as PacketHandler, options?.reply);
    return this;
  }

  async listen(options: ServerListenOptions<Data>): Promise<{ host: string; port: number }> {
    if (this.closing !== undefined) throw new RingportError(ErrorCodes.CLOSED, 'server is closed');
    const { table, framing, codec, guard, dispatcher } = this.endpoint;
    const protocol =
      options.protocol === 'websocket'
        ? webSocketListener(options, framing, codec, guard)
        : options.protocol === 'http'
          ? httpListener(options, this.http, framing, codec, guard)
          : table.protocol;
    const address = { host: options.host, port: options.port, backlog: options.backlog, reusePort: options.reusePort };
    try {
      const { host, port } = await table.listen(address, protocol);
      // /metrics is served from now on: its handler times start now.
      if (options.protocol === 'http' && this.metrics !== undefined) dispatcher.measure(this.metrics.latency);
      this.address = { host, port };
      return this.address;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
      // A refusal of ours says why; a system error's code says enough.
      const why = code === 'ENOTSUP' ? (err as Error).message : code;
      throw new RingportError(
        ErrorCodes.LISTEN_FAILED,
        `cannot listen on ${options.host ?? '*'}:${options.port}: ${why}`,
        { cause: err },
      );
    }
  }

  /** Every open session, by session id. */
  get sessions(): ReadonlyMap<number, Session<Data>> {
    return this.endpoint.table.sessions as ReadonlyMap<number, Session<Data>>;
  }

  /** Rooms that have members, by name. */
  get rooms(): ReadonlyMap<string, Room<Data>> {
    return this.roomRegistry.occupied;
  }

  /**
   * The room called `name`. Looking a room up does not list it: it appears in
   * `rooms` once someone joins, and an empty room nobody holds is forgotten,
   * so names taken from clients cannot grow the server.
   */
  room(name: string): Room<Data> {
    return this.roomRegistry.get(name);
  }

  /** Sends one packet to every open session, encoded once. Returns the number of recipients. */
  broadcast(packet: PacketKey, message: unknown, options?: BroadcastOptions): number {
    return broadcast(this.endpoint.table, this.endpoint.table.sessions.values(), packet, message, options);
  }

  stats(): ServerStats {
    const { table, dispatcher } = this.endpoint;
    return {
      sessions: table.sessions.size,
      rooms: this.roomRegistry.occupied.size,
      packetsIn: table.packetsIn,
      packetsOut: table.packetsOut,
      ignoredPackets: dispatcher.ignoredPackets,
      backend: table.backend.stats(),
    };
  }

  /**
   * Turns `/readyz` to 503 at once; after `readyGraceMs` (default 0) stops
   * accepting, gives queued packets up to `drainMs` (default 5000) to reach
   * their peers, closes every session with reason `shutdown`, and releases
   * the backend. During the grace the server goes on accepting and serving
   * (`listen` is refused): a load balancer that has not yet seen the 503
   * still sends players, and they get in instead of being refused. Calling
   * it again returns the same promise, and ends a grace still running (a
   * second SIGTERM: hurry).
   */
  close(options: { drainMs?: number; readyGraceMs?: number } = {}): Promise<void> {
    if (this.closing === undefined) this.closing = this.closeAfterGrace(options.readyGraceMs ?? 0, options.drainMs ?? 5000);
    else this.endGrace?.();
    return this.closing;
  }

  /** False once `close()`'s readiness grace is over: a session accepted after that is closed at once. */
  private get accepting(): boolean {
    return this.closing === undefined || this.endGrace !== undefined;
  }

  private async closeAfterGrace(graceMs: number, drainMs: number): Promise<void> {
    if (graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.endGrace = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.endGrace = undefined;
    }
    // Without a grace, all of this runs inside close() itself: nothing is accepted once it returns.
    const table = this.endpoint.table;
    table.stopListening();
    await table.closeAll('shutdown', drainMs);
    await table.shutdown();
  }
}

/** Creates a server; call `listen` to start accepting. `Data` types every session's `data`. */
export function createServer<Data extends object = DefaultData>(options: ServerOptions = {}): Server<Data> {
  return new Server<Data>(options);
}
