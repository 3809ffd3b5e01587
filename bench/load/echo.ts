import type * as net from 'node:net';
import { exitWithParent, report } from '../ipc';
import { CpuMeter, LatencyHistogram } from '../stats';
import { FrameScanner, HEADER_BYTES, PACKET_ID_BYTES, PacketIds, writeHeader } from '../wire';
import { connectAll, loadFlags, sleep } from './common';

/**
 * Load generator for the `echo` workload: CONNECTIONS connections, each
 * keeping IN_FLIGHT frames at the server (send IN_FLIGHT, then one more for
 * each echo). Each payload starts with its send time (performance.now(), a
 * double), so the echo carries its own round-trip latency.
 *
 *   node -r ts-node/register/transpile-only bench/load/echo.ts --port N
 */
const CONNECTIONS = 100;
const IN_FLIGHT = 16;
const PAYLOAD_BYTES = 32;
const FRAME_BYTES = HEADER_BYTES + PAYLOAD_BYTES;
// The scanner needs to see the packet id and the timestamp of each echo.
const PEEK_BYTES = PACKET_ID_BYTES + 8;

const flags = loadFlags(process.argv.slice(2));
const latency = new LatencyHistogram();
let recording = false;
let running = true;
let echoed = 0;
let unexpectedFrames = 0;
let unexpectedCloses = 0;
// Read once per chunk: the frames of one read arrived together.
let receivedAt = 0;

/**
 * One connection. Its frames live in IN_FLIGHT fixed slots of one buffer with
 * the headers written once. A slot is rewritten only after its frame has been
 * echoed, which proves the bytes have left this process, so reusing the
 * memory that `socket.write` was given is safe and nothing is allocated per frame.
 */
class EchoConnection {
  private readonly frames = Buffer.alloc(IN_FLIGHT * FRAME_BYTES);
  private nextSlot = 0;
  private echoedInChunk = 0;
  private readonly scanner = new FrameScanner(PEEK_BYTES, (buf, bodyStart, bodyLength) => {
    if (buf.readUInt16LE(bodyStart) !== PacketIds.ECHO || bodyLength !== PACKET_ID_BYTES + PAYLOAD_BYTES) {
      unexpectedFrames++;
      return;
    }
    if (recording) latency.record((receivedAt - buf.readDoubleLE(bodyStart + PACKET_ID_BYTES)) * 1000);
    this.echoedInChunk++;
  });

  constructor(private readonly socket: net.Socket) {
    for (let slot = 0; slot < IN_FLIGHT; slot++) writeHeader(this.frames, slot * FRAME_BYTES, PacketIds.ECHO, PAYLOAD_BYTES);
    socket.on('data', (chunk: Buffer) => {
      receivedAt = performance.now();
      this.scanner.scan(chunk);
      const n = this.echoedInChunk;
      this.echoedInChunk = 0;
      echoed += n;
      if (running && n > 0) this.send(n);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (running) unexpectedCloses++;
    });
  }

  /** Sends `n` frames from the next slots, in one write (two when the slots wrap). */
  send(n: number): void {
    const now = performance.now();
    const first = this.nextSlot;
    for (let i = 0; i < n; i++) {
      const slot = (first + i) % IN_FLIGHT;
      this.frames.writeDoubleLE(now, slot * FRAME_BYTES + HEADER_BYTES);
    }
    const untilWrap = Math.min(n, IN_FLIGHT - first);
    this.socket.write(this.frames.subarray(first * FRAME_BYTES, (first + untilWrap) * FRAME_BYTES));
    if (untilWrap < n) this.socket.write(this.frames.subarray(0, (n - untilWrap) * FRAME_BYTES));
    this.nextSlot = (first + n) % IN_FLIGHT;
  }
}

async function main(): Promise<void> {
  exitWithParent();
  const sockets = await connectAll(flags.port, CONNECTIONS);
  const connections = sockets.map((socket) => new EchoConnection(socket));
  for (const connection of connections) connection.send(IN_FLIGHT);

  await sleep(flags.warmupMs);
  const cpu = new CpuMeter();
  const startEchoed = echoed;
  const startNs = process.hrtime.bigint();
  latency.reset();
  recording = true;
  await report({ type: 'window-start' });

  await sleep(flags.durationMs);
  recording = false;
  const windowMs = Number(process.hrtime.bigint() - startNs) / 1e6;
  const frames = echoed - startEchoed;
  const loadCpuPercent = cpu.percentOfOneCore();
  await report({ type: 'window-end' });
  running = false;
  for (const socket of sockets) socket.destroy();

  const errors: string[] = [];
  if (unexpectedFrames > 0) errors.push(`${unexpectedFrames} frames that were not echoes of ours`);
  if (unexpectedCloses > 0) errors.push(`${unexpectedCloses} connections closed by the server during the run`);
  if (frames === 0) errors.push('no frames were echoed in the measured window');
  await report({
    type: 'result',
    result: {
      rate: (frames / windowMs) * 1000,
      windowMs,
      loadCpuPercent,
      metrics: { frames, p50Us: latency.percentile(0.5), p99Us: latency.percentile(0.99) },
      errors,
    },
  });
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
