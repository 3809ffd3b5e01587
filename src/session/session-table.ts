import type { Backend, BackendEvent, BackendSelection, Listening, ListenOptions, QueueLimits, TransportCloseReason, TransportError } from '../backend';
import { FramedProtocol, type CloseReason, type ProtocolName, type WireProtocol } from '../protocol';
import type { ReconnectPolicy } from './backoff';
import type { Guard } from './guard';
import { idleClockMs } from './idle-list';
import { IdleSweeper } from './idle-sweeper';
import { InboundSession } from './inbound-session';
import { OutboundSession } from './outbound-session';
import { SessionsByConn } from './sessions-by-conn';
import type { PacketKey, Session } from './session';

/** Packet names and payloads: what a codec does for the session layer (`src/app` has the codecs). */
export interface PacketEncoder {
  /** The wire id of a packet name or id; throws `RP_ERR_UNKNOWN_PACKET` for one the codec does not know. */
  idOf(packet: PacketKey): number;
  /** A message as the payload bytes of packet `packetId`; throws `RP_ERR_ENCODE` for one that does not fit. */
  encode(packetId: number, message: unknown): Uint8Array;
}

/** The recipients of one broadcast that speak one protocol. */
export interface RecipientGroup {
  protocol: WireProtocol | undefined;
  /** Their connection ids; ids pass 2^31, hence 64-bit floats. */
  ids: Float64Array;
  count: number;
}

export interface SessionTableOptions {
  backend: BackendSelection;
  /** What listeners speak unless told otherwise, and what dialled sessions speak. */
  protocol: WireProtocol;
  limits: QueueLimits;
  /** Every call into application code from this table and its sessions goes through it. */
  guard: Guard;
  /** Close sessions that complete no packet for this long; 0 turns it off. */
  idleTimeoutMs: number;
  codec: PacketEncoder;
  /**
   * Packet ids that a session in a room sends to its room-mates as they are,
   * never to a handler (the server's `relay` option); empty by default.
   */
  relayIds?: ReadonlySet<number>;
  /** Every packet, its payload as `buffer[start, end)`, in arrival order per session. */
  onPacket(session: Session, packetId: number, buffer: Buffer, start: number, end: number): void;
  onAccept?(session: InboundSession): void;
  onClose?(session: Session, reason: CloseReason, error: TransportError | undefined): void;
}

/** Packets and bytes of one wire protocol, both ways: counted where they pass, read when metrics are scraped. */
export interface ProtocolTraffic {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
}

function noTraffic(): ProtocolTraffic {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
}

const TRANSPORT_TO_SESSION: Record<TransportCloseReason, CloseReason> = {
  peer: 'peer-closed',
  error: 'error',
  backpressure: 'backpressure',
  local: 'closed',
};

/**
 * The sessions of one backend: it turns the backend's event batches into
 * session calls, owns the listeners, the idle sweep and the packet counters.
 * A server has one; so does each client made by `connect()`.
 */
export class SessionTable {
  readonly backend: Backend;
  readonly protocol: WireProtocol;
  readonly guard: Guard;
  readonly codec: PacketEncoder;
  readonly onPacket: SessionTableOptions['onPacket'];
  readonly relayIds: ReadonlySet<number>;
  /** Open and closing sessions, by session id. */
  readonly sessions = new Map<number, Session>();
  packetsIn = 0;
  packetsOut = 0;
  /**
   * @internal By protocol name. A connection counts under the protocol it
   * speaks at the time: an HTTP connection's bytes as `http` until it
   * upgrades, `websocket` after.
   */
  readonly traffic: Record<ProtocolName, ProtocolTraffic> = { framed: noTraffic(), websocket: noTraffic(), http: noTraffic() };
  /** @internal Scratch for one broadcast's recipients, one group per protocol among them (src/app/broadcast.ts). */
  readonly recipientGroups: RecipientGroup[] = [{ protocol: undefined, ids: new Float64Array(64), count: 0 }];

  private readonly byConn = new SessionsByConn();
  /** Each listener's protocol. */
  private readonly listeners = new Map<number, WireProtocol>();
  private readonly idleTimeoutMs: number;
  /** One sweeper per quiet period in use (the idle timeout, each keep-alive interval). */
  private readonly sweepers = new Map<number, IdleSweeper>();
  private readonly onAccept: (session: InboundSession) => void;
  private readonly onCloseHook: SessionTableOptions['onClose'];
  private emptyWaiters: Array<() => void> = [];
  /** The idle clock read once for the batch being handled (0 outside one): a touch inside it reads no clock of its own. */
  private batchClockMs = 0;

  constructor(options: SessionTableOptions) {
    this.protocol = options.protocol;
    this.guard = options.guard;
    this.codec = options.codec;
    this.onPacket = options.onPacket;
    this.relayIds = options.relayIds ?? new Set();
    this.onAccept = options.onAccept ?? (() => undefined);
    this.onCloseHook = options.onClose;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.backend = options.backend.create({ ...options.limits, onEvents: this.onEvents });
  }

  /** Opens a listener whose connections speak `protocol` (default: the table's). */
  async listen(options: ListenOptions, protocol: WireProtocol = this.protocol): Promise<Listening> {
    // A backend that relays follows a framed listener's frames and relays these
    // ids itself; RINGPORT_RELAY=js leaves it all to the JS path (the reference).
    if (this.relayIds.size > 0 && protocol instanceof FramedProtocol && process.env.RINGPORT_RELAY !== 'js') {
      const { lengthBytes, byteOrder, maxFrameBytes } = protocol.framing;
      options = { ...options, relay: { lengthBytes, byteOrder, maxFrameBytes, packetIds: [...this.relayIds] } };
    }
    const listening = await this.backend.listen(options);
    this.listeners.set(listening.listenerId, protocol);
    return listening;
  }

  /** Stops accepting on every listener; sessions already accepted carry on. */
  stopListening(): void {
    for (const id of this.listeners.keys()) this.backend.closeListener(id);
    this.listeners.clear();
  }

  /** Creates an outbound session and starts its first dial. */
  open(host: string, port: number, policy: ReconnectPolicy | undefined): OutboundSession {
    const session = new OutboundSession(this, host, port, policy, this.protocol);
    this.sessions.set(session.id, session);
    session.dial();
    return session;
  }

  /** @internal */
  dial(session: OutboundSession): void {
    const connId = this.backend.connect(session.host, session.port);
    session.connId = connId;
    this.byConn.add(session);
  }

  /** @internal An accepted session's handshake is over: it is listed and the application hears of it. */
  announce(session: InboundSession): void {
    this.sessions.set(session.id, session);
    this.onAccept(session);
  }

  /** @internal A sign of life that carried no packet (a pong): the session is not idle. */
  touch(session: Session): void {
    if (session.state !== 'closing' && session.state !== 'closed') session.idle?.touch(session, this.batchClockMs || idleClockMs());
  }

  /**
   * @internal The sweeper for a session of `protocol`: its own keep-alive
   * interval where it has one, else the idle timeout; undefined when off.
   */
  sweeperFor(protocol: WireProtocol): IdleSweeper | undefined {
    const quietMs = protocol.keepAliveMs ?? this.idleTimeoutMs;
    if (!(quietMs > 0)) return undefined;
    let sweeper = this.sweepers.get(quietMs);
    if (sweeper === undefined) {
      sweeper = new IdleSweeper(quietMs);
      this.sweepers.set(quietMs, sweeper);
    }
    return sweeper;
  }

  /** @internal */
  stopIdleTracking(session: Session): void {
    session.idle?.remove(session);
  }

  /** @internal */
  forget(session: Session): void {
    this.stopIdleTracking(session);
    this.sessions.delete(session.id);
    if (this.sessions.size === 0 && this.emptyWaiters.length > 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** @internal */
  onClose(session: Session, reason: CloseReason, error: TransportError | undefined): void {
    this.onCloseHook?.(session, reason, error);
  }

  /**
   * Closes every session with `reason`, letting queued packets flush for up to
   * `drainMs`; whatever is still open then is aborted. Resolves when every
   * session has closed.
   */
  async closeAll(reason: CloseReason, drainMs: number): Promise<void> {
    for (const session of [...this.sessions.values()]) session.close(reason);
    if (this.sessions.size === 0) return;
    const empty = new Promise<void>((resolve) => this.emptyWaiters.push(resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), drainMs);
    });
    const outcome = await Promise.race([empty, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      for (const session of this.sessions.values()) session.abort();
      await empty;
    }
  }

  async shutdown(): Promise<void> {
    for (const sweeper of this.sweepers.values()) sweeper.stop();
    this.sweepers.clear();
    this.stopListening();
    await this.backend.shutdown();
  }


  private readonly onEvents = (batch: readonly BackendEvent[]): void => {
    // One clock read per batch is precise enough for idle timeouts.
    const now = this.sweepers.size > 0 || this.idleTimeoutMs > 0 ? idleClockMs() : 0;
    this.batchClockMs = now;
    try {
      this.handle(batch, now);
    } finally {
      this.batchClockMs = 0;
    }
  };

  private handle(batch: readonly BackendEvent[], now: number): void {
    for (const event of batch) {
      switch (event.type) {
        case 'accept': {
          const protocol = this.listeners.get(event.listenerId) ?? this.protocol;
          const session = new InboundSession(this, event.listenerId, protocol);
          session.connId = event.connId;
          this.byConn.add(session);
          // The idle timeout bounds the handshake too: a peer that never completes one is closed unheard.
          session.idle = this.sweeperFor(protocol);
          if (now > 0) session.idle?.touch(session, now);
          session.attach(event.connId, event.remoteAddress, event.remotePort);
          break;
        }
        case 'connect': {
          const session = this.byConn.get(event.connId) as OutboundSession | undefined;
          if (session === undefined) break;
          if (event.error !== undefined) {
            this.byConn.delete(event.connId);
            session.connectFailed(event.error);
          } else {
            session.idle ??= this.sweeperFor(session.protocol);
            if (now > 0) session.idle?.touch(session, now);
            session.connected(event.connId, event.remoteAddress, event.remotePort);
          }
          break;
        }
        case 'data': {
          const session = this.byConn.get(event.connId);
          if (session === undefined) break;
          const packetsBefore = this.packetsIn;
          this.traffic[session.protocol.name].bytesIn += event.bytes.length;
          session.receive(event.bytes);
          // Only a completed packet is activity: bytes that never finish a frame do not keep a peer alive.
          if (now > 0 && this.packetsIn !== packetsBefore && session.state === 'open') session.idle?.touch(session, now);
          break;
        }
        case 'relayed': {
          // Packets the backend relayed itself: counted, and proof of life, as if they had passed here.
          this.packetsIn += event.packets;
          this.packetsOut += event.deliveries;
          const session = this.byConn.get(event.connId);
          if (session === undefined) break;
          const traffic = this.traffic[session.protocol.name];
          traffic.packetsIn += event.packets;
          traffic.bytesIn += event.bytes;
          traffic.packetsOut += event.deliveries;
          traffic.bytesOut += event.bytesOut;
          if (now > 0 && session.state === 'open') session.idle?.touch(session, now);
          break;
        }
        case 'drain':
          this.byConn.get(event.connId)?.drained();
          break;
        case 'close': {
          const session = this.byConn.get(event.connId);
          if (session === undefined) break;
          this.byConn.delete(event.connId);
          session.transportClosed(TRANSPORT_TO_SESSION[event.reason], event.error);
          break;
        }
      }
    }
  }
}
