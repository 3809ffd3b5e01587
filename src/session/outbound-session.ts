import { ErrorCodes, RingportError } from '../errors';
import type { TransportError } from '../backend';
import type { WireProtocol } from '../protocol';
import { backoffDelayMs, type ReconnectPolicy } from './backoff';
import type { CloseReason } from '../protocol/close-reason';
import { Session } from './session';
import type { SessionTable } from './session-table';

/** Losses worth dialling again for; anything else (a protocol error, our own close) is final. */
const RECONNECTABLE: ReadonlySet<CloseReason> = new Set(['peer-closed', 'error']);

/** What a connection that the server closed before sending anything failed with. */
const CLOSED_BEFORE_ANY_PACKET: TransportError = {
  code: 'ECONNABORTED',
  message: 'the server closed the connection before any packet arrived',
};

/**
 * A session this side dialled. With a reconnect policy it survives the loss
 * of its connection: it dials again with exponential backoff and jitter,
 * keeps its id, data and handlers, and emits `reconnecting` (attempt, delayMs)
 * and `reconnected`. Packets sent while it is not connected are queued up to
 * `maxQueuedBytes` and sent on reconnect, after whatever the `reconnected`
 * listeners send; past that bound, or without a
 * policy, `send` throws `RP_ERR_NOT_CONNECTED`. If it cannot reconnect within
 * `maxRetries` it closes with reason `connect-failed`, carrying the last
 * dial's error.
 *
 * The backoff starts over only once a packet has arrived on a new
 * connection: a server that accepts and then closes at once (overloaded, or
 * refusing this client) counts as a failed attempt, not as a recovery, so
 * the client backs off from it and gives up within its retries.
 */
export class OutboundSession<Data extends object = Record<string, any>> extends Session<Data> {
  readonly host: string;
  readonly port: number;

  private readonly policy: ReconnectPolicy | undefined;
  private attempt = 0;
  /** Whether a packet has arrived on the current connection. */
  private proven = false;
  /** The current connection's handshake was refused: its end is a failed attempt, not a loss. */
  private refused = false;
  /** How the current connection was lost in its protocol, for when its transport ends (see `fail`). */
  private lost: { reason: CloseReason; error: TransportError | undefined } | undefined = undefined;
  private everConnected = false;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private retryTimer: NodeJS.Timeout | undefined = undefined;
  private lastError: TransportError | undefined = undefined;
  private readonly whenOpened: Promise<void>;
  private settleOpened!: (error?: Error) => void;

  /** @internal */
  constructor(table: SessionTable, host: string, port: number, policy: ReconnectPolicy | undefined, protocol: WireProtocol) {
    super(table, 'connecting', protocol, 'client');
    // The application holds this session from the start: it hears every event, a failed first dial included.
    this.announced = true;
    this.host = host;
    this.port = port;
    this.policy = policy;
    this.whenOpened = new Promise<void>((resolve, reject) => {
      this.settleOpened = (error) => (error ? reject(error) : resolve());
    });
    // The caller may close before awaiting; an unobserved rejection must not crash the process.
    this.whenOpened.catch(() => undefined);
  }

  /** Resolves once the first connection is up; rejects with `RP_ERR_CONNECT_FAILED` if it never comes. */
  whenOpen(): Promise<void> {
    return this.whenOpened;
  }

  override get bufferedAmount(): number {
    return this.connId >= 0 ? super.bufferedAmount : this.queuedBytes;
  }

  override sendFrame(frame: Buffer): boolean {
    if (this.state === 'connecting' || this.state === 'reconnecting') {
      const limit = this.policy?.maxQueuedBytes ?? 0;
      if (this.queuedBytes + frame.length > limit) {
        throw new RingportError(
          ErrorCodes.NOT_CONNECTED,
          `session ${this.id} is ${this.state} and its queue of ${limit} bytes is full`,
        );
      }
      this.queued.push(frame);
      this.queuedBytes += frame.length;
      return false;
    }
    return super.sendFrame(frame);
  }

  override close(reason: CloseReason = 'closed'): void {
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    super.close(reason);
  }

  /** @internal */
  dial(): void {
    this.table.dial(this);
  }

  /** @internal */
  connected(connId: number, remoteAddress: string, remotePort: number): void {
    if (this.state === 'closing') {
      this.table.backend.close(connId, 'abort');
      return;
    }
    this.proven = false;
    this.attach(connId, remoteAddress, remotePort);
  }

  /** The connection's handshake (if its protocol has one) is over. */
  protected override onOpened(): void {
    // `reconnected` listeners run before the queue is flushed, so what they
    // send (a new login, say) reaches the server ahead of the queued packets.
    if (this.everConnected) this.emit('reconnected');
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const frame of queued) {
      if (this.state !== 'open') break;
      super.sendFrame(frame);
    }
    if (!this.everConnected) {
      this.everConnected = true;
      this.settleOpened();
    }
  }

  /** @internal The first packet on a connection proves it: the backoff starts over. */
  override packet(packetId: number, buffer: Buffer, start: number, end: number): void {
    if (!this.proven) {
      this.proven = true;
      this.attempt = 0;
    }
    super.packet(packetId, buffer, start, end);
  }

  /**
   * @internal The protocol failed the connection. Before the session opened
   * on it (a refused WebSocket handshake) that is a failed connection
   * attempt, retried under the policy like a refused dial.
   */
  override fail(reason: CloseReason, error?: TransportError): void {
    if (this.state === 'open' && this.policy !== undefined && RECONNECTABLE.has(reason)) {
      // The peer closed in its protocol (a WebSocket close frame, already answered): a loss like a FIN.
      // Packets sent from now on wait in the queue for the next connection.
      this.lost = { reason, error };
      this.state = 'reconnecting';
      this.table.stopIdleTracking(this);
      this.table.backend.close(this.connId, 'graceful');
      return;
    }
    if (this.state === 'open' || this.state === 'closing' || this.state === 'closed' || this.connId < 0) {
      super.fail(reason, error);
      return;
    }
    this.refused = true;
    this.lastError = error ?? { code: 'EPROTO', message: `the connection failed its handshake (${reason})` };
    this.table.backend.close(this.connId, 'abort');
  }

  /** @internal A dial failed before the connection was established. */
  connectFailed(error: TransportError): void {
    this.connId = -1;
    this.lastError = error;
    if (this.state === 'closing') {
      this.finish(this.closeReason ?? 'closed');
      return;
    }
    this.retryOrGiveUp();
  }

  override transportClosed(transportReason: CloseReason, error: TransportError | undefined): void {
    if (this.lost !== undefined) {
      ({ reason: transportReason, error } = { reason: this.lost.reason, error: error ?? this.lost.error });
      this.lost = undefined;
    }
    if (this.refused) {
      this.refused = false;
      this.connId = -1;
      this.table.stopIdleTracking(this);
      this.retryOrGiveUp();
      return;
    }
    // Closing or closed is final; a connection lost while open or still in its handshake is worth another dial.
    const live = this.state !== 'closing' && this.state !== 'closed';
    if (!live || this.policy === undefined || !RECONNECTABLE.has(transportReason)) {
      super.transportClosed(transportReason, error);
      return;
    }
    this.connId = -1;
    this.lastError = error ?? (this.proven ? undefined : CLOSED_BEFORE_ANY_PACKET);
    if (this.everConnected) this.state = 'reconnecting';
    this.table.stopIdleTracking(this);
    // The next connection gets a new protocol stream (attach): nothing is spliced onto a half-read frame.
    this.retryOrGiveUp();
  }

  protected override finish(reason: CloseReason, error?: TransportError): void {
    if (this.state === 'closed') return;
    this.queued = [];
    this.queuedBytes = 0;
    super.finish(reason, error);
    const detail = this.lastError ? `: ${this.lastError.code} ${this.lastError.message}` : '';
    this.settleOpened(
      new RingportError(
        reason === 'connect-failed' ? ErrorCodes.CONNECT_FAILED : ErrorCodes.CLOSED,
        `could not connect to ${this.host}:${this.port} (${reason})${detail}`,
        { cause: this.lastError },
      ),
    );
  }

  private retryOrGiveUp(): void {
    if (this.policy === undefined || this.attempt >= this.policy.maxRetries) {
      this.state = 'closing';
      this.finish('connect-failed', this.lastError);
      return;
    }
    const delayMs = backoffDelayMs(this.policy, this.attempt);
    this.attempt++;
    if (this.everConnected) this.state = 'reconnecting';
    this.emit('reconnecting', this.attempt, delayMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dial();
    }, delayMs);
  }
}
