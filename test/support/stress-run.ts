import * as net from 'node:net';
import type { StressBackend } from './stress-backend';
import { Conn, ignoresBackpressure, type ConnPlan } from './stress-conn';
import { EchoServer, dialHeader, openPeer } from './stress-peers';
import type { Rng } from './stress-rng';
import { Pattern } from './stress-streams';
import { closedPort } from './stress-wait';

export interface RunOptions {
  plans: ConnPlan[];
  /** Connections open at once; the next starts when one has fully closed. */
  concurrency: number;
  /** Largest single send, from either side. */
  maxChunk: number;
  /** Chance per pump turn of one sendMany to a random subset of the ready connections. */
  sendManyChance: number;
  /** Bytes the backend sends per pump turn; some turns send 6 MiB so one tick overflows the native send arena. */
  pumpBytes: number;
  /** Give up (and report every connection still open) after this long. */
  deadlineMs: number;
  /** Close the second listener once this fraction of the connections have closed. */
  closeListenerAfter?: number;
  /** The first connection keeps streaming until every other one has closed. */
  longLived?: boolean;
  /**
   * Rarer shapes of traffic, as chances per connection and pump turn: a burst
   * of thousands of 1-16 byte sends (overflowing the native command buffer in
   * one tick), an empty send, and a jumbo send of 4-9 MiB (bigger than the
   * native send arena). Jumbo sends need maxQueueBytes above 10 MiB.
   */
  tinyBurstChance?: number;
  emptyChance?: number;
  jumboChance?: number;
}

const BIG_TURN_BYTES = 6 * 1024 * 1024;
const REFILL_BYTES = 1024 * 1024;
const MAX_BROADCAST_BYTES = 64 * 1024;

/**
 * Drives a set of connections over one StressBackend: half accepted from
 * raw node:net peers, half dialled to an echo server, each streaming the
 * bytes of its plan in random-size sends (and sometimes broadcasts), then
 * ending as planned. Every connection is checked when it has closed on both
 * ends; the run resolves when all have, or at the deadline.
 */
export class StreamRun {
  readonly conns: Conn[];
  readonly echo: EchoServer;
  readonly listenerIds: number[] = [];
  closedListener: number | undefined;
  retired = 0;
  private active = 0;
  private nextToLaunch = 0;
  private pumpScheduled = false;
  private finished = false;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private listenerClosing = false;
  private refusedPort = 0;

  constructor(
    readonly sb: StressBackend,
    readonly rng: Rng,
    readonly options: RunOptions,
  ) {
    const pattern = new Pattern(rng.fork('pattern'), options.maxChunk);
    this.conns = options.plans.map((plan, i) => {
      const connRng = rng.fork(`conn ${i}`);
      return new Conn(i, plan, connRng, pattern.stream(connRng), pattern.stream(connRng));
    });
    this.echo = new EchoServer(
      (index) => (this.conns[index]?.plan.origin === 'dialled' ? this.conns[index] : undefined),
      sb.report,
      (conn) => this.maybeRetire(conn),
      () => this.schedulePump(),
    );
  }

  /** Opens listeners and the echo server; call before `run`. */
  async prepare(): Promise<void> {
    const accepted = this.conns.some((c) => c.plan.origin === 'accepted');
    if (accepted) {
      this.listenerIds.push(await this.sb.listen());
      this.listenerIds.push(await this.sb.listen());
    }
    if (this.conns.some((c) => c.plan.origin === 'dialled')) await this.echo.start();
    if (this.conns.some((c) => c.plan.origin === 'refused')) this.refusedPort = await closedPort();
  }

  /** Runs every connection to its end; resolves when all have closed or at the deadline. */
  async run(): Promise<void> {
    this.sb.hooks = {
      open: (conn) => this.onOpen(conn),
      data: () => this.schedulePump(),
      drain: () => this.schedulePump(),
      close: (conn) => this.onClose(conn),
      failed: (conn) => {
        if (conn.plan.origin !== 'refused') this.sb.report.fail(`dial failed with ${conn.connectError?.code}: ${conn.describe()}`);
        this.maybeRetire(conn);
      },
    };
    const deadline = setTimeout(() => this.giveUp(), this.options.deadlineMs);
    this.launchMore();
    if (this.conns.length === 0) this.resolveDone();
    await this.done;
    clearTimeout(deadline);
    this.finished = true;
  }

  /** Closes everything the run opened outside the backend. */
  async dispose(): Promise<void> {
    this.finished = true;
    for (const conn of this.conns) conn.socket?.destroy();
    await this.echo.stop().catch(() => undefined);
  }

  private giveUp(): void {
    const stuck = this.conns.filter((c) => c.launched && !c.retired);
    this.sb.report.fail(
      `deadline of ${this.options.deadlineMs} ms passed with ${stuck.length} connection(s) open and ` +
        `${this.conns.length - this.nextToLaunch} not started`,
    );
    for (const conn of stuck.slice(0, 8)) this.sb.report.fail(`still open: ${conn.describe()}`);
    this.resolveDone();
  }

  private launchMore(): void {
    while (this.active < this.options.concurrency && this.nextToLaunch < this.conns.length && !this.finished) {
      const conn = this.conns[this.nextToLaunch++];
      this.launch(conn);
    }
  }

  private launch(conn: Conn): void {
    conn.launched = true;
    this.active++;
    if (conn.plan.mode !== 'paced') conn.setPaused('test', true);
    if (conn.plan.origin !== 'accepted') {
      this.sb.dial(conn, conn.plan.origin === 'dialled' ? this.echo.port : this.refusedPort);
      if (conn.plan.closeAtDial !== undefined) this.sb.close(conn, conn.plan.closeAtDial);
      return;
    }
    const useSecond = conn.index % 2 === 1 && !this.listenerClosing;
    const listenerId = this.listenerIds[useSecond ? 1 : 0];
    const port = this.sb.listeners.get(listenerId)!;
    conn.listenerId = listenerId;
    openPeer(
      this.sb,
      conn,
      port,
      () => this.peerPump(conn),
      () => this.maybeRetire(conn),
    );
  }

  private onOpen(conn: Conn): void {
    if (conn.plan.origin === 'dialled') this.sb.send(conn, dialHeader(conn.index));
    this.schedulePump();
  }

  private onClose(conn: Conn): void {
    // A paused peer would never notice the reset: let it read what it has and see the end.
    conn.setPaused('test', false);
    this.maybeRetire(conn);
    this.schedulePump();
  }

  private maybeRetire(conn: Conn): void {
    if (conn.retired || !conn.launched) return;
    const state = conn.track?.state;
    if (state !== 'closed' && state !== 'failed') return;
    if (conn.socket !== undefined && !conn.peerClosed) return;
    conn.retired = true;
    this.active--;
    this.retired++;
    this.check(conn);
    if (this.retired === this.conns.length) {
      this.resolveDone();
      return;
    }
    this.launchMore();
  }

  /** What the contract says about a connection that has closed on both ends. */
  private check(conn: Conn): void {
    const fail = (what: string) => this.sb.report.fail(`${what}: ${conn.describe()}`);
    if (conn.toPeer.failure !== undefined) fail(conn.toPeer.failure);
    if (conn.toBackend.failure !== undefined) fail(conn.toBackend.failure);
    if (conn.plan.origin === 'refused') {
      // Refused, or closed locally first: either way one outcome and nothing else.
      if (conn.track?.state === 'failed') {
        if (conn.connectError?.code !== 'ECONNREFUSED') fail(`a refused dial reported ${conn.connectError?.code}`);
      } else if (conn.localClose === undefined || conn.closeReason !== 'local') {
        fail(`a refused dial ended with a close (${conn.closeReason}) it did not ask for`);
      }
      return;
    }
    if (conn.track?.state === 'failed') return;
    if (conn.track!.closes !== 1) fail(`${conn.track!.closes} close events`);
    const reason = conn.closeReason;
    if (conn.localClose !== undefined) {
      if (reason !== 'local') fail(`closed locally (${conn.localClose}) but the close reason is '${reason}'`);
    } else if (conn.backpressureExpected) {
      if (reason !== 'backpressure') fail(`a send passed maxQueueBytes but the close reason is '${reason}'`);
    } else if (conn.peerAction === 'end') {
      if (reason !== 'peer') fail(`the peer ended but the close reason is '${reason}'`);
    } else if (conn.peerAction === 'reset') {
      const code = conn.closeError?.code;
      // On net a reset that arrives together with unread bytes is reported as
      // 'peer': libuv turns POLLHUP after a short read into EOF and never reads
      // the ECONNRESET. A known difference of the reference backend, tolerated here.
      const libuvEof = this.sb.kind === 'net' && reason === 'peer';
      if (!libuvEof && (reason !== 'error' || (code !== 'ECONNRESET' && code !== 'EPIPE'))) {
        fail(`the peer reset but the close is '${reason}' with code ${code}`);
      }
    } else {
      fail(`closed with reason '${reason}' (${conn.closeError?.code ?? 'no error'}) though nobody closed it`);
    }
    if (conn.localClose === 'graceful' && !conn.abortedAfterGraceful && conn.peerAction === undefined && conn.socket !== undefined) {
      // Graceful: every byte queued before close() reaches the peer, then the FIN.
      if (!conn.peerGotEnd) fail('graceful close: the peer never got the FIN');
      else if (conn.receivedByPeerAtEnd !== conn.sentAtLocalClose) {
        fail(`graceful close: the peer got ${conn.receivedByPeerAtEnd} of the ${conn.sentAtLocalClose} bytes queued before close()`);
      }
      if (conn.peerError !== undefined) fail(`graceful close: the peer saw ${conn.peerError}`);
    }
    if (conn.peerAction === 'end' && conn.localClose === undefined && !conn.backpressureExpected) {
      // The peer's FIN comes after its bytes: all of them are delivered before the close event.
      if (conn.receivedAtClose !== conn.peerWritten) {
        fail(`peer end: the backend got ${conn.receivedAtClose} of the ${conn.peerWritten} bytes the peer wrote before its FIN`);
      }
      if (conn.toPeer.received < conn.sentAtPeerAction) {
        fail(`peer end: the peer got ${conn.toPeer.received} bytes, fewer than the ${conn.sentAtPeerAction} sent before its end()`);
      }
      if (!conn.peerGotEnd) fail('peer end: the backend never answered with its FIN');
      if (conn.peerError !== undefined) fail(`peer end: the peer saw ${conn.peerError}`);
    }
    if (conn.plan.ending === 'clean' && conn.plan.mode !== 'flood' && conn.localClose === 'graceful') {
      if (!conn.toPeer.complete || !conn.toBackend.complete) fail('a clean run did not deliver every byte');
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.finished) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    if (this.finished) return;
    const live = this.conns.slice(0, this.nextToLaunch).filter((c) => c.launched && !c.retired);
    if (this.options.longLived) this.refillLongLived();
    for (const conn of live) this.advanceEnding(conn);
    this.maybeCloseListener();

    const rng = this.rng;
    let budget = rng.chance(0.1) ? BIG_TURN_BYTES : this.options.pumpBytes;
    let sentAny = false;
    const ready = rng.shuffle(live.filter((c) => this.canSend(c)));
    const pacedReady = ready.filter((c) => !ignoresBackpressure(c.plan.mode) && c.backendRemaining > 0);
    if (pacedReady.length >= 2 && rng.chance(this.options.sendManyChance)) {
      const subset = pacedReady.slice(0, rng.int(2, pacedReady.length));
      // No larger than one send, so a paced connection never passes maxQueueBytes by a broadcast.
      const bytes = rng.bytes(rng.logInt(1, Math.min(MAX_BROADCAST_BYTES, this.options.maxChunk)));
      this.sb.sendMany(subset, bytes);
      for (const conn of subset) conn.backendRemaining = Math.max(0, conn.backendRemaining - bytes.length);
      budget -= bytes.length * subset.length;
      sentAny = true;
    }
    for (const conn of ready) {
      if (this.options.emptyChance !== undefined && rng.chance(this.options.emptyChance)) {
        this.sb.send(conn, Buffer.alloc(0));
        if (rng.chance(0.5)) this.sb.sendMany([conn], Buffer.alloc(0));
      }
      if (!ignoresBackpressure(conn.plan.mode) && this.options.tinyBurstChance !== undefined && rng.chance(this.options.tinyBurstChance)) {
        // Thousands of sends in one tick: more command records than one native flush holds.
        for (let k = rng.int(1000, 20_000); k > 0 && this.canSend(conn); k--) {
          const n = Math.min(rng.int(1, 16), conn.backendRemaining);
          this.sb.send(conn, conn.out.take(n));
          conn.backendRemaining -= n;
          budget -= n;
        }
        sentAny = true;
      }
      if (!ignoresBackpressure(conn.plan.mode) && this.options.jumboChance !== undefined && rng.chance(this.options.jumboChance) && this.canSend(conn)) {
        // One buffer larger than the native send arena.
        const n = Math.min(rng.int(4 * 1024 * 1024, 9 * 1024 * 1024), conn.backendRemaining);
        const parts: Buffer[] = [];
        for (let left = n; left > 0; left -= this.options.maxChunk) parts.push(conn.out.take(Math.min(left, this.options.maxChunk)));
        this.sb.send(conn, Buffer.concat(parts));
        conn.backendRemaining -= n;
        budget -= n;
        sentAny = true;
      }
      for (let sends = rng.int(1, 4); sends > 0 && budget > 0 && this.canSend(conn); sends--) {
        const flood = conn.plan.mode === 'flood';
        const n = flood
          ? rng.logInt(1, this.options.maxChunk)
          : Math.min(rng.logInt(1, this.options.maxChunk), conn.backendRemaining);
        this.sb.send(conn, conn.out.take(n));
        if (!flood) conn.backendRemaining -= n;
        budget -= n;
        sentAny = true;
      }
      // A stalled peer resumes once the backend has had to wait for it, or has nothing left to send.
      if (conn.plan.mode === 'stall' && (conn.awaitingDrain || conn.backendRemaining === 0) && !conn.stallResumeScheduled) {
        conn.stallResumeScheduled = true;
        setTimeout(() => conn.setPaused('test', false), rng.int(20, 200));
      }
    }
    if (sentAny) this.schedulePump();
    else if (live.length > 0) {
      // Nothing to send now: look again shortly (endings wait on bytes in flight).
      this.pumpScheduled = true;
      setTimeout(this.pump, 5);
    }
  };

  private refillLongLived(): void {
    const long = this.conns[0];
    if (long.retired || long.track?.state !== 'open' || this.retired >= this.conns.length - 1) return;
    if (long.backendRemaining < REFILL_BYTES) long.backendRemaining += REFILL_BYTES;
    if (long.plan.origin === 'accepted' && long.peerRemaining < REFILL_BYTES) {
      const idle = long.peerRemaining === 0;
      long.peerRemaining += REFILL_BYTES;
      if (idle) this.peerPump(long);
    }
  }

  private canSend(conn: Conn): boolean {
    if (!conn.open || conn.endingDone) return false;
    if (conn.plan.origin === 'dialled' && conn.sent === 0) return false;
    if (conn.plan.mode === 'flood') return true;
    return !conn.awaitingDrain && conn.backendRemaining > 0;
  }

  private dataComplete(conn: Conn): boolean {
    if (conn.backendRemaining > 0 || conn.peerRemaining > 0) return false;
    if (!conn.toPeer.complete || !conn.toBackend.complete) return false;
    return conn.plan.origin === 'accepted' || conn.toBackend.expected === conn.toPeer.expected;
  }

  private advanceEnding(conn: Conn): void {
    if (conn.endingDone || conn.track?.state !== 'open' || conn.socket === undefined || !conn.open) return;
    if (conn.plan.origin === 'accepted' && conn.socket.connecting) return;
    const { plan } = conn;
    if (plan.mode === 'flood') return;
    const complete = this.dataComplete(conn);
    if (plan.ending === 'clean') {
      if (!complete) return;
      conn.endingDone = true;
      if (conn.rng.chance(0.6)) this.sb.close(conn, 'graceful');
      else this.peerEnd(conn);
      return;
    }
    if (!complete && conn.sent + conn.peerWritten < plan.endAt) return;
    conn.endingDone = true;
    switch (plan.ending) {
      case 'local-graceful':
        this.sb.close(conn, 'graceful');
        break;
      case 'local-abort':
        this.sb.close(conn, 'abort');
        break;
      case 'peer-end':
        this.peerEnd(conn);
        break;
      case 'peer-reset':
        conn.peerAction = 'reset';
        conn.sentAtPeerAction = conn.sent;
        conn.peerWrittenAtAction = conn.peerWritten;
        conn.socket.resetAndDestroy();
        break;
    }
  }

  private peerEnd(conn: Conn): void {
    conn.peerAction = 'end';
    conn.sentAtPeerAction = conn.sent;
    conn.peerWrittenAtAction = conn.peerWritten;
    conn.echoStopped = true;
    conn.socket!.end();
  }

  private peerPump(conn: Conn): void {
    const socket = conn.socket!;
    let writes = 0;
    while (
      conn.peerRemaining > 0 &&
      conn.peerAction === undefined &&
      !conn.peerGotEnd &&
      !socket.destroyed &&
      !socket.writableEnded
    ) {
      const n = Math.min(conn.rng.logInt(1, this.options.maxChunk), conn.peerRemaining);
      const bytes = conn.peerOut.take(n);
      conn.toBackend.push(bytes);
      conn.peerWritten += n;
      conn.peerRemaining -= n;
      if (!socket.write(bytes)) {
        socket.once('drain', () => this.peerPump(conn));
        return;
      }
      if (++writes >= 4) {
        setImmediate(() => this.peerPump(conn));
        return;
      }
    }
    this.schedulePump();
  }

  private maybeCloseListener(): void {
    const after = this.options.closeListenerAfter;
    if (after === undefined || this.closedListener !== undefined || this.listenerIds.length < 2) return;
    if (this.retired < after * this.conns.length) return;
    this.listenerClosing = true;
    const id = this.listenerIds[1];
    // A peer the kernel has accepted but the backend has not reported yet would be dropped with the listener.
    const waiting = this.conns.some(
      (c) => c.launched && !c.retired && c.listenerId === id && c.track === undefined,
    );
    if (waiting) return;
    this.closedListener = id;
    const before = this.sb.backend.stats().listeners;
    this.sb.closeListener(id);
    const after2 = this.sb.backend.stats().listeners;
    if (after2 !== before - 1) this.sb.report.fail(`closeListener: stats().listeners went from ${before} to ${after2}`);
    void this.probeRefused(this.sb.listeners.get(id)!);
  }

  /** A dial to a closed listener must be refused, not accepted and left hanging. */
  private async probeRefused(port: number): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const outcome = await new Promise<string>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      if (outcome !== 'ECONNREFUSED') {
        this.sb.report.fail(`a dial to listener port ${port} after closeListener gave ${outcome}, not ECONNREFUSED`);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
