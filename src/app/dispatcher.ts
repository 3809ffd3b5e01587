import { PACKET_ID_BYTES, readPacketIdAt, type Framing } from '../framing';
import type { PacketKey, Session } from '../session';
import type { Codec } from './codec';
import { compose, type Middleware } from './compose';
import type { ErrorHook, PacketContext, PacketHandler } from './context';

export interface DispatchOptions {
  /** What a packet id with no handler gets. Default `close` (reason `unknown-packet`). */
  onUnknownPacket?: 'close' | 'ignore';
  /** Whether a throwing handler closes its session (reason `handler-error`). Default `close`. */
  onHandlerError?: 'close' | 'keep';
  /** Receives handler and middleware errors. Default: written to stderr. */
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
const MAX_WAITING_FRAMES = 1024;

const logError: ErrorHook = (error, ctx) => {
  console.error(`ringport: handler for packet ${String(ctx.packet)} on session ${ctx.session.id} failed:`, error);
};

/**
 * Turns frame bodies into handler calls: packet id, route, decode, middleware,
 * handler, reply. A protocol violation closes only the offending session.
 */
export class Dispatcher {
  /** Packets dropped because `onUnknownPacket` is `ignore`. */
  ignoredPackets = 0;

  private readonly routes = new Map<number, Route>();
  private readonly middleware: Middleware[] = [];
  private chain: ((ctx: PacketContext) => Promise<void>) | undefined;
  private readonly closeOnUnknown: boolean;
  private readonly closeOnHandlerError: boolean;
  private readonly onError: ErrorHook;

  constructor(
    private readonly codec: Codec,
    private readonly framing: Framing,
    options: DispatchOptions,
  ) {
    this.closeOnUnknown = (options.onUnknownPacket ?? 'close') === 'close';
    this.closeOnHandlerError = (options.onHandlerError ?? 'close') === 'close';
    this.onError = options.onError ?? logError;
  }

  use(middleware: Middleware): void {
    this.middleware.push(middleware);
    this.chain = compose(this.middleware, this.runHandler);
  }

  handle(packet: PacketKey, handler: PacketHandler, reply?: PacketKey): void {
    const id = this.codec.idOf(packet);
    const replyId = reply === undefined ? id : this.codec.idOf(reply);
    this.routes.set(id, { handler, replyKey: this.codec.keyOf(replyId), takesContext: handler.length >= 3 });
  }

  /**
   * Packets of one session are handled in order: while an async handler (or
   * any middleware chain) of a session is pending, its later packets wait.
   * Different sessions never wait for each other.
   */
  readonly dispatch = (session: Session, buffer: Buffer, start: number, end: number): void => {
    if (session.waitingFrames !== undefined) {
      if (session.waitingFrames.length >= MAX_WAITING_FRAMES) session.close('backpressure');
      else session.waitingFrames.push(buffer.subarray(start, end));
      return;
    }
    const pending = this.process(session, buffer, start, end);
    if (pending !== undefined) this.holdUntil(session, pending);
  };

  private holdUntil(session: Session, pending: Promise<void>): void {
    session.waitingFrames = [];
    void pending.then(() => this.resume(session));
  }

  private resume(session: Session): void {
    const waiting = session.waitingFrames!;
    while (waiting.length > 0 && session.isOpen) {
      const body = waiting.shift()!;
      const pending = this.process(session, body, 0, body.length);
      if (pending !== undefined) {
        void pending.then(() => this.resume(session));
        return;
      }
    }
    session.waitingFrames = undefined;
  }

  /** Handles one frame; returns a promise that settles (never rejects) when the handling was async. */
  private process(session: Session, buffer: Buffer, start: number, end: number): Promise<void> | undefined {
    if (!session.isOpen) return undefined;
    let id: number;
    try {
      id = readPacketIdAt(buffer, start, end, this.framing);
    } catch {
      session.close('decode-error');
      return undefined;
    }
    const payload = buffer.subarray(start + PACKET_ID_BYTES, end);
    const route = this.routes.get(id);
    if (route === undefined) {
      if (this.closeOnUnknown) session.close('unknown-packet');
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
      // The hot case: no middleware and a handler that takes no ctx, so none is built.
      try {
        const result = (route.handler as (session: Session, message: unknown) => unknown)(session, message);
        if (!(result instanceof Promise)) {
          this.reply(route, session, result);
          return undefined;
        }
        return result.then(
          (reply) => this.reply(route, session, reply),
          (err: unknown) => this.fail(err, this.context(session, id, message)),
        );
      } catch (err) {
        this.fail(err, this.context(session, id, message));
        return undefined;
      }
    }
    const ctx = this.context(session, id, message);
    let result: Promise<void> | undefined;
    try {
      result = this.chain === undefined ? this.runHandler(ctx) : this.chain(ctx);
    } catch (err) {
      this.fail(err, ctx);
      return undefined;
    }
    return result?.catch((err: unknown) => this.fail(err, ctx));
  }

  private context(session: Session, packetId: number, message: unknown): PacketContext {
    return { session, packetId, packet: this.codec.keyOf(packetId), message, state: {} };
  }

  /** Runs the packet's handler and sends its reply; returns a promise only when the handler is async. */
  private readonly runHandler = (ctx: PacketContext): Promise<void> | undefined => {
    const route = this.routes.get(ctx.packetId)!;
    const result = route.handler(ctx.session, ctx.message, ctx);
    if (result instanceof Promise) return result.then((reply) => this.reply(route, ctx.session, reply));
    this.reply(route, ctx.session, result);
    return undefined;
  };

  private reply(route: Route, session: Session, reply: unknown): void {
    // The session may have closed while an async handler ran; the reply has nowhere to go.
    if (reply === undefined || !session.isOpen) return;
    session.send(route.replyKey, reply);
  }

  private fail(error: unknown, ctx: PacketContext): void {
    this.onError(error, ctx);
    if (this.closeOnHandlerError) ctx.session.close('handler-error');
  }
}
