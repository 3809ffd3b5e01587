import { HTTP_ECHO_BODY_BYTES, HTTP_ECHO_PATH, HTTP_GET_PATH, HTTP_GREETING, WEBSOCKET_PATH } from './wire';

/**
 * The workloads the orchestrator knows: which load generator plays them, which
 * rows they compare and how to print what they measured. A new workload is one
 * entry here, one mode of the C load generator (bench/loadgen/loadgen.c) and,
 * optionally, a JS load generator in bench/load/.
 */

/** The wire protocol a workload speaks, and so which rows (servers) play it. */
export type Protocol = 'framed' | 'websocket' | 'http';

// The rows (see bench/server.ts); `ringport/<backend>` and `ringport/websocket/<backend>` exist for each backend that loads.
export const NODE_NET = 'node:net';
export const C_EPOLL = 'c:epoll';
export const URING = 'ringport/uring';
export const EPOLL = 'ringport/epoll';
export const NET = 'ringport/net';
export const WS_URING = 'ringport/websocket/uring';
export const UWS = 'uWebSockets.js';
export const WS = 'ws';
export const HTTP_URING = 'ringport/http/uring';
export const UWS_HTTP = 'uWebSockets.js/http';
export const NODE_HTTP = 'node:http';

/** The framed, WebSocket and HTTP rows for the backends that load here. */
export function rowsFor(backends: readonly string[]): Record<Protocol, string[]> {
  return {
    framed: [...backends.map((kind) => `ringport/${kind}`), NODE_NET, C_EPOLL],
    websocket: [...backends.map((kind) => `ringport/websocket/${kind}`), UWS, WS],
    http: [...backends.map((kind) => `ringport/http/${kind}`), UWS_HTTP, NODE_HTTP],
  };
}

export function protocolOf(row: string): Protocol {
  if (row.startsWith('ringport/http/') || row === UWS_HTTP || row === NODE_HTTP) return 'http';
  return row.startsWith('ringport/websocket/') || row === UWS || row === WS ? 'websocket' : 'framed';
}

/** The heading the verdicts of each protocol's targets are printed under. */
export const TARGET_GROUPS: Record<Protocol, string> = {
  framed:
    'issue 3 and 12 targets (ringport/uring against ringport/net, ringport/epoll against ringport/uring, ' +
    'both against c:epoll on rooms-64 and rooms-4, same run)',
  websocket: 'issue 10 targets (ringport/websocket/uring against uWebSockets.js and ws, same run)',
  http: 'issue 11 targets (ringport/http/uring against uWebSockets.js/http and node:http, same run)',
};

/** An HTTP workload's requests: every connection sends `depth` of them in one write, the next `depth` once all are answered. */
export interface HttpRequests {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly bodyBytes: number;
  readonly depth: number;
  /** The body every answer must carry (an echo's is the request's body). */
  readonly expect: string;
  /**
   * Who generates the load unless `--http-loadgen` says otherwise: wrk where
   * it keeps up with the fastest row on this 2-core machine, the C load
   * generator's `http` mode where it does not (see bench/README.md).
   */
  readonly loadgen: 'wrk' | 'c';
}

/** Keep-alive connections of every HTTP workload. */
export const HTTP_CONNECTIONS = 100;
export interface Column {
  /** A key of `LoadResult.metrics`, or `rate` for `LoadResult.rate`. */
  readonly key: string;
  readonly label: string;
  /** How runs combine: the median, or the sum for counts that must be zero. */
  readonly combine: 'median' | 'sum';
  /** Decimal places shown; default 0. */
  readonly decimals?: number;
}

/** A target on this workload's headline: one row's against another's, in the same run. */
export interface Target {
  /** The row held to the target. */
  readonly subject: string;
  /** The row it is measured against. */
  readonly against: string;
  /** The ratio's short name in the table and the verdicts, e.g. `uring/net`. */
  readonly label: string;
  /** subject's headline over against's must be at least this (higher is better) or at most / under it (lower is better). */
  readonly ratio: number;
  /** `<` for a strict bound (a lower p99, whatever the amount). */
  readonly strict?: boolean;
}

export interface Workload {
  readonly name: string;
  readonly protocol: Protocol;
  /** One line saying what is measured and with what parameters. */
  readonly title: string;
  /**
   * `traffic`: the load generator runs a warm-up and a measured window.
   * `memory`: the load generator opens connections and holds them while the
   * orchestrator reads the server's memory (C load generator only).
   */
  readonly kind: 'traffic' | 'memory';
  /** The JS load generator, relative to bench/, if there is one. */
  readonly script?: string;
  /** The C load generator's mode and flags (the orchestrator adds port and timing). */
  readonly cArgs: readonly string[];
  /** HTTP workloads: the requests, which wrk (bench/load/wrk.ts) or the C load generator's `http` mode sends. */
  readonly http?: HttpRequests;
  /** Label of the headline figure. */
  readonly unit: string;
  /**
   * The metric the ratios are taken on: `rate` (`LoadResult.rate`), a key of
   * `metrics`, or {@link PER_SERVER_CPU_SECOND}.
   */
  readonly headline: string;
  readonly better: 'higher' | 'lower';
  readonly columns: readonly Column[];
  /** Server CPU time per unit of `LoadResult.rate`, user + system apart, e.g. µs per frame. */
  readonly cpuPer?: { readonly label: string; readonly scale: number };
  /** Rows every row's headline is divided by, a `vs <row>` column each; the first is the baseline. */
  readonly compare: readonly string[];
  readonly targets: readonly Target[];
}

/**
 * A headline for a fixed offered load, where every row that keeps up moves
 * the same traffic: the rate per second of server CPU time (usr+sys), so
 * a row is as far ahead as its cost per unit is below the other's.
 */
export const PER_SERVER_CPU_SECOND = 'perServerCpuSecond';

/** Issue 3's target for uring against net on a framed workload. */
function uringOverNet(ratio: number, strict?: boolean): Target[] {
  return [{ subject: URING, against: NET, label: 'uring/net', ratio, strict }];
}

/**
 * Issue 12's: the epoll backend, for containers that refuse io_uring, at
 * least 0.9x uring's figure (higher is better), or at most `ratio` times its
 * memory (lower is better).
 */
function epollAgainstUring(ratio: number): Target {
  return { subject: EPOLL, against: URING, label: 'epoll/uring', ratio };
}

/** Issue 10's: ringport/websocket on uring at least as good as uWebSockets.js and, where given, `wsRatio` times ws. */
function webSocketTargets(wsRatio: number | undefined): Target[] {
  const targets: Target[] = [{ subject: WS_URING, against: UWS, label: 'uring/uWS', ratio: 1 }];
  if (wsRatio !== undefined) targets.push({ subject: WS_URING, against: WS, label: 'uring/ws', ratio: wsRatio });
  return targets;
}

/** Issue 11's: ringport/http on uring at least as fast as uWebSockets.js's HTTP and 3x node:http. */
const HTTP_TARGETS: Target[] = [
  { subject: HTTP_URING, against: UWS_HTTP, label: 'uring/uWS', ratio: 1 },
  { subject: HTTP_URING, against: NODE_HTTP, label: 'uring/node', ratio: 3 },
];

/** The flags of bench/load/wrk.ts for these requests (the orchestrator adds port, timing and threads). */
export function wrkArgs(http: HttpRequests): string[] {
  const args = ['--connections', String(HTTP_CONNECTIONS), '--method', http.method, '--path', http.path, '--body', String(http.bodyBytes)];
  return [...args, '--depth', String(http.depth), ...(http.method === 'GET' ? ['--expect', http.expect] : [])];
}

function httpWorkload(name: string, http: HttpRequests, what: string): Workload {
  const pipelined = http.depth > 1 ? `, pipelined ${http.depth} deep (${http.depth} requests per write, the next ${http.depth} once all are answered)` : ', one request at a time';
  return {
    name,
    protocol: 'http',
    title: `${name}: ${HTTP_CONNECTIONS} keep-alive connections, ${what}${pipelined}`,
    kind: 'traffic',
    cArgs: ['http', ...wrkArgs(http)],
    http,
    unit: 'requests/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      COLUMN.p50,
      COLUMN.p99,
      { key: 'badResponses', label: 'bad answers', combine: 'sum' },
    ],
    cpuPer: { label: 'server µs/request usr+sys', scale: 1e6 },
    compare: [UWS_HTTP, NODE_HTTP],
    targets: HTTP_TARGETS,
  };
}

const GET: Omit<HttpRequests, 'depth' | 'loadgen'> = { method: 'GET', path: HTTP_GET_PATH, bodyBytes: 0, expect: HTTP_GREETING };
const ECHO: Omit<HttpRequests, 'depth' | 'loadgen'> = { method: 'POST', path: HTTP_ECHO_PATH, bodyBytes: HTTP_ECHO_BODY_BYTES, expect: '' };
const GET_WHAT = `GET / answered with '${HTTP_GREETING}'`;
const ECHO_WHAT = `POST /echo with a ${HTTP_ECHO_BODY_BYTES}-byte body answered with it`;

/** The fixed offered load of `echo-fixed`, in frames per second over all connections. */
export const FIXED_RATE = 50_000;
/** How often the C load generator's pacing timer fires in `echo-fixed`. */
export const FIXED_TICK_US = 200;
/** Idle connections in `conns`. */
export const IDLE_CONNECTIONS = 10_000;
/** `rooms`: players, seats per room, and the packets each player sends its room per second. */
export const ROOM_PLAYERS = 1000;
export const ROOM_SIZE = 8;
export const ROOM_PACKETS_PER_SECOND = 20;
/** `rooms-64` and `rooms-4`: the room packets each player keeps in flight (until every room-mate has received them). */
export const ROOM_IN_FLIGHT = [64, 4] as const;

/** Columns more than one workload shows. */
const COLUMN = {
  p50: { key: 'p50Us', label: 'p50 µs', combine: 'median' },
  p99: { key: 'p99Us', label: 'p99 µs', combine: 'median' },
  // Sends the load generator made over 1 ms late (it was not scheduled in time): a sign of a busy machine.
  late: { key: 'latePercent', label: 'late %', combine: 'median', decimals: 1 },
  gaps: { key: 'gaps', label: 'gaps', combine: 'sum' },
  broadcasts: { key: 'broadcastsPerSec', label: 'broadcasts/s', combine: 'median' },
} satisfies Record<string, Column>;

/** The idle-connection workloads' columns: where each connection's bytes went. */
const IDLE_COLUMNS: readonly Column[] = [
  { key: 'heapPerConn', label: 'JS heap B/conn', combine: 'median' },
  { key: 'externalPerConn', label: 'external B/conn', combine: 'median' },
  { key: 'mallocPerConn', label: 'malloc B/conn', combine: 'median' },
  { key: 'rssBeforeMiB', label: 'RSS before MiB', combine: 'median' },
  { key: 'rssAfterMiB', label: 'RSS after MiB', combine: 'median' },
  { key: 'connectMs', label: 'connect ms', combine: 'median' },
];

/**
 * Issue 12's item 7: ringport on each native backend at least `ratio` times
 * the C reference server's deliveries per second, same run.
 */
function againstReference(ratio: number): Target[] {
  return [
    { subject: URING, against: C_EPOLL, label: 'uring/c:epoll', ratio },
    { subject: EPOLL, against: C_EPOLL, label: 'epoll/c:epoll', ratio },
  ];
}

/**
 * `rooms-<inFlight>`: the players and rooms of `rooms` in a closed loop, each
 * player keeping `inFlight` of its packets outstanding (a packet is
 * outstanding until all its room-mates have it) and sending the next as one
 * completes; a ceiling, not a fixed load, so the headline is deliveries per
 * second against the C reference server's.
 */
function roomsInFlight(inFlight: number): Workload {
  return {
    name: `rooms-${inFlight}`,
    protocol: 'framed',
    title:
      `rooms-${inFlight}: ${ROOM_PLAYERS.toLocaleString('en-US')} players in rooms of ${ROOM_SIZE}, each keeping ${inFlight} packets ` +
      `(32-byte payload) in flight to its room, relayed to the other ${ROOM_SIZE - 1} (in flight until all ${ROOM_SIZE - 1} have it)`,
    kind: 'traffic',
    cArgs: [
      'rooms', '--connections', String(ROOM_PLAYERS), '--room-size', String(ROOM_SIZE),
      '--in-flight', String(inFlight), '--payload', '32',
    ],
    unit: 'deliveries/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      { key: 'packetsPerSec', label: 'packets/s', combine: 'median' },
      COLUMN.p50,
      COLUMN.p99,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server ns/delivery usr+sys', scale: 1e9 },
    compare: [C_EPOLL],
    targets: againstReference(0.8),
  };
}

function fixedTitle(rate: number): string {
  return (
    `echo-fixed: 100 connections, a fixed offered load of ${rate.toLocaleString('en-US')} frames/s ` +
    `(paced every ${FIXED_TICK_US} µs, round-robin), 32-byte payload; latency per frame`
  );
}

/** `echo-fixed` at another offered load (`npm run bench -- --fixed-rate N`). */
export function withFixedRate(workload: Workload, rate: number): Workload {
  if (workload.name !== 'echo-fixed') return workload;
  const cArgs = [...workload.cArgs];
  cArgs[cArgs.indexOf('--rate') + 1] = String(rate);
  return { ...workload, title: fixedTitle(rate), cArgs };
}

export const workloads: readonly Workload[] = [
  {
    name: 'echo',
    protocol: 'framed',
    title: 'echo: 100 connections x 16 frames in flight, 32-byte payload, echoed back',
    kind: 'traffic',
    script: 'load/echo.ts',
    cArgs: ['echo', '--connections', '100', '--in-flight', '16', '--payload', '32'],
    unit: 'frames/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      COLUMN.p50,
      COLUMN.p99,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server µs/frame usr+sys', scale: 1e6 },
    compare: [NODE_NET],
    targets: [...uringOverNet(5), epollAgainstUring(0.9)],
  },
  {
    name: 'broadcast',
    protocol: 'framed',
    title: 'broadcast: 1 sender, 500 receivers, 64-byte payload, 256 frames in flight',
    kind: 'traffic',
    script: 'load/broadcast.ts',
    cArgs: ['broadcast', '--receivers', '500', '--window', '256', '--payload', '64'],
    unit: 'deliveries/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      COLUMN.broadcasts,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server ns/delivery usr+sys', scale: 1e9 },
    compare: [NODE_NET],
    targets: [...uringOverNet(40), epollAgainstUring(0.9)],
  },
  {
    name: 'rooms',
    protocol: 'framed',
    title:
      `rooms: ${ROOM_PLAYERS.toLocaleString('en-US')} players in rooms of ${ROOM_SIZE}, each sending ${ROOM_PACKETS_PER_SECOND} ` +
      `packets/s (32-byte payload) to its room, relayed to the other ${ROOM_SIZE - 1}; deliveries per second of server CPU`,
    kind: 'traffic',
    cArgs: [
      'rooms', '--connections', String(ROOM_PLAYERS), '--room-size', String(ROOM_SIZE),
      '--packets-per-second', String(ROOM_PACKETS_PER_SECOND), '--tick-us', '1000', '--payload', '32',
    ],
    unit: 'deliveries/CPU-s',
    headline: PER_SERVER_CPU_SECOND,
    better: 'higher',
    columns: [
      { key: 'rate', label: 'deliveries/s', combine: 'median' },
      COLUMN.p50,
      COLUMN.p99,
      COLUMN.late,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server µs/delivery usr+sys', scale: 1e6 },
    compare: [NODE_NET],
    targets: [epollAgainstUring(0.9)],
  },
  ...ROOM_IN_FLIGHT.map(roomsInFlight),
  {
    name: 'echo-fixed',
    protocol: 'framed',
    title: fixedTitle(FIXED_RATE),
    kind: 'traffic',
    cArgs: ['echo-fixed', '--connections', '100', '--rate', String(FIXED_RATE), '--tick-us', String(FIXED_TICK_US), '--payload', '32'],
    unit: 'p99 µs',
    headline: 'p99Us',
    better: 'lower',
    columns: [
      { key: 'rate', label: 'frames/s', combine: 'median' },
      COLUMN.p50,
      { key: 'p999Us', label: 'p99.9 µs', combine: 'median' },
      COLUMN.late,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server µs/frame usr+sys', scale: 1e6 },
    compare: [NODE_NET],
    targets: uringOverNet(1, true),
  },
  {
    name: 'conns',
    protocol: 'framed',
    title: `conns: ${IDLE_CONNECTIONS.toLocaleString('en-US')} idle connections; server RSS growth per connection (after GC)`,
    kind: 'memory',
    cArgs: ['conns', '--connections', String(IDLE_CONNECTIONS), '--warm-connections', '500'],
    unit: 'bytes/conn',
    headline: 'rate',
    better: 'lower',
    columns: IDLE_COLUMNS,
    compare: [NODE_NET],
    targets: [...uringOverNet(0.4), epollAgainstUring(1)],
  },
  // WebSocket (RFC 6455) at /play: the same packets, one binary message each (u16 LE id | payload), client frames masked.
  {
    name: 'ws-echo',
    protocol: 'websocket',
    title: 'ws-echo: 100 connections x 16 masked 32-byte messages in flight (packet id + 30-byte payload), echoed back',
    kind: 'traffic',
    cArgs: ['echo', '--ws', WEBSOCKET_PATH, '--connections', '100', '--in-flight', '16', '--payload', '30'],
    unit: 'frames/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      COLUMN.p50,
      COLUMN.p99,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server µs/frame usr+sys', scale: 1e6 },
    compare: [UWS, WS],
    targets: webSocketTargets(5),
  },
  {
    name: 'ws-broadcast',
    protocol: 'websocket',
    title: 'ws-broadcast: 1 sender, 500 receivers, 64-byte messages (packet id + 62-byte payload), 256 in flight',
    kind: 'traffic',
    cArgs: ['broadcast', '--ws', WEBSOCKET_PATH, '--receivers', '500', '--window', '256', '--payload', '62'],
    unit: 'deliveries/s',
    headline: 'rate',
    better: 'higher',
    columns: [
      COLUMN.broadcasts,
      COLUMN.gaps,
    ],
    cpuPer: { label: 'server ns/delivery usr+sys', scale: 1e9 },
    compare: [UWS, WS],
    targets: webSocketTargets(5),
  },
  {
    name: 'ws-conns',
    protocol: 'websocket',
    title: `ws-conns: ${IDLE_CONNECTIONS.toLocaleString('en-US')} idle WebSocket connections (upgraded); server RSS growth per connection (after GC)`,
    kind: 'memory',
    cArgs: ['conns', '--ws', WEBSOCKET_PATH, '--connections', String(IDLE_CONNECTIONS), '--warm-connections', '500'],
    unit: 'bytes/conn',
    headline: 'rate',
    better: 'lower',
    columns: IDLE_COLUMNS,
    compare: [UWS, WS],
    targets: webSocketTargets(undefined),
  },
  // HTTP/1.1, keep-alive: GET / and POST /echo, without and with pipelining (issue 11).
  httpWorkload('http-get', { ...GET, depth: 1, loadgen: 'c' }, GET_WHAT),
  httpWorkload('http-echo', { ...ECHO, depth: 1, loadgen: 'c' }, ECHO_WHAT),
  httpWorkload('http-get-p16', { ...GET, depth: 16, loadgen: 'wrk' }, GET_WHAT),
  httpWorkload('http-echo-p16', { ...ECHO, depth: 16, loadgen: 'wrk' }, ECHO_WHAT),
];
