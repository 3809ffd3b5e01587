import { Counter, Gauge, type Registry } from 'prom-client';
import type { BackendKind, BackendStats } from '../../backend';

/**
 * The backend's counters as metrics, read from `backend.stats()` once per
 * scrape (on a native backend that call walks the connection slots):
 *
 * | metric | type | why |
 * | --- | --- | --- |
 * | `ringport_backend_info{backend}` | gauge, always 1 | which backend `auto` chose (uring, epoll, iocp, net) |
 * | `ringport_backend_connections` | gauge | connections, HTTP ones included: what the descriptor limit bounds |
 * | `ringport_send_queue_bytes` | gauge | bytes queued and not yet written, over all connections: slow readers show here before they are closed with `backpressure` |
 * | `ringport_backend_batches_total` | counter | event batches handed to JS: JS/native crossings (and, on `net`, event-loop turns with I/O) |
 * | `ringport_backend_submits_total` | counter | kernel submissions (io_uring_enter, WSASend, socket writes); on uring, shared by every server and client of the thread |
 * | `ringport_backend_reads_total` | counter | read completions that delivered bytes; over the wake-ups, the reads each wake-up reaps |
 * | `ringport_backend_wakeups_total` | counter | native: reactor wake-ups |
 * | `ringport_backend_completions_total` | counter | native: what those wake-ups reaped (CQEs, ready events, completion packets); `rate(completions) / rate(wakeups)` is the completions per wake-up, the batching the reactor buys |
 * | `ringport_backend_recv_buffers` | gauge | native: the provided receive-buffer pool, which grows under load and shrinks after |
 * | `ringport_backend_recv_buffer_shortages_total` | counter | native: how often the kernel found that pool empty (ENOBUFS) and the receive had to be re-armed |
 */
export function registerBackendMetrics(registers: Registry[], kind: BackendKind, stats: () => BackendStats): void {
  // One stats() call serves every collector of a scrape: they all run in the same tick.
  let current: BackendStats | undefined;
  const read = (): BackendStats => {
    if (current === undefined) {
      current = stats();
      setImmediate(() => (current = undefined));
    }
    return current;
  };
  const gauge = (name: string, help: string, value: (s: BackendStats) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(read()) ?? 0);
      },
    });
  const counter = (name: string, help: string, value: (s: BackendStats) => number | undefined) =>
    new Counter({
      name,
      help,
      registers,
      // The backend keeps the total; a scrape copies it in.
      collect() {
        this.reset();
        this.inc(value(read()) ?? 0);
      },
    });

  new Gauge({ name: 'ringport_backend_info', help: 'The backend in use, as a label; always 1.', labelNames: ['backend'], registers }).set({ backend: kind }, 1);
  gauge('ringport_backend_connections', 'Open connections, HTTP ones included.', (s) => s.connections);
  gauge('ringport_send_queue_bytes', 'Bytes queued and not yet written, over all connections.', (s) => s.queuedBytes);
  counter('ringport_backend_batches_total', 'Event batches delivered to JS.', (s) => s.batches);
  counter('ringport_backend_submits_total', 'Kernel submissions (io_uring_enter, WSASend, socket writes).', (s) => s.submits);
  counter('ringport_backend_reads_total', 'Read completions that delivered bytes.', (s) => s.reads);
  // What only a native reactor counts is left out on net, rather than shown as a 0 that would mean something.
  if (kind === 'net') return;
  counter('ringport_backend_wakeups_total', 'Reactor wake-ups.', (s) => s.wakeups);
  counter('ringport_backend_completions_total', 'Completions the reactor reaped (CQEs, ready events, completion packets).', (s) => s.completions);
  gauge('ringport_backend_recv_buffers', 'Receive buffers in the reactor\'s pool (uring; 0 on the others).', (s) => s.recvBuffers);
  counter('ringport_backend_recv_buffer_shortages_total', 'Times the kernel found the receive buffer pool empty (ENOBUFS).', (s) => s.recvBufferShortages);
  counter('ringport_backend_relayed_packets_total', 'Packets the reactor relayed to room-mates itself, without a JS turn (the server\'s relay option).', (s) => s.relayedPackets);
}
