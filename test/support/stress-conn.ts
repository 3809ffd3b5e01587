import type * as net from 'node:net';
import type { TransportCloseReason, TransportError } from '../../src/backend';
import type { Rng } from './stress-rng';
import { ExpectedStream, type PatternStream } from './stress-streams';

/**
 * Problems found during a stress run. Event sinks must never throw (a throw
 * in the native backend's sink is a fatal exception), so every check records
 * here and the test asserts once at the end, naming the seed.
 */
export class Report {
  readonly problems: string[] = [];
  private dropped = 0;

  constructor(readonly label: string) {}

  fail(message: string): void {
    if (this.problems.length < 40) this.problems.push(message);
    else this.dropped++;
  }

  /** Throws one error listing every problem, with the seed to replay them. */
  assertClean(): void {
    if (this.problems.length === 0) return;
    const more = this.dropped > 0 ? `\n... and ${this.dropped} more` : '';
    throw new Error(`${this.label}: ${this.problems.length + this.dropped} problem(s)\n- ${this.problems.join('\n- ')}${more}`);
  }
}

/** `refused` dials a port nobody listens on: its only event is a failed connect (or a local close). */
export type Origin = 'accepted' | 'dialled' | 'refused';
/** How a connection ends: `clean` streams everything, then closes from a random side. */
export type Ending = 'clean' | 'local-graceful' | 'local-abort' | 'peer-end' | 'peer-reset';
/**
 * `paced` waits for drain after a false send; `stall` does too, against a peer
 * that starts paused and resumes later; `flood` keeps sending into a paused
 * peer until the hard limit closes the connection; `burst` queues a large
 * amount into a paused peer at once, ignoring false (see stress-graceful.ts).
 */
export type Mode = 'paced' | 'stall' | 'flood' | 'burst';

/** Modes that keep sending after send() returned false. */
export function ignoresBackpressure(mode: Mode): boolean {
  return mode === 'flood' || mode === 'burst';
}

export interface ConnPlan {
  origin: Origin;
  /** Bytes the backend sends (not counting a dialled connection's header). */
  backendBytes: number;
  /** Close the connection (this way) right after connect() returns, before its outcome. */
  closeAtDial?: 'graceful' | 'abort';
  /** Bytes an accepted connection's peer sends; a dialled one's peer echoes instead. */
  peerBytes: number;
  ending: Ending;
  /** The ending happens once this many bytes have been sent by either side (or when everything has been). */
  endAt: number;
  mode: Mode;
}

export interface Track {
  readonly id: number;
  state: 'dialing' | 'open' | 'closed' | 'failed';
  conn: Conn | undefined;
  readonly remotePort: number;
  /** An accepted connection's listener port and peer port. */
  readonly key: string;
  closes: number;
  /** Bytes of an accepted connection that arrived before `claim` could name its Conn. */
  early?: Buffer[];
}

/** One logical connection: the backend's end, the peer's socket, and what each must receive. */
export class Conn {
  connId: number | undefined;
  track: Track | undefined;
  /** The peer's end: a client socket (accepted) or the echo server's socket (dialled). */
  socket: net.Socket | undefined;
  /** The listener an accepted connection's peer dialled. */
  listenerId: number | undefined;
  /** Backend to peer; checked at the peer. */
  readonly toPeer: ExpectedStream;
  /** Peer to backend; checked in the backend's data events. */
  readonly toBackend: ExpectedStream;
  backendRemaining: number;
  peerRemaining: number;
  /** Bytes the backend accepted for this connection (send and sendMany). */
  sent = 0;
  /** Bytes the peer wrote (accepted: its own stream; dialled: what it echoed). */
  peerWritten = 0;
  localClose: 'graceful' | 'abort' | undefined;
  sentAtLocalClose = 0;
  /** An abort followed a graceful close. */
  abortedAfterGraceful = false;
  backpressureExpected = false;
  awaitingDrain = false;
  /**
   * A send returned false with the queue under the high-water mark. That is
   * right only for a connection already closing underneath (net drops sends
   * once the socket has closed, before the close event is delivered), so a
   * drain must not follow; the close event clears it.
   */
  suspectFalse: string | undefined;
  /** net only: a drain the sends do not explain, forgiven if the close event follows at once. */
  dubiousDrain: { what: string; batch: number } | undefined;
  /** Sends that found the queue over the high-water mark (a sendMany counts once per recipient). */
  overHighSends = 0;
  drains = 0;
  closeReason: TransportCloseReason | undefined;
  closeError: TransportError | undefined;
  connectError: TransportError | undefined;
  receivedAtClose = 0;
  peerAction: 'end' | 'reset' | undefined;
  sentAtPeerAction = 0;
  peerWrittenAtAction = 0;
  peerGotEnd = false;
  receivedByPeerAtEnd = 0;
  peerClosed = false;
  peerError: string | undefined;
  /** Reasons the peer is not reading (a test's pause, the echo's own backpressure). */
  readonly pausedBy = new Set<string>();
  /** A dialled connection's echo has stopped (its peer ended). */
  echoStopped = false;
  endingDone = false;
  stallResumeScheduled = false;
  launched = false;
  retired = false;

  constructor(
    readonly index: number,
    readonly plan: ConnPlan,
    readonly rng: Rng,
    readonly out: PatternStream,
    readonly peerOut: PatternStream,
    streams?: { toPeer: ExpectedStream; toBackend: ExpectedStream },
  ) {
    this.toPeer = streams?.toPeer ?? new ExpectedStream(`conn #${index} backend->peer`);
    this.toBackend = streams?.toBackend ?? new ExpectedStream(`conn #${index} peer->backend`);
    this.backendRemaining = plan.backendBytes;
    this.peerRemaining = plan.origin === 'accepted' ? plan.peerBytes : 0;
  }

  get open(): boolean {
    return this.track?.state === 'open' && this.localClose === undefined && !this.backpressureExpected;
  }

  describe(): string {
    return (
      `conn #${this.index} (${this.plan.origin}, ${this.plan.mode}, ending ${this.plan.ending}, id ${this.connId}, ` +
      `state ${this.track?.state ?? 'unbound'}, sent ${this.sent}/${this.plan.backendBytes}, peer got ${this.toPeer.received}, ` +
      `peer wrote ${this.peerWritten}, backend got ${this.toBackend.received}, local ${this.localClose ?? '-'}, ` +
      `peer ${this.peerAction ?? '-'}, reason ${this.closeReason ?? '-'}${this.closeError ? ` ${this.closeError.code}` : ''}, ` +
      `peer end ${this.peerGotEnd} closed ${this.peerClosed} error ${this.peerError ?? '-'}, awaiting drain ${this.awaitingDrain}` +
      `${this.suspectFalse ? `, after ${this.suspectFalse}` : ''})`
    );
  }

  setPaused(reason: string, paused: boolean): void {
    if (paused) this.pausedBy.add(reason);
    else this.pausedBy.delete(reason);
    if (this.socket === undefined || this.socket.destroyed) return;
    if (this.pausedBy.size > 0) this.socket.pause();
    else this.socket.resume();
  }
}
