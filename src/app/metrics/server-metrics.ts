import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { BackendKind } from '../../backend';
import { BUILT_IN_CLOSE_REASONS, type CloseReason, type ProtocolName } from '../../protocol';
import type { PacketKey, SessionTable } from '../../session';
import { registerBackendMetrics } from './backend-metrics';
import { HandlerLatency } from './handler-latency';

/** What the metrics read from their server, at scrape time. */
export interface MetricsSource {
  readonly table: SessionTable;
  readonly backendKind: BackendKind;
  /** The rooms that have members. */
  rooms(): ReadonlyMap<string, { readonly size: number }>;
  /** The codec's name for a packet id (the id itself without a codec). */
  keyOf(packetId: number): PacketKey;
}

/** The protocols that carry sessions; HTTP connections become sessions only by upgrading (to websocket). */
const SESSION_PROTOCOLS: readonly ProtocolName[] = ['framed', 'websocket'];
const ALL_PROTOCOLS: readonly ProtocolName[] = ['framed', 'websocket', 'http'];
const BUILT_IN = new Set<string>(BUILT_IN_CLOSE_REASONS);

/**
 * A server's metrics in the Prometheus text format, through prom-client,
 * in a Registry of the server's own (never prom-client's global one: two
 * servers in a process, or a test's many, must not mix). Served at
 * `GET /metrics` on every HTTP listener of the server. Most are read from
 * counters the server keeps anyway, when scraped; only the close reasons
 * and the handler latency are counted as they happen.
 *
 * | metric | type | why |
 * | --- | --- | --- |
 * | `ringport_sessions{protocol}` | gauge | open sessions by protocol (framed, websocket): load, and the browser/native mix |
 * | `ringport_rooms` | gauge | rooms with members: matches under way |
 * | `ringport_room_members` | gauge | sessions seated in a room; the rest are in no room (a lobby, a login) |
 * | `ringport_received_packets_total{protocol}` | counter | packets in, by protocol: the input rate a tick must absorb |
 * | `ringport_sent_packets_total{protocol}` | counter | packets queued out (a broadcast counts each recipient): fan-out |
 * | `ringport_received_bytes_total{protocol}` | counter | bytes in, framing included; `http` counts HTTP requests, an upgrade request too |
 * | `ringport_sent_bytes_total{protocol}` | counter | bytes queued out (`http`: responses); bandwidth is what a game server pays for |
 * | `ringport_session_closes_total{protocol,reason}` | counter | why sessions end: a rise of `backpressure` or `idle-timeout` is a network or client problem, `handler-error` a bug. A reason of the application's own counts as `other`, so labels stay bounded |
 * | `ringport_handler_duration_seconds{packet}` | histogram | handler time by packet, the part of a tick the game's own code spends (see HandlerLatency) |
 * | `ringport_send_queue_bytes` | gauge | bytes queued and not yet written: slow readers, before they cost `backpressure` closes |
 * | `ringport_backend_*` | | the backend's own counters (see registerBackendMetrics) |
 */
export class ServerMetrics {
  /**
   * The server's registry: metrics of the application's own registered here
   * (`registers: [server.metrics.registry]`) are served with ringport's.
   */
  readonly registry = new Registry();
  /** @internal Fed by the dispatcher once an HTTP listener has opened. */
  readonly latency: HandlerLatency;
  private readonly closes: Counter<'protocol' | 'reason'>;

  /** @internal Made by the server unless `createServer({ metrics: false })`. */
  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const table = source.table;

    new Gauge({
      name: 'ringport_sessions',
      help: 'Open sessions, by protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        const open = openSessions(table);
        for (const protocol of SESSION_PROTOCOLS) this.set({ protocol }, open[protocol] ?? 0);
      },
    });
    new Gauge({
      name: 'ringport_rooms',
      help: 'Rooms that have members.',
      registers,
      collect() {
        this.set(source.rooms().size);
      },
    });
    new Gauge({
      name: 'ringport_room_members',
      help: 'Sessions seated in a room.',
      registers,
      collect() {
        let members = 0;
        for (const room of source.rooms().values()) members += room.size;
        this.set(members);
      },
    });
    const traffic = (name: string, help: string, protocols: readonly ProtocolName[], read: (p: ProtocolName) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['protocol'],
        registers,
        // The totals are kept by the session table; a scrape copies them in.
        collect() {
          this.reset();
          for (const protocol of protocols) this.inc({ protocol }, read(protocol));
        },
      });
    traffic('ringport_received_packets_total', 'Packets received, by protocol.', SESSION_PROTOCOLS, (p) => table.traffic[p].packetsIn);
    traffic('ringport_sent_packets_total', 'Packets queued to send, one per recipient, by protocol.', SESSION_PROTOCOLS, (p) => table.traffic[p].packetsOut);
    traffic('ringport_received_bytes_total', 'Bytes received, by protocol (http: requests, upgrade requests included).', ALL_PROTOCOLS, (p) => table.traffic[p].bytesIn);
    traffic('ringport_sent_bytes_total', 'Bytes queued to send, by protocol (http: responses; an upgrade is answered by websocket).', ALL_PROTOCOLS, (p) => table.traffic[p].bytesOut);
    this.closes = new Counter({
      name: 'ringport_session_closes_total',
      help: 'Sessions closed, by protocol and close reason (a reason of the application\'s own counts as other).',
      labelNames: ['protocol', 'reason'],
      registers,
    });

    this.latency = new HandlerLatency(source.keyOf);
    // The registry formats any collector with name, help, type and get(); its type names only its own classes.
    this.registry.registerMetric(this.latency as unknown as Metric);

    registerBackendMetrics(registers, source.backendKind, () => table.backend.stats());
  }

  /** The registry's content type for a scrape's answer. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format, as `GET /metrics` serves it. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** @internal A session closed: one more of its reason, or of `other` for a reason of the application's own. */
  sessionClosed(protocol: ProtocolName, reason: CloseReason): void {
    this.closes.inc({ protocol, reason: BUILT_IN.has(reason) ? reason : 'other' });
  }
}

/** Open sessions by protocol: one walk over the sessions per scrape. */
function openSessions(table: SessionTable): Record<string, number> {
  const open: Record<string, number> = {};
  for (const session of table.sessions.values()) {
    if (session.isOpen) open[session.protocol.name] = (open[session.protocol.name] ?? 0) + 1;
  }
  return open;
}
