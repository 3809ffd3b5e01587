import { connect, createServer, type Client, type CloseReason, type Server } from '../../src';
import { backends } from '../support/backends';
import { RawHttp, request } from '../support/http-raw';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

interface Family {
  help: string | undefined;
  type: string | undefined;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  families: Map<string, Family>;
  samples: Sample[];
}

/**
 * The Prometheus text format (version 0.0.4), read independently of
 * prom-client: `# HELP name text`, `# TYPE name type`, and samples
 * `name{label="value",...} value`, label values with \\, \" and \n escaped.
 */
function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { help: undefined, type: undefined }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'HELP') family(meta[2]).help = meta[3];
      else family(meta[2]).type = meta[3];
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$/.exec(line);
    if (sample === null) throw new Error(`not a sample line: '${line}'`);
    const labels: Record<string, string> = {};
    const pairs = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = sample[2] ?? '';
    let at = 0;
    while (at < body.length) {
      pairs.lastIndex = at;
      const pair = pairs.exec(body);
      if (pair === null) throw new Error(`bad labels in '${line}'`);
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
      at = pairs.lastIndex;
    }
    const value = sample[3] === '+Inf' ? Infinity : sample[3] === '-Inf' ? -Infinity : Number(sample[3]);
    if (Number.isNaN(value) && sample[3] !== 'NaN') throw new Error(`bad value in '${line}'`);
    samples.push({ name: sample[1], labels, value });
  }
  return { families, samples };
}

/** The one sample of `name` whose labels include `labels`; fails when there is none or several. */
function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  return found[0].value;
}

const ECHO = 1;
const SLOW_ECHO = 2;
const PAYLOAD = Buffer.from('0123456789');

describe.each(backends)('GET /metrics on %s', (backend) => {
  let server: Server;
  let framedPort: number;
  let httpPort: number;
  const peers: RawPeer[] = [];
  const clients: Client[] = [];

  beforeEach(async () => {
    server = createServer({ backend });
    server.handle(ECHO, (_session, bytes) => bytes);
    server.handle(SLOW_ECHO, async (_session, bytes: Buffer) => {
      const copy = Buffer.from(bytes);
      await new Promise((resolve) => setImmediate(resolve));
      return copy;
    });
    server.on('session', (session) => server.room('lobby').join(session));
    ({ port: framedPort } = await server.listen({ host: '127.0.0.1', port: 0 }));
    ({ port: httpPort } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http', websocket: { path: '/play' } }));
  });

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close({ drainMs: 100 });
  });

  async function scrape(): Promise<{ text: string; contentType: string }> {
    const client = await RawHttp.connect(httpPort);
    try {
      client.write(request('GET', '/metrics'));
      const response = await client.response(0);
      expect(response.status).toBe(200);
      return { text: response.body.toString(), contentType: response.headers['content-type'] };
    } finally {
      client.destroy();
    }
  }

  async function webSocketClient(): Promise<{ client: Client; replies: () => number }> {
    const client = await connect({ url: `ws://127.0.0.1:${httpPort}/play`, backend });
    clients.push(client);
    let replies = 0;
    client.handle(ECHO, () => void replies++);
    return { client, replies: () => replies };
  }

  it('counts what the test did: packets and bytes by protocol, sessions, rooms, close reasons and handler times', async () => {
    const closes: Array<[string, CloseReason]> = [];
    server.on('sessionClose', (session, reason) => closes.push([session.protocol.name, reason]));

    const [a, b, c] = await Promise.all([RawPeer.connect(framedPort), RawPeer.connect(framedPort), RawPeer.connect(framedPort)]);
    peers.push(a, b, c);
    const x = await webSocketClient();
    const y = await webSocketClient();
    await waitFor(() => server.sessions.size === 5, 'five sessions');

    for (let i = 0; i < 5; i++) a.sendPacket(ECHO, PAYLOAD);
    for (let i = 0; i < 3; i++) b.sendPacket(SLOW_ECHO, PAYLOAD);
    for (let i = 0; i < 4; i++) x.client.send(ECHO, PAYLOAD);
    for (let i = 0; i < 4; i++) y.client.send(ECHO, PAYLOAD);
    await a.waitForPackets(5);
    await b.waitForPackets(3);
    await waitFor(() => x.replies() === 4 && y.replies() === 4, 'the WebSocket replies');

    // Three ways to go: the server's own reason for one (counted as other), a framed peer's FIN, a WebSocket peer's close.
    const sessionOf = (peer: RawPeer) => [...server.sessions.values()].find((s) => s.remotePort === peer.socket.localPort)!;
    sessionOf(c).close('rate-limited');
    b.socket.end();
    await y.client.close();
    clients.splice(clients.indexOf(y.client), 1);
    await waitFor(() => closes.length === 3, 'three closes');

    const { text, contentType } = await scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseExposition(text);

    // Every sample belongs to a family that says what it is; counters are named as counters.
    for (const sample of m.samples) {
      const familyName = [...m.families.keys()].find((f) => sample.name === f || sample.name.replace(/_(bucket|sum|count)$/, '') === f);
      expect([sample.name, familyName !== undefined]).toEqual([sample.name, true]);
      const family = m.families.get(familyName!)!;
      expect(family.help).toBeTruthy();
      if (family.type === 'counter') expect(familyName).toMatch(/_total$/);
    }

    expect(valueOf(m, 'ringport_received_packets_total', { protocol: 'framed' })).toBe(8);
    expect(valueOf(m, 'ringport_received_packets_total', { protocol: 'websocket' })).toBe(8);
    expect(valueOf(m, 'ringport_sent_packets_total', { protocol: 'framed' })).toBe(8);
    expect(valueOf(m, 'ringport_sent_packets_total', { protocol: 'websocket' })).toBe(8);
    // A framed packet is a 4-byte length, a 2-byte id and the payload, both ways.
    expect(valueOf(m, 'ringport_received_bytes_total', { protocol: 'framed' })).toBe(8 * (6 + PAYLOAD.length));
    expect(valueOf(m, 'ringport_sent_bytes_total', { protocol: 'framed' })).toBe(8 * (6 + PAYLOAD.length));
    // Masked client frames (2 + 4 + 2-byte id + payload) in; unmasked server frames (2 + 2 + payload) out, plus the close frames.
    expect(valueOf(m, 'ringport_received_bytes_total', { protocol: 'websocket' })).toBeGreaterThanOrEqual(8 * (8 + PAYLOAD.length));
    expect(valueOf(m, 'ringport_sent_bytes_total', { protocol: 'websocket' })).toBeGreaterThanOrEqual(8 * (4 + PAYLOAD.length));
    // The two upgrade requests (and now the scrape) came as HTTP.
    expect(valueOf(m, 'ringport_received_bytes_total', { protocol: 'http' })).toBeGreaterThan(0);

    expect(valueOf(m, 'ringport_sessions', { protocol: 'framed' })).toBe(1);
    expect(valueOf(m, 'ringport_sessions', { protocol: 'websocket' })).toBe(1);
    expect(valueOf(m, 'ringport_rooms')).toBe(1);
    expect(valueOf(m, 'ringport_room_members')).toBe(2);

    expect(valueOf(m, 'ringport_session_closes_total', { protocol: 'framed', reason: 'other' })).toBe(1);
    expect(valueOf(m, 'ringport_session_closes_total', { protocol: 'framed', reason: 'peer-closed' })).toBe(1);
    expect(valueOf(m, 'ringport_session_closes_total', { protocol: 'websocket', reason: 'peer-closed' })).toBe(1);
    expect(m.samples.filter((s) => s.name === 'ringport_session_closes_total')).toHaveLength(3);

    expect(m.families.get('ringport_handler_duration_seconds')?.type).toBe('histogram');
    for (const [packet, handled] of [['1', 13], ['2', 3]] as const) {
      const buckets = m.samples.filter((s) => s.name === 'ringport_handler_duration_seconds_bucket' && s.labels.packet === packet);
      const bounds = buckets.map((s) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)));
      expect(bounds).toEqual([...bounds].sort((p, q) => p - q));
      expect(bounds[bounds.length - 1]).toBe(Infinity);
      // Cumulative: each bucket holds the ones below it, and the last holds every handled packet.
      buckets.forEach((bucket, i) => expect(bucket.value).toBeGreaterThanOrEqual(i === 0 ? 0 : buckets[i - 1].value));
      expect(buckets[buckets.length - 1].value).toBe(handled);
      expect(valueOf(m, 'ringport_handler_duration_seconds_count', { packet })).toBe(handled);
      expect(valueOf(m, 'ringport_handler_duration_seconds_sum', { packet })).toBeGreaterThan(0);
    }

    expect(valueOf(m, 'ringport_backend_info', { backend })).toBe(1);
    expect(valueOf(m, 'ringport_send_queue_bytes')).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'ringport_backend_batches_total')).toBeGreaterThan(0);
    expect(valueOf(m, 'ringport_backend_reads_total')).toBeGreaterThan(0);
    // Only io_uring receives into a pool of provided buffers (IOCP posts a zero-byte receive while idle).
    if (backend === 'uring') expect(valueOf(m, 'ringport_backend_recv_buffers')).toBeGreaterThan(0);
    if (backend !== 'net') {
      // The traffic above woke the reactor, and it reaped that traffic's completions.
      expect(valueOf(m, 'ringport_backend_wakeups_total')).toBeGreaterThan(0);
      expect(valueOf(m, 'ringport_backend_completions_total')).toBeGreaterThan(0);
    }
  });

  it('times handlers behind middleware too, sync and async alike', async () => {
    server.use(async (_ctx, next) => {
      await next();
    });
    const peer = await RawPeer.connect(framedPort);
    peers.push(peer);
    for (let i = 0; i < 3; i++) peer.sendPacket(ECHO, PAYLOAD);
    for (let i = 0; i < 2; i++) peer.sendPacket(SLOW_ECHO, PAYLOAD);
    await peer.waitForPackets(5);
    const m = parseExposition((await scrape()).text);
    expect(valueOf(m, 'ringport_handler_duration_seconds_count', { packet: '1' })).toBe(3);
    expect(valueOf(m, 'ringport_handler_duration_seconds_bucket', { packet: '1', le: '+Inf' })).toBe(3);
    expect(valueOf(m, 'ringport_handler_duration_seconds_count', { packet: '2' })).toBe(2);
  });

  it('keeps each server\'s metrics in its own registry', async () => {
    const other = createServer({ backend });
    try {
      const peer = await RawPeer.connect(framedPort);
      peers.push(peer);
      peer.sendPacket(ECHO, PAYLOAD);
      await peer.waitForPackets(1);
      const mine = parseExposition((await scrape()).text);
      const theirs = parseExposition(await other.metrics!.text());
      expect(valueOf(mine, 'ringport_received_packets_total', { protocol: 'framed' })).toBe(1);
      expect(valueOf(theirs, 'ringport_received_packets_total', { protocol: 'framed' })).toBe(0);
      expect(server.metrics!.registry).not.toBe(other.metrics!.registry);
    } finally {
      await other.close();
    }
  });
});
