import type { Guard, PacketKey, Session } from '../session';
import type { Codec } from './codec';
import { compose, type Middleware } from './compose';
import type { ErrorHook, PacketContext, PacketHandler } from './context';
import type { HandlerLatency } from './metrics/handler-latency';

export interface DispatchOptions {
  /** What a packet id with no handler gets. Default `close` (reason `unknown-packet`). */
  onUnknownPacket?: 'close' | 'ignore';
  /**
   * What a fault in application code (a handler, middleware, the reply's
   * encoding, an event listener) does to its session: `close` (default)
   * closes it with `handler-error`, `keep` lets it carry on.
   */
  onHandlerError?: 'close' | 'keep';
  /** Receives every fault in application code (see `Guard`). Default: written to stderr. */
  onError?: ErrorHook;
}

interface Route {
  readonly handler: PacketHandler;
  /** The packet a returned reply is sent as, in the codec's terms. */
  readonly replyKey: PacketKey;
  /** Whether the handler declares the third (ctx) parameter; read once, not per packet. */
  readonly takesContext: boolean;
}

/**
 * Packets a session may have waiting behind a slow async handler; a peer that
 * sends faster than its handlers finish is closed with `backpressure`.
 */
const MAX_WAITING_PACKETS = 1024;

/**
 * Turns packets into handler calls: route, decode, middleware, handler,
 * reply. It sees packets only (an id and a payload), whatever protocol
 * carried them. A packet it cannot route or decode closes only its session;
 * a fault in application code goes through the guard, whichever path the
 * packet took.
 */
export class Dispatcher {
  /** Packets dropped because `onUnknownPacket` is `ignore`. */
  ignoredPackets = 0;

  private readonly routes = new Map<number, Route>();
  private readonly middleware: Middleware[] = [];
  private chain: ((ctx: PacketContext) => Promise<void>) | undefined;
  private readonly closeOnUnknown: boolean;
  /** Where handler times go, once metrics are served; until then no clock is read per packet. */
  private latency: HandlerLatency | undefined;

  constructor(
    private readonly codec: Codec,
    private readonly guard: Guard,
    options: DispatchOptions,
    /** The server's relayed packets: one from a session in no room, with no handler, is dropped, not an unknown packet. */
    private readonly relayIds: ReadonlySet<number> = new Set(),
  ) {
    this.closeOnUnknown = (options.onUnknownPacket ?? 'close') === 'close';
  }

  use(middleware: Middleware): void {
    this.middleware.push(middleware);
    this.chain = compose(this.middleware, this.runHandler);
  }

  /** @internal Times every handler from now on (see HandlerLatency). */
  measure(latency: HandlerLatency): void {
    this.latency = latency;
  }

  handle(packet: PacketKey, handler: PacketHandler, reply?: PacketKey): void {
    const id = this.codec.idOf(packet);
    const replyId = reply === undefined ? id : this.codec.idOf(reply);
    this.routes.set(id, { handler, replyKey: this.codec.keyOf(replyId), takesContext: handler.length >= 3 });
  }

  /**
   * Packets of one session are handled in order: while an async handler (or
   * any middleware chain) of a session is pending, its later packets wait.
   * Different sessions never wait for each other. A waiting packet is
   * copied: a view would keep the whole receive buffer it arrived in alive.
   */
  readonly dispatch = (session: Session, packetId: number, buffer: Buffer, start: number, end: number): void => {
    if (session.waitingPackets !== undefined) {
      if (session.waitingPackets.length >= MAX_WAITING_PACKETS) session.close('backpressure');
      else session.waitingPackets.push({ packetId, payload: Buffer.from(buffer.subarray(start, end)) });
      return;
    }
    const pending = this.process(session, packetId, buffer.subarray(start, end));
    if (pending !== undefined) this.holdUntil(session, pending);
  };

  /** Holds the session's later packets until `pending` settles, then handles them in order. */
  private holdUntil(session: Session, pending: Promise<void>): void {
    session.waitingPackets ??= [];
    const resume = (): void => this.resume(session);
    // `pending` never rejects (faults are settled inside it); resuming on both outcomes keeps that from mattering.
    void pending.then(resume, resume);
  }

  private resume(session: Session): void {
    const waiting = session.waitingPackets!;
    while (waiting.length > 0 && session.isOpen) {
      const { packetId, payload } = waiting.shift()!;
      const pending = this.process(session, packetId, payload);
      if (pending !== undefined) {
        this.holdUntil(session, pending);
        return;
      }
    }
    session.waitingPackets = undefined;
  }

  /** Handles one packet; returns a promise that settles (never rejects) when the handling was async. */
  private process(session: Session, id: number, payload: Buffer): Promise<void> | undefined {
    if (!session.isOpen) return undefined;
    const route = this.routes.get(id);
    if (route === undefined) {
      if (this.closeOnUnknown && !this.relayIds.has(id)) session.close('unknown-packet');
      else this.ignoredPackets++;
      return undefined;
    }
    let message: unknown;
    try {
      message = this.codec.decode(id, payload);
    } catch {
      session.close('decode-error');
      return undefined;
    }
    if (this.chain === undefined && !route.takesContext) {
      // The hot case: no middleware and a handler that takes no ctx, so no ctx is built unless it fails.
      const latency = this.latency;
      const started = latency === undefined ? 0 : performance.now();
      let result: unknown;
      try {
        result = (route.handler as (session: Session, message: unknown) => unknown)(session, message);
      } catch (error) {
        latency?.observe(id, started);
        this.fail(error, session, id, message);
        return undefined;
      }
      if (!(result instanceof Promise)) {
        latency?.observe(id, started);
        this.reply(route, session, id, message, result);
        return undefined;
      }
      // An async handler is timed until it settles, in the callbacks it needs anyway.
      return result.then(
        (reply: unknown) => {
          latency?.observe(id, started);
          this.reply(route, session, id, message, reply);
        },
        (error: unknown) => {
          latency?.observe(id, started);
          this.fail(error, session, id, message);
        },
      );
    }
    const ctx = this.context(session, id, message);
    let result: Promise<void> | undefined;
    try {
      result = this.chain === undefined ? this.runHandler(ctx) : this.chain(ctx);
    } catch (error) {
      this.fail(error, session, id, ctx.message);
      return undefined;
    }
    return result?.then(undefined, (error: unknown) => this.fail(error, session, id, ctx.message));
  }

  private context(session: Session, packetId: number, message: unknown): PacketContext {
    return { session, packetId, packet: this.codec.keyOf(packetId), message, state: {} };
  }

  /**
   * The final step of the middleware chain: runs the packet's handler and
   * sends its reply; returns a promise only when the handler is async. A
   * reply that fails to encode throws here, into the chain, where middleware
   * may catch it like any error of the handler's.
   */
  private readonly runHandler = (ctx: PacketContext): Promise<void> | undefined => {
    const route = this.routes.get(ctx.packetId)!;
    const latency = this.latency;
    if (latency !== undefined) return this.runTimed(route, ctx, latency);
    const result = route.handler(ctx.session, ctx.message, ctx);
    if (result instanceof Promise) return result.then((reply) => this.send(route, ctx.session, reply));
    this.send(route, ctx.session, result);
    return undefined;
  };

  /** runHandler, timing the handler alone: the middleware around it is the application's to time. */
  private runTimed(route: Route, ctx: PacketContext, latency: HandlerLatency): Promise<void> | undefined {
    const started = performance.now();
    let result: unknown;
    try {
      result = route.handler(ctx.session, ctx.message, ctx);
    } finally {
      if (!(result instanceof Promise)) latency.observe(ctx.packetId, started);
    }
    if (!(result instanceof Promise)) {
      this.send(route, ctx.session, result);
      return undefined;
    }
    return result.then(
      (reply) => {
        latency.observe(ctx.packetId, started);
        this.send(route, ctx.session, reply);
      },
      (error: unknown) => {
        latency.observe(ctx.packetId, started);
        throw error;
      },
    );
  }

  /** Sends a handler's reply; a reply that cannot be encoded (or sent) is the handler's fault. */
  private reply(route: Route, session: Session, packetId: number, message: unknown, reply: unknown): void {
    try {
      this.send(route, session, reply);
    } catch (error) {
      this.fail(error, session, packetId, message);
    }
  }

  private send(route: Route, session: Session, reply: unknown): void {
    // The session may have closed while an async handler ran; the reply has nowhere to go.
    if (reply === undefined || !session.isOpen) return;
    session.send(route.replyKey, reply);
  }

  private fail(error: unknown, session: Session, packetId: number, message: unknown): void {
    this.guard.fault(error, { source: 'handler', session, packetId, packet: this.codec.keyOf(packetId), message });
  }
}
