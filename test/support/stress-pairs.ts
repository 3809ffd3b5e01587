import type { Rng } from './stress-rng';
import { Pattern, ExpectedStream } from './stress-streams';
import type { StressBackend } from './stress-backend';
import { Conn, type ConnPlan } from './stress-conn';
import { HEADER_BYTES, dialHeader } from './stress-peers';

/** How a pair ends: `clean` streams everything, then one side closes gracefully. */
export type PairEnding = 'clean' | 'a-graceful' | 'b-graceful' | 'a-abort' | 'b-abort' | 'both-graceful';

export interface PairPlan {
  /** Bytes the dialling end sends. */
  aBytes: number;
  /** Bytes the accepting end sends. */
  bBytes: number;
  ending: PairEnding;
  endAt: number;
}

export interface PairOptions {
  plans: PairPlan[];
  concurrency: number;
  maxChunk: number;
  sendManyChance: number;
  deadlineMs: number;
}

interface Pair {
  readonly index: number;
  readonly plan: PairPlan;
  /** The dialling end, on the client backend. */
  readonly a: Conn;
  /** The accepting end, on the server backend. */
  readonly b: Conn;
  launched: boolean;
  retired: boolean;
  endingDone: boolean;
}

/**
 * Connections whose both ends are backends: a client backend dials a server
 * backend (for native backends, both on one reactor), each end streams to
 * the other, and one end closes. Each end's outgoing stream is the other's
 * expected incoming one, so every byte is checked where it lands.
 */
export class PairRun {
  readonly pairs: Pair[];
  private port = 0;
  private active = 0;
  private nextToLaunch = 0;
  private retired = 0;
  private pumpScheduled = false;
  private finished = false;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    readonly client: StressBackend,
    readonly server: StressBackend,
    readonly rng: Rng,
    readonly options: PairOptions,
  ) {
    const pattern = new Pattern(rng.fork('pattern'), options.maxChunk);
    this.pairs = options.plans.map((plan, index) => {
      const pairRng = rng.fork(`pair ${index}`);
      const aToB = new ExpectedStream(`pair #${index} a->b`);
      const bToA = new ExpectedStream(`pair #${index} b->a`);
      const base: Omit<ConnPlan, 'origin' | 'backendBytes'> = { peerBytes: 0, ending: 'clean', endAt: 0, mode: 'paced' };
      const a = new Conn(index, { ...base, origin: 'dialled', backendBytes: plan.aBytes }, pairRng, pattern.stream(pairRng), pattern.stream(pairRng), {
        toPeer: aToB,
        toBackend: bToA,
      });
      const b = new Conn(index, { ...base, origin: 'accepted', backendBytes: plan.bBytes }, pairRng, pattern.stream(pairRng), pattern.stream(pairRng), {
        toPeer: bToA,
        toBackend: aToB,
      });
      return { index, plan, a, b, launched: false, retired: false, endingDone: false };
    });
  }

  async prepare(): Promise<void> {
    const listenerId = await this.server.listen();
    this.port = this.server.listeners.get(listenerId)!;
  }

  async run(): Promise<void> {
    this.server.claim = (head) => {
      if (head.readUInt32BE(4) >= this.pairs.length) return undefined;
      return this.pairs[head.readUInt32BE(4)].b;
    };
    const hooks = {
      open: (conn: Conn) => {
        if (conn.plan.origin === 'dialled') this.client.send(conn, dialHeader(conn.index));
        this.schedulePump();
      },
      data: () => this.schedulePump(),
      drain: () => this.schedulePump(),
      close: (conn: Conn) => {
        this.maybeRetire(this.pairs[conn.index]);
        this.schedulePump();
      },
      failed: (conn: Conn) => {
        this.client.report.fail(`dial failed with ${conn.connectError?.code}: ${conn.describe()}`);
        this.maybeRetire(this.pairs[conn.index]);
      },
    };
    this.client.hooks = hooks;
    this.server.hooks = hooks;
    const deadline = setTimeout(() => this.giveUp(), this.options.deadlineMs);
    this.launchMore();
    await this.done;
    clearTimeout(deadline);
    this.finished = true;
  }

  private giveUp(): void {
    const stuck = this.pairs.filter((p) => p.launched && !p.retired);
    this.client.report.fail(`deadline of ${this.options.deadlineMs} ms passed with ${stuck.length} pair(s) open`);
    for (const pair of stuck.slice(0, 6)) this.client.report.fail(`still open: ${pair.plan.ending}: a ${pair.a.describe()}; b ${pair.b.describe()}`);
    this.resolveDone();
  }

  private launchMore(): void {
    while (this.active < this.options.concurrency && this.nextToLaunch < this.pairs.length && !this.finished) {
      const pair = this.pairs[this.nextToLaunch++];
      pair.launched = true;
      this.active++;
      this.client.dial(pair.a, this.port);
    }
  }

  private maybeRetire(pair: Pair): void {
    if (pair.retired) return;
    const aDone = pair.a.track?.state === 'closed' || pair.a.track?.state === 'failed';
    const bDone = pair.b.track?.state === 'closed' || (pair.a.track?.state === 'failed' && pair.b.track === undefined);
    if (!aDone || !bDone) return;
    pair.retired = true;
    this.active--;
    this.retired++;
    this.check(pair);
    if (this.retired === this.pairs.length) this.resolveDone();
    else this.launchMore();
  }

  private check(pair: Pair): void {
    const report = this.client.report;
    const fail = (what: string) => report.fail(`pair #${pair.index} (${pair.plan.ending}): ${what}; a ${pair.a.describe()}; b ${pair.b.describe()}`);
    if (pair.a.toPeer.failure !== undefined) fail(pair.a.toPeer.failure);
    if (pair.b.toPeer.failure !== undefined) fail(pair.b.toPeer.failure);
    if (pair.a.track?.state === 'failed') return fail('the dial failed');
    for (const [closer, other] of [
      [pair.a, pair.b],
      [pair.b, pair.a],
    ] as const) {
      if (closer.localClose === undefined) continue;
      if (closer.closeReason !== 'local') fail(`the end that closed reports '${closer.closeReason}'`);
      if (other.localClose !== undefined) continue;
      if (closer.localClose === 'graceful') {
        if (other.closeReason !== 'peer') fail(`the other end of a graceful close reports '${other.closeReason}'`);
        if (other.receivedAtClose !== closer.sentAtLocalClose) {
          fail(`the other end got ${other.receivedAtClose} of the ${closer.sentAtLocalClose} bytes queued before the graceful close`);
        }
      } else {
        const code = other.closeError?.code;
        const resetSeen = other.closeReason === 'error' && (code === 'ECONNRESET' || code === 'EPIPE');
        // net may read a reset that arrives with unread bytes as EOF (libuv); see stress-run.ts.
        const libuvEof = this.server.kind === 'net' && other.closeReason === 'peer';
        if (!resetSeen && !libuvEof) fail(`the other end of an abort reports '${other.closeReason}' (${code})`);
      }
    }
    if (pair.a.localClose === undefined && pair.b.localClose === undefined) fail('closed though neither end closed it');
    if (pair.plan.ending === 'clean' && (!pair.a.toPeer.complete || !pair.b.toPeer.complete)) fail('a clean pair lost bytes');
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.finished) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    if (this.finished) return;
    const live = this.pairs.slice(0, this.nextToLaunch).filter((p) => p.launched && !p.retired);
    for (const pair of live) this.advanceEnding(pair);
    let sentAny = false;
    const readyB = live.map((p) => p.b).filter((c) => this.canSend(c));
    if (readyB.length >= 2 && this.rng.chance(this.options.sendManyChance)) {
      const subset = this.rng.shuffle(readyB).slice(0, this.rng.int(2, readyB.length));
      const bytes = this.rng.bytes(this.rng.logInt(1, this.options.maxChunk));
      this.server.sendMany(subset, bytes);
      for (const conn of subset) conn.backendRemaining = Math.max(0, conn.backendRemaining - bytes.length);
      sentAny = true;
    }
    for (const pair of this.rng.shuffle(live)) {
      for (const [conn, sb] of [
        [pair.a, this.client],
        [pair.b, this.server],
      ] as const) {
        for (let sends = this.rng.int(1, 3); sends > 0 && this.canSend(conn); sends--) {
          const n = Math.min(this.rng.logInt(1, this.options.maxChunk), conn.backendRemaining);
          sb.send(conn, conn.out.take(n));
          conn.backendRemaining -= n;
          sentAny = true;
        }
      }
    }
    if (sentAny) this.schedulePump();
    else if (live.length > 0) {
      this.pumpScheduled = true;
      setTimeout(this.pump, 5);
    }
  };

  private canSend(conn: Conn): boolean {
    if (!conn.open || conn.awaitingDrain || conn.backendRemaining <= 0) return false;
    return conn.plan.origin === 'accepted' || conn.sent >= HEADER_BYTES;
  }

  private advanceEnding(pair: Pair): void {
    const { a, b, plan } = pair;
    if (pair.endingDone || !a.open || !b.open) return;
    const complete =
      a.backendRemaining === 0 && b.backendRemaining === 0 && a.toPeer.complete && b.toPeer.complete;
    if (plan.ending === 'clean') {
      if (!complete) return;
      pair.endingDone = true;
      if (this.rng.chance(0.5)) this.client.close(a, 'graceful');
      else this.server.close(b, 'graceful');
      return;
    }
    if (!complete && a.sent + b.sent < plan.endAt) return;
    pair.endingDone = true;
    switch (plan.ending) {
      case 'a-graceful':
        this.client.close(a, 'graceful');
        break;
      case 'b-graceful':
        this.server.close(b, 'graceful');
        break;
      case 'a-abort':
        this.client.close(a, 'abort');
        break;
      case 'b-abort':
        this.server.close(b, 'abort');
        break;
      case 'both-graceful':
        this.client.close(a, 'graceful');
        this.server.close(b, 'graceful');
        break;
    }
  }
}
