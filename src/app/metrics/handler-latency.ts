import type { PacketKey } from '../../session';

/**
 * Upper bounds in seconds. Game handlers mostly take microseconds (a move,
 * a chat line) and a few wait on storage for milliseconds: the buckets are
 * dense below a millisecond, where a 20-tick-per-second server lives
 * (50 ms a tick), and reach a second for the outliers worth an alert.
 */
const BOUNDS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Per packet: a count per bound, the count above the last, then the sum of seconds. */
const OVER = BOUNDS.length;
const SUM = BOUNDS.length + 1;

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * `ringport_handler_duration_seconds{packet}`: how long handlers take, by
 * packet. It is fed once per handled packet, so it keeps its counts in one
 * Float64Array per packet id: an observation is a lookup, a short scan and
 * two additions, with nothing allocated (prom-client's own Histogram makes
 * a label hash and a closure per observation). The Prometheus form (the
 * cumulative `_bucket` series, `_sum`, `_count`) is built only when
 * scraped. Packet ids come from the server's routes, so the label's values
 * are bounded by the application's own packets.
 *
 * It is a collector prom-client's Registry can hold: `name`, `help`,
 * `type`, `aggregator`, `get()` and `reset()` are what the registry reads.
 */
export class HandlerLatency {
  readonly name = 'ringport_handler_duration_seconds';
  readonly help = 'Time a packet handler took, from its call to its return (or, for an async one, until it settled), by packet.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byPacket = new Map<number, Float64Array>();

  constructor(private readonly keyOf: (packetId: number) => PacketKey) {}

  /** Records one handler run of packet `packetId` that started at `startedMs` (performance.now()). */
  observe(packetId: number, startedMs: number): void {
    const seconds = (performance.now() - startedMs) / 1000;
    let counts = this.byPacket.get(packetId);
    if (counts === undefined) {
      counts = new Float64Array(SUM + 1);
      this.byPacket.set(packetId, counts);
    }
    let i = 0;
    while (i < OVER && seconds > BOUNDS[i]) i++;
    counts[i]++;
    counts[SUM] += seconds;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [packetId, counts] of this.byPacket) {
      const packet = String(this.keyOf(packetId));
      let cumulative = 0;
      for (let i = 0; i < OVER; i++) {
        cumulative += counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le: BOUNDS[i], packet }, value: cumulative });
      }
      cumulative += counts[OVER];
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', packet }, value: cumulative });
      values.push({ metricName: `${this.name}_sum`, labels: { packet }, value: counts[SUM] });
      values.push({ metricName: `${this.name}_count`, labels: { packet }, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.byPacket.clear();
  }
}
