import type { Backend, BackendEvent, BackendSelection, Listening, ListenOptions, QueueLimits, TransportCloseReason, TransportError } from '../backend';
import type { Framing } from '../framing';
import type { ReconnectPolicy } from './backoff';
import type { CloseReason } from './close-reason';
import type { Guard } from './guard';
import { IdleList } from './idle-list';
import { InboundSession } from './inbound-session';
import { OutboundSession } from './outbound-session';
import { SessionsByConn } from './sessions-by-conn';
import type { PacketKey, Session } from './session';

export interface SessionTableOptions {
  backend: BackendSelection;
  framing: Framing;
  limits: QueueLimits;
  /** Every call into application code from this table and its sessions goes through it. */
  guard: Guard;
  /** Close sessions that complete no packet for this long; 0 turns it off. */
  idleTimeoutMs: number;
  /** Encodes one packet into one complete frame. */
  encode(packet: PacketKey, message: unknown): Buffer;
  /** Every complete frame body, as `buffer[start, end)`, in arrival order per session. */
  onFrame(session: Session, buffer: Buffer, start: number, end: number): void;
  onAccept?(session: InboundSession): void;
  onClose?(session: Session, reason: CloseReason, error: TransportError | undefined): void;
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
  readonly framing: Framing;
  readonly guard: Guard;
  readonly encode: (packet: PacketKey, message: unknown) => Buffer;
  readonly onFrame: (session: Session, buffer: Buffer, start: number, end: number) => void;
  /** Open and closing sessions, by session id. */
  readonly sessions = new Map<number, Session>();
  packetsIn = 0;
  packetsOut = 0;
  /** @internal Scratch for the connection ids of one broadcast; ids pass 2^31, hence 64-bit floats. */
  recipientIds: Float64Array = new Float64Array(64);

  private readonly byConn = new SessionsByConn();
  private readonly listenerIds = new Set<number>();
  private readonly idle = new IdleList<Session>();
  private readonly idleTimeoutMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly onAccept: (session: InboundSession) => void;
  private readonly onCloseHook: SessionTableOptions['onClose'];
  private emptyWaiters: Array<() => void> = [];

  constructor(options: SessionTableOptions) {
    this.framing = options.framing;
    this.guard = options.guard;
    this.encode = options.encode;
    this.onFrame = options.onFrame;
    this.onAccept = options.onAccept ?? (() => undefined);
    this.onCloseHook = options.onClose;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.backend = options.backend.create({ ...options.limits, onEvents: this.onEvents });
    if (this.idleTimeoutMs > 0) {
      // Sweeping a few times per timeout keeps the overshoot under a quarter of it.
      this.idleTimer = setInterval(this.sweepIdle, Math.max(10, this.idleTimeoutMs / 4));
      this.idleTimer.unref();
    }
  }

  async listen(options: ListenOptions): Promise<Listening> {
    const listening = await this.backend.listen(options);
    this.listenerIds.add(listening.listenerId);
    return listening;
  }

  /** Stops accepting on every listener; sessions already accepted carry on. */
  stopListening(): void {
    for (const id of this.listenerIds) this.backend.closeListener(id);
    this.listenerIds.clear();
  }

  /** Creates an outbound session and starts its first dial. */
  open(host: string, port: number, policy: ReconnectPolicy | undefined): OutboundSession {
    const session = new OutboundSession(this, host, port, policy);
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

  /** @internal */
  stopIdleTracking(session: Session): void {
    if (this.idleTimeoutMs > 0) this.idle.remove(session);
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
    if (this.idleTimer !== undefined) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    this.stopListening();
    await this.backend.shutdown();
  }

  private readonly sweepIdle = (): void => {
    for (const session of this.idle.sweep(Date.now() - this.idleTimeoutMs)) session.close('idle-timeout');
  };

  private readonly onEvents = (batch: readonly BackendEvent[]): void => {
    // One clock read per batch is precise enough for idle timeouts.
    const now = this.idleTimeoutMs > 0 ? Date.now() : 0;
    for (const event of batch) {
      switch (event.type) {
        case 'accept': {
          const session = new InboundSession(this, event.listenerId, event.connId, event.remoteAddress, event.remotePort);
          this.sessions.set(session.id, session);
          this.byConn.add(session);
          if (now > 0) this.idle.touch(session, now);
          this.onAccept(session);
          break;
        }
        case 'connect': {
          const session = this.byConn.get(event.connId) as OutboundSession | undefined;
          if (session === undefined) break;
          if (event.error !== undefined) {
            this.byConn.delete(event.connId);
            session.connectFailed(event.error);
          } else {
            if (now > 0) this.idle.touch(session, now);
            session.connected(event.connId, event.remoteAddress, event.remotePort);
          }
          break;
        }
        case 'data': {
          const session = this.byConn.get(event.connId);
          if (session === undefined) break;
          const packetsBefore = this.packetsIn;
          session.receive(event.bytes);
          // Only a completed packet is activity: bytes that never finish a frame do not keep a peer alive.
          if (now > 0 && this.packetsIn !== packetsBefore && session.state === 'open') this.idle.touch(session, now);
          break;
        }
        case 'drain':
          this.byConn.get(event.connId)?.emit('drain');
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
  };
}
