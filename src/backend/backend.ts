/**
 * The backend seam. A backend moves bytes for numbered connections and knows
 * nothing of packets or sessions, nor of frames unless a listener asks it to
 * relay some (see Relaying below). Four implementations exist, named
 * after their mechanism: `uring` (native io_uring, Linux), `epoll` (native
 * epoll, Linux, where io_uring is refused), `iocp` (native IOCP, Windows)
 * and `net` (pure `node:net`, everywhere). What every one of them must
 * provide is listed here and nowhere else:
 *
 * - `listen(options)` opens a listener and resolves with its id and bound port.
 * - `connect(host, port)` starts a dial and returns a connection id at once; the
 *   outcome arrives later as a `connect` event (with `error` when it failed,
 *   followed by no other event for that id).
 * - `send(connId, bytes)` queues bytes; it returns false when the connection's
 *   queue is over `highWaterMarkBytes`, and a `drain` event follows once it
 *   falls to `lowWaterMarkBytes`. A queue that would pass `maxQueueBytes` closes
 *   the connection with reason `backpressure` instead of growing. The backend
 *   takes ownership of `bytes`: the caller must not change them afterwards.
 * - `sendText(connId, latin1)` is `send` of the bytes of a string of one byte
 *   per character (an HTTP head, ASCII text), without a buffer made for it
 *   first: the native backends encode it straight into their send arena,
 *   node:net writes the string itself. Same limits, same answer.
 * - `sendMany(connIds, bytes, count)` queues one buffer for the first `count`
 *   connections of `connIds` (all of them by default; a broadcast) with no
 *   per-recipient copy; the same limits apply to each. It reads `connIds`
 *   before it returns and calls nothing back meanwhile, so a caller may reuse
 *   that array, as a scratch array filled to `count`, with no view per call.
 * - `close(connId, mode)`: `graceful` flushes what is queued, sends FIN and
 *   waits for the peer's, resetting instead once it makes no progress for 2 s;
 *   `abort` drops the queue and resets, and also cuts short a graceful close
 *   still in progress. Either way one `close` event follows with reason `local`.
 * - `closeListener(id)` stops accepting; `shutdown()` closes everything and
 *   releases the backend's resources.
 * - Events reach the `onEvents` sink given at creation in batches: at most one
 *   batch per event-loop wake-up, never one call per event. Within a batch,
 *   events of one connection keep their order.
 * - `stats()` counts connections, bytes, operations and batches: the same
 *   fields with the same meaning on every backend (see BackendStats).
 * - Relaying, where a backend has it (`relayGroups` defined; the native
 *   ones): a listener opened with `relay` speaks ringport's framing, and the
 *   backend follows its connections' frames. A frame whose packet id
 *   `relay.packetIds` lists, from a connection that `relayGroups.join` put
 *   in a group, is queued for every other member of that group (as it came, or as
 *   a WebSocket binary message for a member of kind `websocket`), under the
 *   same `maxQueueBytes` (`backpressure`), and never reaches `onEvents` as
 *   data: a `relayed` event per read says how many. Everything else arrives
 *   as `data`, whole frames having been cut out only, so a decoder sees a
 *   valid stream. A backend without it ignores `relay`, and every byte
 *   arrives as data: the layer above relays what reaches it.
 * - Connection ids carry a slot: see {@link CONN_SLOT_LIMIT}.
 */

/**
 * A connection id is `generation * CONN_SLOT_LIMIT + slot`, as the native
 * reactor numbers its connection slab. A freed slot is reused before a new
 * one is taken, so slots stay below the peak number of connections; the
 * generation changes on reuse, so an id never names a later connection. A
 * caller can therefore keep per-connection state in an array indexed by
 * `connSlot(id)`, where a map would cost several times the memory, as long
 * as it compares the whole id, and keeps an entry aside when a newer id
 * takes its slot: a slot may be reused as soon as its connection is closed,
 * before that connection's `close` (or failed `connect`) event has reached
 * the caller. A dial refused before it started may be given a negative id,
 * which has no slot.
 */
export const CONN_SLOT_LIMIT = 1 << 20;

/**
 * The slot of a connection id that is not negative (see {@link CONN_SLOT_LIMIT}).
 * A mask, not `%`: ids pass 2^31, where V8 holds them as doubles and `%` on a
 * double is a call into C, while `&` keeps the low 32 bits, which hold the
 * slot since CONN_SLOT_LIMIT divides 2^32.
 */
export function connSlot(connId: number): number {
  return connId & (CONN_SLOT_LIMIT - 1);
}

/** The id of the connection in `slot` at `generation` (see {@link CONN_SLOT_LIMIT}). */
export function connIdOf(slot: number, generation: number): number {
  return generation * CONN_SLOT_LIMIT + slot;
}

/** The generation of a connection id that is not negative: exact, as the limit is a power of two. */
export function connGeneration(connId: number): number {
  return (connId - connSlot(connId)) / CONN_SLOT_LIMIT;
}

/** The mechanisms a backend can be built on. */
export type BackendKind = 'uring' | 'epoll' | 'iocp' | 'net';

/** Why a connection closed, as far as the transport can tell. */
export type TransportCloseReason =
  /** The peer ended the stream (FIN). */
  | 'peer'
  /** A socket error (reset, timeout, unreachable); `error` says which. */
  | 'error'
  /** The queue would have passed `maxQueueBytes`. */
  | 'backpressure'
  /** `close()` was called on this side. */
  | 'local';

export interface TransportError {
  /** An errno-style code such as `ECONNRESET` or `ECONNREFUSED`. */
  readonly code: string;
  readonly message: string;
}

export type BackendEvent =
  | {
      readonly type: 'accept';
      readonly listenerId: number;
      readonly connId: number;
      readonly remoteAddress: string;
      readonly remotePort: number;
    }
  | {
      readonly type: 'connect';
      readonly connId: number;
      readonly remoteAddress: string;
      readonly remotePort: number;
      readonly error?: TransportError;
    }
  | { readonly type: 'data'; readonly connId: number; readonly bytes: Buffer }
  | { readonly type: 'drain'; readonly connId: number }
  /**
   * Frames of one read the backend relayed itself (see the contract above):
   * `bytes` received, `deliveries` (frames times the members they were
   * queued for) and the `bytesOut` they made.
   */
  | {
      readonly type: 'relayed';
      readonly connId: number;
      readonly packets: number;
      readonly bytes: number;
      readonly deliveries: number;
      readonly bytesOut: number;
    }
  | {
      readonly type: 'close';
      readonly connId: number;
      readonly reason: TransportCloseReason;
      readonly error?: TransportError;
    };

export type BackendEventSink = (batch: readonly BackendEvent[]) => void;

export interface ListenOptions {
  host?: string;
  /** 0 picks a free port; `listen` resolves with the one bound. */
  port: number;
  /** The accept queue's length; by default the system's limit (somaxconn on Linux, SOMAXCONN on Windows). */
  backlog?: number;
  /** SO_REUSEPORT, so that several reactors can each own a listener on one port. */
  reusePort?: boolean;
  /** The connections speak ringport's framing, and these packet ids are relayed (see the contract above). */
  relay?: RelayOptions;
}

export interface RelayOptions {
  readonly lengthBytes: 2 | 4;
  readonly byteOrder: 'le' | 'be';
  readonly maxFrameBytes: number;
  readonly packetIds: readonly number[];
}

/** How relayed frames are written to a group member: as framed, or as WebSocket binary messages. */
export type RelayKind = 'framed' | 'websocket';

/** The relay groups of a backend that relays (a room each, while it has members). */
export interface RelayGroups {
  /** A new, empty group: its id (never 0) is unique among every backend instance sharing this one's reactor. */
  open(): number;
  /** `group` is empty and done with; its id may be given out again. */
  close(group: number): void;
  /**
   * Puts `connId` in `group` (0: takes it out of its group), receiving
   * relayed frames as `kind`. A connection is in one group at most, and
   * leaves it by itself when it closes.
   */
  join(connId: number, group: number, kind: RelayKind): void;
}

export interface Listening {
  readonly listenerId: number;
  readonly host: string;
  readonly port: number;
}

export interface QueueLimits {
  /** `send` returns false above this many queued bytes. */
  highWaterMarkBytes: number;
  /** `drain` fires when a queue that was over the high-water mark falls to this. */
  lowWaterMarkBytes: number;
  /** A queue that would grow past this closes its connection with `backpressure`. */
  maxQueueBytes: number;
}

export interface BackendOptions extends QueueLimits {
  onEvents: BackendEventSink;
}

/**
 * A backend's counters. Every backend reports every field, with the same
 * meaning: the same traffic gives the same connections, listeners, bytes,
 * sends and queued bytes on each. What depends on the mechanism is said.
 */
export interface BackendStats {
  readonly connections: number;
  readonly listeners: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Read completions that delivered bytes. */
  readonly reads: number;
  /** Buffers accepted by `send` and `sendMany` (one per recipient). */
  readonly sends: number;
  /**
   * Bytes queued and not yet written, over all connections: what this tick
   * has sent and not yet flushed, plus what the kernel has not taken. A
   * closing connection's count ends when its close begins.
   */
  readonly queuedBytes: number;
  /** Event batches delivered to JS: the JS/native crossings in that direction. */
  readonly batches: number;
  /** Kernel submissions (io_uring_enter, sendmsg, WSASend, socket writes): how many depends on the mechanism. */
  readonly submits: number;
  /**
   * Times the reactor woke up for I/O (native backends; the reactor's, shared
   * by every backend instance on its thread). net: 0, as node's own loop does
   * the waiting and does not count it.
   */
  readonly wakeups: number;
  /**
   * What those wake-ups reaped: CQEs (uring), ready events (epoll),
   * completion packets (iocp); over `wakeups`, the batching each wake-up
   * buys. net: 0, like `wakeups`.
   */
  readonly completions: number;
  /**
   * Graceful closes that made no progress for 2 s and were reset instead
   * (see `close`): a peer that stopped reading or never answered our FIN,
   * or a backend that failed to notice that it did.
   */
  readonly stalledCloses: number;
  /**
   * Receive buffers held waiting for input. uring: its provided-buffer pool,
   * which grows by one buffer for each receive that found it empty and falls
   * back to its initial size within seconds once load falls. epoll, iocp
   * and net hold none (they read into memory taken per read) and report 0.
   */
  readonly recvBuffers: number;
  /**
   * The memory held for queued sends. Native backends: the reactor's chunks
   * and broadcast blocks, the free chunks included; a connection pins its
   * queued bytes plus less than two 16 KiB chunks, never another's bytes.
   * net: the buffers node:net holds for its sockets, which are the queued bytes.
   */
  readonly sendBufferBytes: number;
  /** How often a receive found the uring backend's buffer pool empty; 0 on the others, which have no pool. */
  readonly recvBufferShortages: number;
  /**
   * Frames the backend relayed itself (see the contract above): the native
   * backends' framed senders' relayed packets. net relays none (the layer
   * above does) and reports 0.
   */
  readonly relayedPackets: number;
}

export interface Backend {
  readonly kind: BackendKind;
  listen(options: ListenOptions): Promise<Listening>;
  connect(host: string, port: number): number;
  send(connId: number, bytes: Uint8Array): boolean;
  sendText(connId: number, latin1: string): boolean;
  sendMany(connIds: ArrayLike<number>, bytes: Uint8Array, count?: number): void;
  /** Bytes queued for `connId` and not yet written; 0 for an unknown id. */
  bufferedAmount(connId: number): number;
  close(connId: number, mode: 'graceful' | 'abort'): void;
  closeListener(listenerId: number): void;
  /** Only on backends that relay (see the contract above). */
  readonly relayGroups?: RelayGroups;
  stats(): BackendStats;
  shutdown(): Promise<void>;
}

/** A reasonable default for game traffic: 64 KiB is a few seconds of state for one player. */
export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  highWaterMarkBytes: 64 * 1024,
  lowWaterMarkBytes: 16 * 1024,
  maxQueueBytes: 4 * 1024 * 1024,
};
