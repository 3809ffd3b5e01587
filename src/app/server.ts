import { EventEmitter } from 'node:events';
import type { BackendStats } from '../backend';
import { ErrorCodes, RingportError } from '../errors';
import type { CloseReason, InboundSession, PacketKey, Session } from '../session';
import { broadcast, type BroadcastOptions } from './broadcast';
import type { Middleware } from './compose';
import type { PacketHandler } from './context';
import { createEndpoint, type BackendInfo } from './endpoint';
import type { EndpointOptions } from './options';
import { Room } from './room';

export type ServerOptions = EndpointOptions;

export interface ServerListenOptions {
  /** Default: every interface. */
  host?: string;
  /** 0 picks a free port; see `server.address`. */
  port: number;
  backlog?: number;
  reusePort?: boolean;
}

export interface ServerStats {
  readonly sessions: number;
  readonly rooms: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  readonly ignoredPackets: number;
  readonly backend: BackendStats;
}

export interface ServerEvents {
  session: [session: InboundSession];
  sessionClose: [session: Session, reason: CloseReason, error: { code: string; message: string } | undefined];
}

/**
 * A game server: accepts sessions, routes their packets through middleware
 * to handlers, and broadcasts to everyone or to rooms. Events: `session`
 * (a peer connected), `sessionClose` (session, reason, error?).
 */
export class Server extends EventEmitter<ServerEvents> {
  /** The backend in use and why it was chosen. */
  readonly backend: BackendInfo;
  /** Where the server listens, once `listen` has resolved. */
  address: { host: string; port: number } | undefined;

  private readonly endpoint;
  private readonly roomsByName = new Map<string, Room>();
  private readonly roomRegistry = {
    occupied: (room: Room) => {
      if (!this.roomsByName.has(room.name)) this.roomsByName.set(room.name, room);
    },
    empty: (room: Room) => {
      if (this.roomsByName.get(room.name) === room) this.roomsByName.delete(room.name);
    },
  };
  private closing: Promise<void> | undefined;

  constructor(options: ServerOptions = {}) {
    super();
    this.endpoint = createEndpoint(options, {
      onAccept: (session) => {
        if (this.closing !== undefined) session.close('shutdown');
        else this.emit('session', session);
      },
      onClose: (session, reason, error) => {
        session.room?.leave(session);
        this.emit('sessionClose', session, reason, error);
      },
    });
    this.backend = this.endpoint.backend;
  }

  /** Adds middleware; it runs for every packet, in the order added, before the handler. */
  use(middleware: Middleware): this {
    this.endpoint.dispatcher.use(middleware);
    return this;
  }

  /**
   * Routes a packet to a handler. What the handler returns is sent back to the
   * sender as `options.reply` (default: the same packet).
   */
  handle<M = any>(packet: PacketKey, handler: PacketHandler<M>, options?: { reply?: PacketKey }): this {
    this.endpoint.dispatcher.handle(packet, handler as PacketHandler, options?.reply);
    return this;
  }

  async listen(options: ServerListenOptions): Promise<{ host: string; port: number }> {
    if (this.closing !== undefined) throw new RingportError(ErrorCodes.CLOSED, 'server is closed');
    try {
      const { host, port } = await this.endpoint.table.listen(options);
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
  get sessions(): ReadonlyMap<number, Session> {
    return this.endpoint.table.sessions;
  }

  /** Rooms that have members (or were just created), by name. */
  get rooms(): ReadonlyMap<string, Room> {
    return this.roomsByName;
  }

  /** The room called `name`, created on first use. */
  room(name: string): Room {
    let room = this.roomsByName.get(name);
    if (room === undefined) {
      room = new Room(name, this.endpoint.table, this.roomRegistry);
      this.roomsByName.set(name, room);
    }
    return room;
  }

  /** Sends one packet to every open session, encoded once. Returns the number of recipients. */
  broadcast(packet: PacketKey, message: unknown, options?: BroadcastOptions): number {
    return broadcast(this.endpoint.table, this.endpoint.table.sessions.values(), packet, message, options);
  }

  stats(): ServerStats {
    const { table, dispatcher } = this.endpoint;
    return {
      sessions: table.sessions.size,
      rooms: this.roomsByName.size,
      packetsIn: table.packetsIn,
      packetsOut: table.packetsOut,
      ignoredPackets: dispatcher.ignoredPackets,
      backend: table.backend.stats(),
    };
  }

  /**
   * Stops accepting, gives queued packets up to `drainMs` (default 5000) to
   * reach their peers, closes every session with reason `shutdown`, and
   * releases the backend. Calling it again returns the same promise.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closing === undefined) {
      const table = this.endpoint.table;
      table.stopListening();
      this.closing = table.closeAll('shutdown', options.drainMs ?? 5000).then(() => table.shutdown());
    }
    return this.closing;
  }
}

/** Creates a server; call `listen` to start accepting. */
export function createServer(options: ServerOptions = {}): Server {
  return new Server(options);
}
