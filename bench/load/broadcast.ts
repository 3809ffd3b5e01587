import type * as net from 'node:net';
import { exitWithParent, report } from '../ipc';
import { CpuMeter } from '../stats';
import { encodeFrame, FrameScanner, HEADER_BYTES, PACKET_ID_BYTES, PacketIds, writeHeader } from '../wire';
import { connectAll, loadFlags, sleep } from './common';

/**
 * Load generator for the `broadcast` workload: RECEIVERS connections that
 * only listen, and one sender whose frames the server broadcasts to every
 * connection (the sender included). The sender's own copy of a frame is its
 * credit: frame k is sent only once the copy of frame k - WINDOW is back, so
 * the server is kept busy without any queue growing without bound.
 *
 * Every frame carries a sequence number, and every receiver checks that it
 * sees 0, 1, 2, ... with nothing missing, repeated or reordered, up to the
 * last frame sent.
 *
 *   node -r ts-node/register/transpile-only bench/load/broadcast.ts --port N
 */
const RECEIVERS = 500;
const PAYLOAD_BYTES = 64;
// The window decides whether the figure measures the server or the round trip.
// With 64 the sender's whole window came back in one read, and server and load
// generator took turns idling; with 256 the server stays busy. 256 x 70 bytes
// (18 KB) queued per receiver is still well under ringport's 64 KiB high-water mark.
const WINDOW = 256;
const FRAME_BYTES = HEADER_BYTES + PAYLOAD_BYTES;
const PEEK_BYTES = PACKET_ID_BYTES + 4;
const READY_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 5_000;

const flags = loadFlags(process.argv.slice(2));
let running = true;
let sending = false;
let delivered = 0;
let unexpectedFrames = 0;
let unexpectedCloses = 0;

class Receiver {
  /** The sequence number this receiver should see next. */
  expected = 0;
  /** Frames missing (a jump forward) or out of place (a repeat or a step back). */
  gaps = 0;
  private readonly scanner = new FrameScanner(PEEK_BYTES, (buf, bodyStart) => {
    if (buf.readUInt16LE(bodyStart) !== PacketIds.BROADCAST) {
      unexpectedFrames++;
      return;
    }
    const seq = buf.readUInt32LE(bodyStart + PACKET_ID_BYTES);
    if (seq !== this.expected) this.gaps += seq > this.expected ? seq - this.expected : 1;
    this.expected = seq + 1;
    delivered++;
  });

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.scanner.scan(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (running) unexpectedCloses++;
    });
  }
}

/**
 * The one sending connection. Frame k lives in slot k % WINDOW of one buffer
 * whose headers are written once; the slot is rewritten only after frame
 * k - WINDOW came back, which proves its bytes have left this process.
 */
class Sender {
  /** Sequence number of the next frame to send. */
  nextSeq = 0;
  /** Frames whose own copy has come back: the credit. */
  acked = 0;
  ownGaps = 0;
  private readonly frames = Buffer.alloc(WINDOW * FRAME_BYTES);
  private countWaiter: ((count: number) => void) | undefined;
  private readonly scanner = new FrameScanner(PEEK_BYTES, (buf, bodyStart) => {
    const packetId = buf.readUInt16LE(bodyStart);
    const value = buf.readUInt32LE(bodyStart + PACKET_ID_BYTES);
    if (packetId === PacketIds.BROADCAST) {
      if (value !== this.acked) this.ownGaps++;
      this.acked = value + 1;
    } else if (packetId === PacketIds.COUNT && this.countWaiter !== undefined) {
      this.countWaiter(value);
    } else {
      unexpectedFrames++;
    }
  });

  constructor(private readonly socket: net.Socket) {
    for (let slot = 0; slot < WINDOW; slot++) writeHeader(this.frames, slot * FRAME_BYTES, PacketIds.BROADCAST, PAYLOAD_BYTES);
    socket.on('data', (chunk: Buffer) => {
      this.scanner.scan(chunk);
      if (sending) this.sendCredit();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (running) unexpectedCloses++;
    });
  }

  /** Asks the server how many connections it has; -1 if no answer comes within a second. */
  count(): Promise<number> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(-1), 1000);
      this.countWaiter = (count) => {
        clearTimeout(timer);
        resolve(count);
      };
      this.socket.write(encodeFrame(PacketIds.COUNT, Buffer.alloc(0)));
    });
  }

  /** Sends every frame the window allows, in one write (two when the slots wrap). */
  sendCredit(): void {
    const n = this.acked + WINDOW - this.nextSeq;
    if (n <= 0) return;
    const first = this.nextSeq % WINDOW;
    for (let i = 0; i < n; i++) {
      this.frames.writeUInt32LE(this.nextSeq + i, ((first + i) % WINDOW) * FRAME_BYTES + HEADER_BYTES);
    }
    const untilWrap = Math.min(n, WINDOW - first);
    this.socket.write(this.frames.subarray(first * FRAME_BYTES, (first + untilWrap) * FRAME_BYTES));
    if (untilWrap < n) this.socket.write(this.frames.subarray(0, (n - untilWrap) * FRAME_BYTES));
    this.nextSeq += n;
  }
}

/** Waits until `done()` holds, checking every 20 ms; false if `timeoutMs` passes first. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

async function main(): Promise<void> {
  exitWithParent();
  const receiverSockets = await connectAll(flags.port, RECEIVERS);
  const receivers = receiverSockets.map((socket) => new Receiver(socket));
  const [senderSocket] = await connectAll(flags.port, 1);
  const sender = new Sender(senderSocket);
  // The server must know every receiver before frame 0, or a late one would miss the first frames.
  if (!(await until(async () => (await sender.count()) === RECEIVERS + 1, READY_TIMEOUT_MS))) {
    throw new Error(`the server did not report ${RECEIVERS + 1} connections within ${READY_TIMEOUT_MS} ms`);
  }

  sending = true;
  sender.sendCredit();
  await sleep(flags.warmupMs);
  const cpu = new CpuMeter();
  const startDelivered = delivered;
  const startSeq = sender.nextSeq;
  const startNs = process.hrtime.bigint();
  await report({ type: 'window-start' });

  await sleep(flags.durationMs);
  const windowMs = Number(process.hrtime.bigint() - startNs) / 1e6;
  const deliveries = delivered - startDelivered;
  const broadcasts = sender.nextSeq - startSeq;
  const loadCpuPercent = cpu.percentOfOneCore();
  sending = false;
  await report({ type: 'window-end' });

  // Let every frame already sent arrive everywhere, then check nothing is missing.
  const lastSeq = sender.nextSeq;
  await until(() => receivers.every((r) => r.expected >= lastSeq) && sender.acked >= lastSeq, SETTLE_TIMEOUT_MS);
  running = false;
  for (const socket of [...receiverSockets, senderSocket]) socket.destroy();

  let gaps = 0;
  let shortReceivers = 0;
  for (const receiver of receivers) {
    gaps += receiver.gaps + Math.max(0, lastSeq - receiver.expected);
    if (receiver.expected < lastSeq) shortReceivers++;
  }
  const errors: string[] = [];
  if (gaps > 0) {
    errors.push(`GAPS: ${gaps} frames missing or out of order over ${RECEIVERS} receivers (${shortReceivers} receivers short at the end)`);
  }
  if (sender.ownGaps > 0) errors.push(`the sender's own copies had ${sender.ownGaps} gaps`);
  if (unexpectedFrames > 0) errors.push(`${unexpectedFrames} unexpected frames`);
  if (unexpectedCloses > 0) errors.push(`${unexpectedCloses} connections closed by the server during the run`);
  if (deliveries === 0) errors.push('nothing was delivered in the measured window');
  await report({
    type: 'result',
    result: {
      rate: (deliveries / windowMs) * 1000,
      windowMs,
      loadCpuPercent,
      metrics: { deliveries, broadcastsPerSec: (broadcasts / windowMs) * 1000, framesChecked: lastSeq, gaps },
      errors,
    },
  });
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
