/*
 * The bench's native load generator: one single-threaded epoll program that
 * speaks the bench protocol (bench/wire.ts: u32 LE length | u16 LE packet id |
 * payload) and plays every workload, so that on a small machine the load
 * generator costs a fraction of what the server under test does.
 *
 *   loadgen echo       --port P [--connections 100] [--in-flight 16] [--payload 32]
 *   loadgen echo-fixed --port P [--connections 100] [--rate 100000] [--tick-us 100] [--payload 32]
 *   loadgen broadcast  --port P [--receivers 500] [--window 256] [--payload 64]
 *   loadgen rooms      --port P [--connections 1000] [--room-size 8] [--packets-per-second 20] [--tick-us 1000] [--payload 32]
 *                      [--in-flight N] (a closed loop instead of pacing: each player keeps N packets outstanding, see run_rooms)
 *   loadgen conns      --port P [--connections 10000] [--warm-connections 500] [--hold-ms 5000]
 *   loadgen http       --port P [--connections 100] [--depth 1] [--method GET] [--path /] [--body 0] [--expect TEXT]
 *   common: [--warmup-ms 1000] [--duration-ms 5000] [--ws /path] (--ws: not http)
 *   loadgen serve      (not a load generator: the reference server `c:epoll`, see run_serve)
 *   loadgen selftest   (checks SHA-1 and base64 against known vectors; the runner calls it after a build)
 *
 * `--ws /path` plays the same workload over WebSocket (RFC 6455) instead of
 * the framed protocol: each connection opens with an HTTP upgrade to /path
 * (the 101 and Sec-WebSocket-Accept checked, with a SHA-1 and base64 of this
 * file's own), and one binary message carries one packet, its body the framed
 * body (u16 LE packet id | payload). Frames this side sends are masked with a
 * fresh key each (section 5.3); the server's are parsed with 2-, 4- and
 * 10-byte headers and must be unmasked. Mask and handshake keys come from
 * splitmix64 seeded from /dev/urandom: RFC 6455 asks a browser for keys an
 * attacker cannot predict, which guards proxies against cache poisoning by
 * hostile page scripts; a load generator on loopback has no such adversary,
 * and a fast generator keeps masking off its critical path. Every check of
 * the framed modes (sequence, loss, order, unexpected or malformed frames)
 * applies unchanged.
 *
 * `http` is not the bench protocol but keep-alive HTTP/1.1 (see run_http):
 * each connection sends `depth` requests in one write and the next `depth`
 * once all of them are answered, as wrk does with a pipelining script, and
 * every response is parsed (status line, Content-Length, Connection) and
 * checked: status 200, the expected body, the connection kept.
 *
 * It talks to bench/run.ts the way the JS load generators do over IPC, but as
 * JSON lines on stdout ({"type":"window-start"}, {"type":"window-end"},
 * {"type":"result","result":{...}}; conns adds "ready" and "holding") and takes
 * commands on stdin ("go", "release"). When stdin is a pipe and it closes,
 * the program exits: an orchestrator that died takes its load generator along.
 *
 * Costs are kept off the per-frame path: one read of up to 256 KiB per ready
 * socket per wake-up, frames walked in place by their length prefixes, and all
 * frames for one socket in one wake-up leave in one write. Latency comes from
 * a CLOCK_MONOTONIC timestamp carried in each payload, read once per read(),
 * and goes into a log-linear histogram (about 1 % buckets) with integer math.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEADER_BYTES 6
#define ID_ECHO 1
#define ID_BROADCAST 2
#define ID_COUNT 3
#define ID_JOIN 4
#define ID_ROOM 5
/* The largest payload this program sends, and so the largest frame it expects back. */
#define MAX_PAYLOAD 1024
/* The largest frame either protocol carries: a WebSocket header is up to 14 bytes (10 + a mask key). */
#define MAX_FRAME (14 + 2 + MAX_PAYLOAD)
/* One read takes up to this much: at 70-byte frames, over 3,700 deliveries per system call. */
#define READ_BYTES (256 * 1024)
/* Bytes a socket may hold back in this process when the kernel refuses them (rare; bounded). */
#define OUT_LIMIT (4 * 1024 * 1024)
#define MAX_EVENTS 1024
#define CONNECT_BATCH 250
#define CONNECT_TIMEOUT_MS 10000
#define SETTLE_TIMEOUT_MS 5000
/* http: the largest request body sent and response body expected. A response over MAX_FRAME bytes (head and body) is malformed here. */
#define HTTP_MAX_BODY 512

/* The WebSocket path with --ws; NULL for the framed protocol. */
static const char *ws_path;

#define EV_STDIN UINT64_MAX
#define EV_TIMER (UINT64_MAX - 1)

/* ---------------------------------------------------------------- basics */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(uint64_t *user, uint64_t *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
  *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
  return *user + *sys;
}

static inline uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint16_t rd16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* ------------------------------------------- randomness, SHA-1 and base64 */

/*
 * splitmix64, seeded once from /dev/urandom: mask keys (one per frame sent)
 * and handshake keys. Not a CSPRNG; see the top of this file for why that is
 * fine here.
 */
static uint64_t rng_state;

static void rng_seed(void) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &rng_state, sizeof(rng_state)) != (ssize_t)sizeof(rng_state)) die("cannot read /dev/urandom");
  close(fd);
}

static inline uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* One 64-byte block of SHA-1 (FIPS 180-4, section 6.1.2). */
static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) f = (b & c) | (~b & d), k = 0x5a827999;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ed9eba1;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
    else f = b ^ c ^ d, k = 0xca62c1d6;
    uint32_t t = rol32(a, 5) + f + e + k + w[i];
    e = d, d = c, c = rol32(b, 30), b = a, a = t;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* SHA-1 of n bytes: whole blocks, then the tail padded with 0x80, zeros and the bit length (big-endian). */
static void sha1(const uint8_t *msg, size_t n, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) sha1_block(h, msg + i);
  uint8_t tail[128] = {0};
  size_t rest = n - i, blocks = rest + 1 + 8 <= 64 ? 1 : 2;
  memcpy(tail, msg + i, rest);
  tail[rest] = 0x80;
  for (int j = 0; j < 8; j++) tail[blocks * 64 - 1 - j] = (uint8_t)(((uint64_t)n * 8) >> (8 * j));
  for (size_t b = 0; b < blocks; b++) sha1_block(h, tail + 64 * b);
  for (int j = 0; j < 20; j++) out[j] = (uint8_t)(h[j / 4] >> (24 - 8 * (j % 4)));
}

/* Standard base64 with padding; `out` gets 4 * ceil(n / 3) characters and a NUL. */
static void base64(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    *out++ = digits[v >> 18 & 63];
    *out++ = digits[v >> 12 & 63];
    *out++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
    *out++ = i + 2 < n ? digits[v & 63] : '=';
  }
  *out = '\0';
}

/* RFC 6455 section 1.3: Sec-WebSocket-Accept = base64(SHA-1(key + this GUID)). */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void ws_accept_for(const char *key, char out[29]) {
  char joined[128];
  int n = snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID);
  uint8_t digest[20];
  sha1((const uint8_t *)joined, (size_t)n, digest);
  base64(digest, 20, out);
}

/* ------------------------------------------------------ frames on the wire */

/*
 * Framed: u32 LE length | body. WebSocket, this side to the server: FIN +
 * opcode, the mask bit and a 7-bit length (or 126 and a u16 BE), the 4-byte
 * mask key, then the body XORed with it. The body is the same in both: u16 LE
 * packet id | payload.
 */
#define WS_BINARY 0x2
#define WS_CLOSE 0x8
#define WS_PING 0x9
#define WS_PONG 0xa

/* Bytes before the body of a frame this side sends. */
static inline size_t frame_prefix(size_t body_len) { return ws_path == NULL ? 4 : (body_len < 126 ? 2 : 4) + 4; }

/* Writes the prefix of a frame this side sends, all but a WebSocket frame's mask key (see seal). */
static void write_prefix(uint8_t *frame, size_t body_len, int opcode) {
  if (ws_path == NULL) {
    wr32(frame, (uint32_t)body_len);
    return;
  }
  frame[0] = (uint8_t)(0x80 | opcode);
  if (body_len < 126) {
    frame[1] = (uint8_t)(0x80 | body_len);
  } else {
    frame[1] = 0x80 | 126;
    frame[2] = (uint8_t)(body_len >> 8);
    frame[3] = (uint8_t)body_len;
  }
}

/* WebSocket: a fresh mask key for a frame whose body is written in full, and the body masked with it. */
static inline void seal(uint8_t *frame, size_t prefix, size_t body_len) {
  if (ws_path == NULL) return;
  uint32_t key = (uint32_t)rng_next();
  uint8_t *k = frame + prefix - 4, *p = frame + prefix;
  memcpy(k, &key, 4);
  size_t i = 0;
  /* Four bytes at a time: the key's bytes in memory order line up with the body's. */
  for (; i + 4 <= body_len; i += 4) {
    uint32_t v;
    memcpy(&v, p + i, 4);
    v ^= key;
    memcpy(p + i, &v, 4);
  }
  for (; i < body_len; i++) p[i] ^= k[i & 3];
}

/*
 * The next frame from the server in p[0, avail). Returns its whole length,
 * with the body at p + *body_at, *body_len long, and its opcode (always
 * WS_BINARY when framed); 0 while it has not all arrived; -1 when it is
 * malformed. WebSocket frames from a server are never masked (section 5.1),
 * have no reserved bit set (no extension was agreed) and, here, are never
 * fragmented: every message these servers send is one short frame. Lengths
 * use the 2-, 4- or 10-byte header (7-bit, 16-bit or 64-bit length).
 */
static inline long next_frame(const uint8_t *p, size_t avail, uint32_t *body_at, uint32_t *body_len, int *opcode) {
  if (ws_path == NULL) {
    if (avail < 4) return 0;
    uint32_t len = rd32(p);
    if (len < 2 || len > 2 + MAX_PAYLOAD) return -1;
    if (avail < 4 + (size_t)len) return 0;
    *body_at = 4;
    *body_len = len;
    *opcode = WS_BINARY;
    return 4 + (long)len;
  }
  if (avail < 2) return 0;
  uint8_t b0 = p[0], b1 = p[1];
  if ((b0 & 0xf0) != 0x80 || (b1 & 0x80) != 0) return -1;
  int op = b0 & 0x0f;
  if (op != WS_BINARY && op != WS_CLOSE && op != WS_PING && op != WS_PONG) return -1;
  uint64_t len = b1 & 0x7f;
  uint32_t at = 2;
  if (len == 126) {
    if (avail < 4) return 0;
    len = (uint64_t)p[2] << 8 | p[3];
    at = 4;
  } else if (len == 127) {
    if (avail < 10) return 0;
    len = 0;
    for (int j = 0; j < 8; j++) len = len << 8 | p[2 + j];
    at = 10;
  }
  if (len > 2 + MAX_PAYLOAD || (op == WS_BINARY && len < 2) || (op != WS_BINARY && len > 125)) return -1;
  if (avail < at + len) return 0;
  *body_at = at;
  *body_len = (uint32_t)len;
  *opcode = op;
  return (long)(at + len);
}

static void emit_line(const char *line);

/* selftest: the handshake's hash and encoding against known answers (FIPS 180 examples, RFC 6455 section 1.3). */
static int run_selftest(void) {
  static const struct {
    const char *in, *hex;
  } vectors[] = {
      {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
      {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
      {"The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
  };
  for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
    uint8_t d[20];
    char hex[41];
    sha1((const uint8_t *)vectors[v].in, strlen(vectors[v].in), d);
    for (int j = 0; j < 20; j++) snprintf(hex + 2 * j, 3, "%02x", d[j]);
    if (strcmp(hex, vectors[v].hex) != 0) die("selftest: SHA-1('%s') = %s, expected %s", vectors[v].in, hex, vectors[v].hex);
  }
  /* 1,000,000 x 'a' exercises many whole blocks. */
  uint8_t *million = malloc(1000000);
  if (million == NULL) die("out of memory");
  memset(million, 'a', 1000000);
  uint8_t d[20];
  char hex[41];
  sha1(million, 1000000, d);
  free(million);
  for (int j = 0; j < 20; j++) snprintf(hex + 2 * j, 3, "%02x", d[j]);
  if (strcmp(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") != 0) die("selftest: SHA-1 of a million 'a' = %s", hex);
  char b64[16];
  base64((const uint8_t *)"f", 1, b64);
  if (strcmp(b64, "Zg==") != 0) die("selftest: base64('f') = %s", b64);
  base64((const uint8_t *)"fo", 2, b64);
  if (strcmp(b64, "Zm8=") != 0) die("selftest: base64('fo') = %s", b64);
  base64((const uint8_t *)"foobar", 6, b64);
  if (strcmp(b64, "Zm9vYmFy") != 0) die("selftest: base64('foobar') = %s", b64);
  char accept[29];
  ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", accept);
  if (strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) die("selftest: the RFC 6455 example key gives %s", accept);
  emit_line("{\"type\":\"selftest\",\"ok\":true}");
  return 0;
}

/* ------------------------------------------------------------- histogram */

/* Log-linear: values below 64 ns exact, then 64 buckets per power of two (1.6 % at worst). */
#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB + 58 * HIST_SUB)

typedef struct {
  uint64_t counts[HIST_BUCKETS];
  uint64_t total;
} histogram;

static inline void hist_record(histogram *h, uint64_t ns) {
  unsigned index;
  if (ns < HIST_SUB) {
    index = (unsigned)ns;
  } else {
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = msb - 6;
    index = HIST_SUB + shift * HIST_SUB + (unsigned)((ns >> shift) & (HIST_SUB - 1));
    if (index >= HIST_BUCKETS) index = HIST_BUCKETS - 1;
  }
  h->counts[index]++;
  h->total++;
}

/* The value (in µs) below which a fraction p of the samples lie: the middle of its bucket. -1 when empty. */
static double hist_percentile_us(const histogram *h, double p) {
  if (h->total == 0) return -1;
  uint64_t rank = (uint64_t)(p * (double)h->total);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen < rank) continue;
    if (i < HIST_SUB) return i / 1000.0;
    unsigned shift = (i - HIST_SUB) / HIST_SUB;
    uint64_t sub = (i - HIST_SUB) % HIST_SUB;
    double lower = (double)((HIST_SUB + sub) << shift);
    double width = (double)(1ull << shift);
    return (lower + width / 2) / 1000.0;
  }
  return -1;
}

/* ----------------------------------------------------------------- flags */

typedef struct {
  const char *mode;
  int port;
  long warmup_ms, duration_ms;
  long connections, in_flight, payload, rate, tick_us, receivers, window, warm_connections, hold_ms;
  /* Whether --in-flight was given: rooms is paced without it, a closed loop with it. */
  int in_flight_given;
  /* rooms */
  long room_size, per_second;
  /* http */
  long depth, body;
  const char *method, *path, *expect;
} options;

static long flag_long(const char *name, const char *value, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) die("--%s must be an integer in %ld..%ld, got '%s'", name, min, max, value);
  return v;
}

static options parse(int argc, char **argv) {
  options o = {0};
  if (argc < 2) die("usage: loadgen echo|echo-fixed|broadcast|rooms|conns|http --port P [--ws /path] [flags] (see the top of loadgen.c)");
  o.mode = argv[1];
  o.warmup_ms = 1000;
  o.duration_ms = 5000;
  o.connections = -1;
  o.in_flight = 16;
  o.payload = -1;
  o.rate = 100000;
  o.tick_us = 100;
  o.receivers = 500;
  o.window = 256;
  o.warm_connections = 500;
  o.hold_ms = 5000;
  o.room_size = 8;
  o.per_second = 20;
  o.depth = 1;
  o.method = "GET";
  o.path = "/";
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) die("bad argument '%s'", a);
    const char *name = a + 2, *v = argv[++i];
    if (!strcmp(name, "port")) o.port = (int)flag_long(name, v, 1, 65535);
    else if (!strcmp(name, "warmup-ms")) o.warmup_ms = flag_long(name, v, 0, 600000);
    else if (!strcmp(name, "duration-ms")) o.duration_ms = flag_long(name, v, 1, 600000);
    else if (!strcmp(name, "connections")) o.connections = flag_long(name, v, 1, 60000);
    else if (!strcmp(name, "in-flight")) o.in_flight = flag_long(name, v, 1, 1024), o.in_flight_given = 1;
    else if (!strcmp(name, "payload")) o.payload = flag_long(name, v, 16, MAX_PAYLOAD);
    else if (!strcmp(name, "rate")) o.rate = flag_long(name, v, 1, 100000000);
    else if (!strcmp(name, "tick-us")) o.tick_us = flag_long(name, v, 10, 100000);
    else if (!strcmp(name, "receivers")) o.receivers = flag_long(name, v, 1, 60000);
    else if (!strcmp(name, "window")) o.window = flag_long(name, v, 1, 1 << 20);
    else if (!strcmp(name, "warm-connections")) o.warm_connections = flag_long(name, v, 0, 10000);
    else if (!strcmp(name, "hold-ms")) o.hold_ms = flag_long(name, v, 0, 600000);
    else if (!strcmp(name, "room-size")) o.room_size = flag_long(name, v, 2, 1024);
    else if (!strcmp(name, "packets-per-second")) o.per_second = flag_long(name, v, 1, 100000);
    else if (!strcmp(name, "depth")) o.depth = flag_long(name, v, 1, 1024);
    else if (!strcmp(name, "body")) o.body = flag_long(name, v, 0, HTTP_MAX_BODY);
    else if (!strcmp(name, "method")) {
      if (strcmp(v, "GET") != 0 && strcmp(v, "POST") != 0) die("--method is GET or POST, got '%s'", v);
      o.method = v;
    } else if (!strcmp(name, "path")) {
      if (v[0] != '/' || strlen(v) > 200 || strpbrk(v, " \r\n") != NULL) die("--path takes a path such as /echo, got '%s'", v);
      o.path = v;
    } else if (!strcmp(name, "expect")) {
      if (strlen(v) > HTTP_MAX_BODY) die("--expect is at most %d bytes", HTTP_MAX_BODY);
      o.expect = v;
    }
    else if (!strcmp(name, "ws")) {
      if (v[0] != '/' || strlen(v) > 200 || strpbrk(v, " \r\n") != NULL) die("--ws takes a path such as /play, got '%s'", v);
      ws_path = v;
    } else die("unknown flag --%s", name);
  }
  if (ws_path != NULL && (!strcmp(o.mode, "serve") || !strcmp(o.mode, "selftest") || !strcmp(o.mode, "http"))) {
    die("--ws is for the load-generating modes of the bench protocol");
  }
  if (o.port == 0 && strcmp(o.mode, "serve") != 0 && strcmp(o.mode, "selftest") != 0) die("--port is required");
  return o;
}

/* ------------------------------------------------------------ JSON output */

static char json[8192];
static size_t json_len;

static void jput(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(json + json_len, sizeof(json) - json_len, fmt, ap);
  va_end(ap);
  if (n > 0) json_len += (size_t)n;
  if (json_len >= sizeof(json)) die("JSON output too long");
}

/* A number, or null for "no value" (negative or not finite): JSON has no NaN. */
static void jnum(const char *key, double v) {
  if (v < 0 || v != v) jput("%s\"%s\":null", json[json_len - 1] == '{' ? "" : ",", key);
  else jput("%s\"%s\":%.3f", json[json_len - 1] == '{' ? "" : ",", key, v);
}

/* Metrics are collected in `json` as {"a":1,"b":2 and handed out without the brace. */
static char metrics_json[sizeof(json)];

static void metrics_begin(void) {
  json[0] = '{';
  json_len = 1;
}

static const char *metrics_end(void) {
  memcpy(metrics_json, json + 1, json_len);
  metrics_json[json_len - 1] = '\0';
  return metrics_json;
}

static void emit_line(const char *line) {
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void emit_type(const char *type) {
  char line[128];
  snprintf(line, sizeof(line), "{\"type\":\"%s\"}", type);
  emit_line(line);
}

#define MAX_ERRORS 8
static char errors[MAX_ERRORS][256];
static int error_count;

static void add_error(const char *fmt, ...) {
  if (error_count == MAX_ERRORS) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errors[error_count++], sizeof(errors[0]), fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------ connections */

typedef struct {
  int fd;
  int closed;
  int connecting;
  /* echo: the sequence number the next frame sent will carry; broadcast sender likewise. */
  uint32_t next_seq;
  /* The sequence number expected next from the server. */
  uint32_t expected;
  /* Frames missing (a jump forward) or out of place (a repeat or a step back). */
  uint64_t gaps;
  /* http: when the batch in flight was sent. */
  uint64_t sent_at;
  /* The start of a frame that straddles two reads. */
  uint32_t carry_len;
  uint8_t *carry;
  /* Bytes the kernel did not take yet. */
  uint8_t *out;
  uint32_t out_len, out_cap;
  /* WebSocket: the server's answer to the upgrade so far, while it is awaited, and what it must accept with. */
  int handshaking;
  uint8_t *hs;
  uint32_t hs_len;
  char accept[29];
} conn;

static int ep = -1;
static conn *conns;
static long nconns;
static uint8_t *rbuf; /* MAX_FRAME of room for a carried frame start, then READ_BYTES */
static int stdin_is_pipe;
static uint64_t unexpected_frames, unexpected_closes, protocol_errors, close_frames, pings_answered;
static int running = 1; /* until the end of the measured window */

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void ep_ctl(int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) die("epoll_ctl: %s", strerror(errno));
}

/* Room for the server's answer to an upgrade: a 101 head is about 130 bytes; a refusal's body is cut here. */
#define HANDSHAKE_BYTES 4096

/* WebSocket: sends the opening handshake (section 4.1) on a connection that has just connected. */
static void ws_handshake_start(conn *c, int port) {
  uint8_t raw[16];
  uint64_t r0 = rng_next(), r1 = rng_next();
  memcpy(raw, &r0, 8);
  memcpy(raw + 8, &r1, 8);
  char key[25];
  base64(raw, 16, key);
  ws_accept_for(key, c->accept);
  char request[512];
  int n = snprintf(request, sizeof(request),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   ws_path, port, key);
  if (send(c->fd, request, (size_t)n, MSG_NOSIGNAL) != n) die("sending the WebSocket upgrade: %s", strerror(errno));
  c->hs = malloc(HANDSHAKE_BYTES);
  if (c->hs == NULL) die("out of memory");
  c->hs_len = 0;
  c->handshaking = 1;
}

/*
 * WebSocket: reads the server's answer to the upgrade. Returns 1 once it has
 * all arrived and is a 101 with the right Sec-WebSocket-Accept, 0 while more
 * is to come; anything else ends the program, saying what the server said.
 * Bytes right behind the answer (frames a server sent at once) go to the
 * connection's carry, where its first read will find them.
 */
static int ws_handshake_read(conn *c, int port) {
  ssize_t n = recv(c->fd, c->hs + c->hs_len, HANDSHAKE_BYTES - 1 - c->hs_len, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) {
    c->hs[c->hs_len] = '\0';
    die("127.0.0.1:%d%s closed the connection during the WebSocket handshake (%s)%s%s", port, ws_path, n == 0 ? "EOF" : strerror(errno),
        c->hs_len > 0 ? "; it said: " : "", (char *)c->hs);
  }
  c->hs_len += (uint32_t)n;
  c->hs[c->hs_len] = '\0';
  uint8_t *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
  if (end == NULL) {
    if (c->hs_len == HANDSHAKE_BYTES - 1) die("the answer to the WebSocket upgrade has no end of head within %d bytes", HANDSHAKE_BYTES);
    return 0;
  }
  size_t head = (size_t)(end - c->hs) + 4;
  char *text = (char *)c->hs;
  if (strncmp(text, "HTTP/1.1 101", 12) != 0 || (text[12] != ' ' && text[12] != '\r')) {
    die("the WebSocket upgrade to 127.0.0.1:%d%s was refused: %s", port, ws_path, text);
  }
  *end = '\0';
  const char *value = NULL;
  for (char *line = strstr(text, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
      value = line + 21;
      break;
    }
  }
  if (value == NULL) die("the server's 101 has no Sec-WebSocket-Accept: %s", text);
  while (*value == ' ' || *value == '\t') value++;
  size_t len = strcspn(value, " \t\r");
  if (len != 28 || memcmp(value, c->accept, 28) != 0) {
    die("Sec-WebSocket-Accept is '%.*s', expected '%s' (base64 of SHA-1 of the key and the GUID)", (int)len, value, c->accept);
  }
  size_t rest = c->hs_len - head;
  if (rest > 0) {
    if (c->carry == NULL || rest > MAX_FRAME) {
      /* conns holds no carry: a server that speaks first to an idle connection is counted, as a framed one would be. */
      unexpected_frames++;
    } else {
      memcpy(c->carry, c->hs + head, rest);
      c->carry_len = (uint32_t)rest;
    }
  }
  free(c->hs);
  c->hs = NULL;
  c->handshaking = 0;
  return 1;
}

/* Opens connections [from, to) to 127.0.0.1:port and waits until every one is up. */
static void connect_range(long from, long to, int port, int nodelay) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  long pending = 0;
  for (long i = from; i < to; i++) {
    conn *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket (connection %ld): %s (raise ulimit -n)", i, strerror(errno));
    if (nodelay) set_nodelay(c->fd);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
      die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    }
    ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLOUT, (uint64_t)i);
    c->connecting = 1;
    pending++;
  }
  uint64_t deadline = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
  struct epoll_event evs[MAX_EVENTS];
  while (pending > 0) {
    if (now_ns() > deadline) {
      die("%ld connections to 127.0.0.1:%d still %s after %d ms", pending, port, ws_path != NULL ? "connecting or upgrading" : "pending",
          CONNECT_TIMEOUT_MS);
    }
    int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
    for (int k = 0; k < n; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN || i == EV_TIMER || (long)i < from || (long)i >= to) continue;
      conn *c = &conns[i];
      if (c->handshaking) {
        if (ws_handshake_read(c, port)) pending--;
        continue;
      }
      if (!c->connecting) continue;
      c->connecting = 0;
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) die("connect to 127.0.0.1:%d: %s", port, strerror(err));
      ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN, i);
      /* WebSocket: the connection counts as up once the upgrade is through. */
      if (ws_path != NULL) ws_handshake_start(c, port);
      else pending--;
    }
  }
}

/* Closes a connection; `reset` sends RST (SO_LINGER 0) so no TIME_WAIT is left behind. */
static void close_conn(conn *c, int reset) {
  if (c->fd < 0) return;
  if (reset) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(c->fd); /* also leaves the epoll set */
  c->fd = -1;
}

/* Sends bytes, keeping what the kernel does not take and writing it on EPOLLOUT. */
static void conn_send(conn *c, uint64_t index, const uint8_t *p, size_t n) {
  if (c->fd < 0) return;
  if (c->out_len == 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno != EAGAIN) {
        c->closed = 1;
        return;
      }
      w = 0;
    }
    if ((size_t)w == n) return;
    p += w;
    n -= (size_t)w;
    ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, index);
  }
  if (c->out_len + n > OUT_LIMIT) die("connection %lu: over %d bytes the kernel would not take", (unsigned long)index, OUT_LIMIT);
  if (c->out_len + n > c->out_cap) {
    c->out_cap = c->out_len + (uint32_t)n > 2 * c->out_cap ? c->out_len + (uint32_t)n : 2 * c->out_cap;
    c->out = realloc(c->out, c->out_cap);
    if (c->out == NULL) die("out of memory");
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += (uint32_t)n;
}

static void conn_flush(conn *c, uint64_t index) {
  if (c->out_len == 0 || c->fd < 0) return;
  ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) {
    if (errno != EAGAIN) c->closed = 1;
    return;
  }
  memmove(c->out, c->out + w, c->out_len - (size_t)w);
  c->out_len -= (uint32_t)w;
  if (c->out_len == 0) ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN, index);
}

/*
 * WebSocket: a control frame from the server inside a traffic workload. A
 * ping is answered with a pong carrying its payload (section 5.5.2), masked
 * like every frame this side sends; a pong is ignored; a close frame means
 * the server is closing the connection, which no workload expects.
 */
static void ws_control(conn *c, uint64_t index, int opcode, const uint8_t *body, uint32_t len) {
  if (opcode == WS_PING) {
    uint8_t frame[6 + 125];
    if (len > 125) len = 125; /* next_frame refuses longer control frames already */
    write_prefix(frame, len, WS_PONG);
    memcpy(frame + 6, body, len);
    seal(frame, 6, len);
    conn_send(c, index, frame, 6 + len);
    pings_answered++;
  } else if (opcode == WS_CLOSE) {
    close_frames++;
    c->closed = 1;
  }
}

/*
 * Reads once from a connection into rbuf, behind the carried start of a
 * straddling frame. Returns the end of the valid bytes in rbuf (frames start
 * at 0), 0 when there was nothing to read, and marks the connection closed on
 * EOF or error.
 */
static size_t conn_read(conn *c) {
  memcpy(rbuf, c->carry, c->carry_len);
  ssize_t n = recv(c->fd, rbuf + c->carry_len, READ_BYTES, MSG_DONTWAIT);
  if (n > 0) return c->carry_len + (size_t)n;
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) c->closed = 1;
  return 0;
}

/* Keeps the bytes of an incomplete frame at rbuf[pos..end) for the next read. */
static void conn_keep(conn *c, size_t pos, size_t end) {
  size_t rest = end - pos;
  if (rest > MAX_FRAME) {
    protocol_errors++;
    rest = 0;
  }
  memcpy(c->carry, rbuf + pos, rest);
  c->carry_len = (uint32_t)rest;
}

static void alloc_conns(long n) {
  nconns = n;
  conns = calloc((size_t)n, sizeof(conn));
  if (conns == NULL) die("out of memory");
  for (long i = 0; i < n; i++) conns[i].fd = -1;
}

static void alloc_carries(void) {
  for (long i = 0; i < nconns; i++) {
    conns[i].carry = malloc(MAX_FRAME);
    if (conns[i].carry == NULL) die("out of memory");
  }
}

/*
 * Asks the server how many connections it has, on connection `c` (which must
 * have nothing else in flight). Returns -1 when no answer comes in time.
 */
static long query_count(conn *c, int timeout_ms) {
  uint8_t frame[16];
  size_t prefix = frame_prefix(2);
  write_prefix(frame, 2, WS_BINARY);
  wr16(frame + prefix, ID_COUNT);
  seal(frame, prefix, 2);
  if (send(c->fd, frame, prefix + 2, MSG_NOSIGNAL) != (ssize_t)(prefix + 2)) die("send COUNT: %s", strerror(errno));
  /* The reply's body is the id and a u32; its header 4 bytes framed, 2 over WebSocket. */
  size_t want = (ws_path == NULL ? 4 : 2) + 6;
  uint8_t reply[16];
  size_t got = 0;
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
  while (got < want) {
    long left = (long)((deadline - now_ns()) / 1000000);
    if ((int64_t)(deadline - now_ns()) <= 0) return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, (int)(left < 1 ? 1 : left)) <= 0) continue;
    ssize_t n = recv(c->fd, reply + got, want - got, MSG_DONTWAIT);
    if (n == 0) die("the server closed the control connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("recv COUNT: %s", strerror(errno));
    }
    got += (size_t)n;
  }
  uint32_t at = 0, len = 0;
  int opcode = 0;
  long whole = next_frame(reply, got, &at, &len, &opcode);
  if (whole != (long)want || opcode != WS_BINARY || len != 6 || rd16(reply + at) != ID_COUNT) {
    die("unexpected reply to COUNT (%zu bytes, first 0x%02x 0x%02x)", got, reply[0], reply[1]);
  }
  return (long)rd32(reply + at + 2);
}

/*
 * Polls the server's connection count until it is `want`; false on timeout.
 * A query that gets no answer at all is fatal rather than retried, so a late
 * reply can never be taken for the answer to a later query.
 */
static int wait_count(conn *control, long want, int timeout_ms) {
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
  for (;;) {
    long have = query_count(control, 10000);
    if (have < 0) die("the server did not answer a COUNT query within 10 s");
    if (have == want) return 1;
    if (now_ns() > deadline) {
      fprintf(stderr, "loadgen: the server reports %ld connections, expected %ld\n", have, want);
      return 0;
    }
    usleep(2000);
  }
}

/* Reads a command line from stdin; returns 0 on EOF. */
static int read_command(char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, buf + len, 1);
    if (n <= 0) return 0;
    if (buf[len] == '\n' || len + 2 >= cap) break;
    len++;
  }
  buf[len] = '\0';
  return 1;
}

/* ----------------------------------------------------- the measured window */

typedef struct {
  uint64_t start_ns, start_user, start_sys;
  double ms, cpu_percent, user_percent, sys_percent;
} window_t;

static void window_open(window_t *w) {
  cpu_ns(&w->start_user, &w->start_sys);
  w->start_ns = now_ns();
  emit_type("window-start");
}

static void window_close(window_t *w) {
  uint64_t user, sys;
  cpu_ns(&user, &sys);
  uint64_t elapsed = now_ns() - w->start_ns;
  w->ms = (double)elapsed / 1e6;
  w->user_percent = 100.0 * (double)(user - w->start_user) / (double)elapsed;
  w->sys_percent = 100.0 * (double)(sys - w->start_sys) / (double)elapsed;
  w->cpu_percent = w->user_percent + w->sys_percent;
  emit_type("window-end");
}

/* Waits for events until the next phase boundary of a timed mode (0 warm-up:
 * the window's start, 1 measuring: its end, 2 settling: 10 ms polls). */
static int wait_phase(int ep, struct epoll_event *evs, int phase, uint64_t window_at, uint64_t end_at, uint64_t t) {
  uint64_t next = phase == 0 ? window_at : phase == 1 ? end_at : t + 10000000ull;
  int timeout = (int)((next > t ? next - t : 0) / 1000000) + 1;
  return epoll_wait(ep, evs, MAX_EVENTS, timeout);
}

static void emit_result(double rate, const window_t *w, const char *metrics) {
  json_len = 0;
  jput("{\"type\":\"result\",\"result\":{\"rate\":%.3f,\"windowMs\":%.3f,\"loadCpuPercent\":%.3f,\"metrics\":{%s", rate, w->ms,
       w->cpu_percent, metrics);
  jput(",\"loadUserPercent\":%.3f,\"loadSysPercent\":%.3f},\"errors\":[", w->user_percent, w->sys_percent);
  for (int i = 0; i < error_count; i++) jput("%s\"%s\"", i == 0 ? "" : ",", errors[i]);
  jput("]}}");
  emit_line(json);
}

static void common_errors(void) {
  if (unexpected_frames > 0) add_error("%llu unexpected frames", (unsigned long long)unexpected_frames);
  if (unexpected_closes > 0) add_error("%llu connections closed by the server during the run", (unsigned long long)unexpected_closes);
  if (protocol_errors > 0) add_error("%llu malformed frames", (unsigned long long)protocol_errors);
  if (close_frames > 0) add_error("%llu WebSocket close frames from the server", (unsigned long long)close_frames);
}

static void watch_stdin(void) {
  struct stat st;
  if (fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    stdin_is_pipe = 1;
    ep_ctl(EPOLL_CTL_ADD, 0, EPOLLIN, EV_STDIN);
  }
}

/* stdin readable in a traffic workload: only EOF is expected, and it means the orchestrator is gone. */
static void on_stdin(void) {
  char buf[64];
  ssize_t n = read(0, buf, sizeof(buf));
  if (n == 0) exit(3);
}

/* ------------------------------------------------------------------ echo */

/*
 * echo and echo-fixed: the payload is [u64 send time ns][u32 seq][u32 connection][zeros].
 * Every echo is checked to be the next sequence number of its connection.
 */
typedef struct {
  int fixed;
  /* A frame sent is `prefix` bytes (length, or WebSocket header and mask key), the packet id and the payload. */
  long payload, prefix, frame_bytes;
  histogram latency;
  int recording;
  uint64_t echoed;
  uint8_t *scratch;
  long scratch_frames;
} echo_state;

static void echo_fill(echo_state *s, conn *c, uint64_t index, uint8_t *p, long n, uint64_t ts) {
  for (long k = 0; k < n; k++, p += s->frame_bytes) {
    uint8_t *body = p + s->prefix;
    /* Masking scrambled the last use of this slot: a WebSocket frame's body is written in full. */
    if (ws_path != NULL) {
      wr16(body, ID_ECHO);
      memset(body + 2 + 16, 0, (size_t)s->payload - 16);
    }
    wr64(body + 2, ts);
    wr32(body + 2 + 8, c->next_seq++);
    wr32(body + 2 + 12, (uint32_t)index);
    seal(p, (size_t)s->prefix, (size_t)(2 + s->payload));
  }
}

static void echo_send(echo_state *s, uint64_t index, long n, uint64_t ts) {
  conn *c = &conns[index];
  while (n > 0) {
    long k = n < s->scratch_frames ? n : s->scratch_frames;
    echo_fill(s, c, index, s->scratch, k, ts);
    conn_send(c, index, s->scratch, (size_t)(k * s->frame_bytes));
    n -= k;
  }
}

/* Reads one connection's echoes; returns how many arrived. */
static long echo_read(echo_state *s, uint64_t index) {
  conn *c = &conns[index];
  size_t end = conn_read(c);
  if (end == 0) return 0;
  uint64_t now = now_ns();
  size_t pos = 0;
  long n = 0;
  uint32_t want_len = (uint32_t)(2 + s->payload);
  for (;;) {
    uint32_t at, len;
    int opcode;
    long whole = next_frame(rbuf + pos, end - pos, &at, &len, &opcode);
    if (whole < 0) {
      protocol_errors++;
      c->closed = 1;
      return n;
    }
    if (whole == 0) break;
    const uint8_t *body = rbuf + pos + at;
    if (opcode != WS_BINARY) {
      ws_control(c, index, opcode, body, len);
      if (c->closed) return n;
    } else if (len != want_len || rd16(body) != ID_ECHO || rd32(body + 2 + 12) != (uint32_t)index) {
      unexpected_frames++;
    } else {
      uint32_t seq = rd32(body + 2 + 8);
      if (seq != c->expected) c->gaps += seq > c->expected ? seq - c->expected : 1;
      c->expected = seq + 1;
      if (s->recording) hist_record(&s->latency, now - rd64(body + 2));
      n++;
    }
    pos += (size_t)whole;
  }
  conn_keep(c, pos, end);
  return n;
}

/*
 * A fixed offered load: a timer every `tick_us`, and on each tick the sends
 * that have fallen due since the start at `rate` per second. A send counts
 * as late when it is more than a tick and 1 ms behind its schedule (the
 * oldest of a tick's sends fell due up to a tick ago by design).
 */
typedef struct {
  int timer;
  double rate;
  uint64_t tick_ns, start, scheduled, window_scheduled, late, max_lag;
} pacer;

static void pacer_start(pacer *p, double rate, long tick_us) {
  p->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (p->timer < 0) die("timerfd_create: %s", strerror(errno));
  struct itimerspec its = {.it_interval = {0, tick_us * 1000}, .it_value = {0, tick_us * 1000}};
  timerfd_settime(p->timer, 0, &its, NULL);
  ep_ctl(EPOLL_CTL_ADD, p->timer, EPOLLIN, EV_TIMER);
  p->rate = rate;
  p->tick_ns = (uint64_t)tick_us * 1000ull;
  p->start = now_ns();
  p->scheduled = p->window_scheduled = p->late = p->max_lag = 0;
}

/* The measured window starts: late sends and the schedule are counted from here. */
static void pacer_open_window(pacer *p) {
  p->window_scheduled = p->scheduled;
  p->late = p->max_lag = 0;
}

static void pacer_stop(pacer *p) {
  if (p->timer >= 0) close(p->timer);
  p->timer = -1;
}

/* The timer fired: how many sends are due now (0 for none), taken as scheduled. */
static uint64_t pacer_due(pacer *p, uint64_t *now) {
  uint64_t expirations;
  if (p->timer < 0 || read(p->timer, &expirations, sizeof(expirations)) < 0) return 0;
  *now = now_ns();
  uint64_t target = (uint64_t)((double)(*now - p->start) * p->rate / 1e9);
  if (target <= p->scheduled) return 0;
  uint64_t due = target - p->scheduled;
  /* How far behind its schedule the oldest of these sends is. */
  uint64_t lag = *now - (p->start + (uint64_t)((double)p->scheduled * 1e9 / p->rate));
  if (lag > p->max_lag) p->max_lag = lag;
  if (lag > p->tick_ns + 1000000ull) p->late += due;
  p->scheduled = target;
  return due;
}

/* Sends scheduled within the measured window. */
static uint64_t pacer_window_sends(const pacer *p) { return p->scheduled - p->window_scheduled; }

static int run_echo(const options *o, int fixed) {
  echo_state s = {0};
  s.fixed = fixed;
  s.payload = o->payload < 0 ? 32 : o->payload;
  s.prefix = (long)frame_prefix((size_t)(2 + s.payload));
  s.frame_bytes = s.prefix + 2 + s.payload;
  long n = o->connections < 0 ? 100 : o->connections;
  alloc_conns(n);
  alloc_carries();
  /* Room for one write's frames: a closed loop refills at most in-flight at once. */
  s.scratch_frames = o->in_flight > 1024 ? o->in_flight : 1024;
  s.scratch = calloc((size_t)s.scratch_frames * (size_t)s.frame_bytes, 1);
  if (s.scratch == NULL) die("out of memory");
  /* Headers are written once; only timestamps and sequence numbers change. */
  for (long k = 0; k < s.scratch_frames; k++) {
    write_prefix(s.scratch + k * s.frame_bytes, (size_t)(2 + s.payload), WS_BINARY);
    wr16(s.scratch + k * s.frame_bytes + s.prefix, ID_ECHO);
  }
  for (long from = 0; from < n; from += CONNECT_BATCH) connect_range(from, from + CONNECT_BATCH < n ? from + CONNECT_BATCH : n, o->port, 1);

  pacer pace = {.timer = -1};
  uint64_t rr = 0;
  if (fixed) {
    pacer_start(&pace, (double)o->rate, o->tick_us);
  } else {
    uint64_t t = now_ns();
    for (long i = 0; i < n; i++) echo_send(&s, (uint64_t)i, o->in_flight, t);
  }

  window_t w = {0};
  uint64_t t0 = now_ns();
  uint64_t window_at = t0 + (uint64_t)o->warmup_ms * 1000000ull;
  uint64_t end_at = window_at + (uint64_t)o->duration_ms * 1000000ull;
  int phase = 0; /* 0 warm-up, 1 measuring, 2 settling */
  uint64_t start_echoed = 0, settle_deadline = 0;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    uint64_t t = now_ns();
    if (phase == 0 && t >= window_at) {
      phase = 1;
      memset(&s.latency, 0, sizeof(s.latency));
      s.recording = 1;
      start_echoed = s.echoed;
      pacer_open_window(&pace);
      window_open(&w);
    } else if (phase == 1 && t >= end_at) {
      phase = 2;
      s.recording = 0;
      running = 0;
      window_close(&w);
      settle_deadline = t + SETTLE_TIMEOUT_MS * 1000000ull;
      pacer_stop(&pace);
    }
    if (phase == 2) {
      /* Every frame sent must come back before the connections close: nothing may be lost. */
      int done = 1;
      for (long i = 0; i < n && done; i++) done = conns[i].closed || conns[i].expected == conns[i].next_seq;
      if (done || t > settle_deadline) break;
    }
    int ne = wait_phase(ep, evs, phase, window_at, end_at, t);
    for (int k = 0; k < ne; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN) {
        on_stdin();
        continue;
      }
      if (i == EV_TIMER) {
        uint64_t now;
        uint64_t due = pacer_due(&pace, &now);
        if (due == 0) continue;
        /* Spread the frames round-robin: each connection gets base or base + 1, in one write. */
        uint64_t base = due / (uint64_t)n, extra = due % (uint64_t)n;
        if (base > 0) {
          for (long c = 0; c < n; c++) echo_send(&s, (uint64_t)c, (long)base + ((uint64_t)((c - (long)rr + n) % n) < extra), now);
        } else {
          for (uint64_t j = 0; j < extra; j++) echo_send(&s, (rr + j) % (uint64_t)n, 1, now);
        }
        rr = (rr + extra) % (uint64_t)n;
        continue;
      }
      conn *c = &conns[i];
      if (evs[k].events & EPOLLOUT) conn_flush(c, i);
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      long got = echo_read(&s, i);
      s.echoed += (uint64_t)got;
      if (c->closed) {
        if (running) unexpected_closes++;
        ep_ctl(EPOLL_CTL_DEL, c->fd, 0, 0);
        continue;
      }
      /* Closed loop: one new frame for each echo, all in one write. */
      if (!fixed && running && got > 0) echo_send(&s, i, got, now_ns());
    }
  }

  uint64_t frames = s.echoed - start_echoed;
  uint64_t gaps = 0, missing = 0;
  for (long i = 0; i < n; i++) {
    gaps += conns[i].gaps;
    if (conns[i].next_seq > conns[i].expected) missing += conns[i].next_seq - conns[i].expected;
  }
  common_errors();
  if (gaps > 0) add_error("GAPS: %llu echoes missing or out of order", (unsigned long long)gaps);
  if (missing > 0) add_error("%llu frames sent were never echoed", (unsigned long long)missing);
  if (frames == 0) add_error("no frames were echoed in the measured window");
  double offered = (double)pacer_window_sends(&pace) / (w.ms / 1000);
  /*
   * Frames sent over a millisecond behind their schedule (the load generator
   * was not scheduled in time: on a small shared machine, it happens) are
   * still stamped with their real send time, so they do not distort latency;
   * but if the generator could not hold the rate at all, the run is invalid.
   */
  uint64_t window_frames = pacer_window_sends(&pace);
  if (fixed && offered < 0.98 * (double)o->rate) {
    add_error("the load generator offered only %.0f frames/s of the %ld asked for", offered, o->rate);
  }
  metrics_begin();
  jnum("frames", (double)frames);
  jnum("p50Us", hist_percentile_us(&s.latency, 0.50));
  jnum("p99Us", hist_percentile_us(&s.latency, 0.99));
  jnum("p999Us", hist_percentile_us(&s.latency, 0.999));
  jnum("gaps", (double)(gaps + missing));
  if (fixed) {
    jnum("offeredPerSec", offered);
    jnum("latePercent", window_frames > 0 ? 100.0 * (double)pace.late / (double)window_frames : 0);
    jnum("maxLagUs", (double)pace.max_lag / 1000);
  }
  const char *metrics = metrics_end();
  for (long i = 0; i < n; i++) close_conn(&conns[i], 0);
  emit_result((double)frames / (w.ms / 1000), &w, metrics);
  return 0;
}

/* ------------------------------------------------------------------ http */

/*
 * http: 100 keep-alive connections (by default), each sending `depth`
 * requests in one write and the next `depth` once every one of them has been
 * answered (wrk's pipelining; depth 1 is one request at a time). A request is
 * `METHOD path HTTP/1.1`, a Host and, with a body, Content-Type and
 * Content-Length; the body is 0123456789abcdef... cut to `--body` bytes.
 * Every response is parsed where it lies in the read buffer: the status line
 * must be HTTP/1.x 200, the head must carry a Content-Length (no chunked
 * answers here; every row sends a length) and no `Connection: close`, and the
 * body must be `--expect` (default: the request's body, for an echo). The
 * rate is responses per second over the window; latency is per batch, from
 * its write to its last response, as wrk measures it (without wrk's
 * correction for coordinated omission).
 */
typedef struct {
  uint8_t *batch;
  size_t batch_len;
  long depth;
  const uint8_t *expect;
  size_t expect_len;
  histogram latency;
  int recording;
  uint64_t answered;
  uint64_t bad_status, bad_body, closing, no_length, extra;
  int first_bad_status;
} http_state;

/* Whether the header line at p (up to the CRLF at e) is `name:`, compared without case; its value's start, or NULL. */
static const uint8_t *http_field(const uint8_t *p, const uint8_t *e, const char *name, size_t n) {
  if ((size_t)(e - p) <= n || strncasecmp((const char *)p, name, n) != 0) return NULL;
  p += n;
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/*
 * One response at p[0, avail): its whole length, 0 while it has not all
 * arrived, -1 when it is malformed. Sets the status, where the body is, its
 * length, and whether the server said it will close.
 */
static long http_response(const uint8_t *p, size_t avail, int *status, size_t *body_at, size_t *body_len, int *closing, int *has_length) {
  if (avail < 12) return memcmp(p, "HTTP/1.", avail < 7 ? avail : 7) == 0 ? 0 : -1;
  if (memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') return -1;
  if (p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') return -1;
  *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  const uint8_t *end = memmem(p, avail, "\r\n\r\n", 4);
  if (end == NULL) return avail > MAX_FRAME ? -1 : 0;
  size_t length = 0;
  *closing = 0;
  *has_length = 0;
  const uint8_t *line = memmem(p, (size_t)(end - p) + 2, "\r\n", 2) + 2;
  while (line < end + 2) {
    const uint8_t *e = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
    const uint8_t *v;
    if ((v = http_field(line, e, "content-length:", 15)) != NULL) {
      length = 0;
      for (; v < e && *v >= '0' && *v <= '9'; v++) length = length * 10 + (size_t)(*v - '0');
      if (length > MAX_FRAME) return -1;
      *has_length = 1;
    } else if ((v = http_field(line, e, "transfer-encoding:", 18)) != NULL) {
      return -1;
    } else if ((v = http_field(line, e, "connection:", 11)) != NULL) {
      if (memmem(v, (size_t)(e - v), "close", 5) != NULL) *closing = 1;
    }
    line = e + 2;
  }
  size_t head = (size_t)(end - p) + 4;
  if (avail < head + length) return head + length > MAX_FRAME ? -1 : 0;
  *body_at = head;
  *body_len = length;
  return (long)(head + length);
}

static void http_send(http_state *s, uint64_t index, uint64_t t) {
  conn *c = &conns[index];
  c->sent_at = t;
  c->next_seq += (uint32_t)s->depth;
  conn_send(c, index, s->batch, s->batch_len);
}

/* Reads one connection's responses; returns how many arrived. */
static long http_read(http_state *s, uint64_t index) {
  conn *c = &conns[index];
  size_t end = conn_read(c);
  if (end == 0) return 0;
  size_t pos = 0;
  long n = 0;
  for (;;) {
    int status = 0, closing = 0, has_length = 0;
    size_t at = 0, len = 0;
    long whole = http_response(rbuf + pos, end - pos, &status, &at, &len, &closing, &has_length);
    if (whole < 0) {
      protocol_errors++;
      c->closed = 1;
      return n;
    }
    if (whole == 0) break;
    if (c->expected == c->next_seq) {
      s->extra++;
    } else {
      if (status != 200) {
        if (s->bad_status++ == 0) s->first_bad_status = status;
      } else if (len != s->expect_len || memcmp(rbuf + pos + at, s->expect, len) != 0) {
        s->bad_body++;
      }
      if (!has_length) s->no_length++;
      if (closing) s->closing++;
      c->expected++;
      n++;
      if (c->expected == c->next_seq && s->recording) hist_record(&s->latency, now_ns() - c->sent_at);
    }
    pos += (size_t)whole;
  }
  conn_keep(c, pos, end);
  return n;
}

static int run_http(const options *o) {
  http_state s = {0};
  long n = o->connections < 0 ? 100 : o->connections;
  s.depth = o->depth;
  char body[HTTP_MAX_BODY + 1];
  for (long i = 0; i < o->body; i++) body[i] = "0123456789abcdef"[i % 16];
  body[o->body] = '\0';
  char one[1024];
  int len = o->body > 0 ? snprintf(one, sizeof(one),
                                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/octet-stream\r\nContent-Length: %ld\r\n\r\n%s",
                                   o->method, o->path, o->port, o->body, body)
                        : snprintf(one, sizeof(one), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", o->method, o->path, o->port);
  if (len <= 0 || (size_t)len >= sizeof(one)) die("request too long");
  s.batch_len = (size_t)len * (size_t)s.depth;
  s.batch = malloc(s.batch_len);
  if (s.batch == NULL) die("out of memory");
  for (long k = 0; k < s.depth; k++) memcpy(s.batch + (size_t)k * (size_t)len, one, (size_t)len);
  /* An echo's answer is its body; a GET's is what --expect says. */
  char *expect = strdup(o->expect != NULL ? o->expect : body);
  if (expect == NULL) die("out of memory");
  s.expect = (const uint8_t *)expect;
  s.expect_len = strlen(expect);

  alloc_conns(n);
  alloc_carries();
  for (long from = 0; from < n; from += CONNECT_BATCH) connect_range(from, from + CONNECT_BATCH < n ? from + CONNECT_BATCH : n, o->port, 1);
  uint64_t t = now_ns();
  for (long i = 0; i < n; i++) http_send(&s, (uint64_t)i, t);

  window_t w = {0};
  uint64_t t0 = now_ns();
  uint64_t window_at = t0 + (uint64_t)o->warmup_ms * 1000000ull;
  uint64_t end_at = window_at + (uint64_t)o->duration_ms * 1000000ull;
  int phase = 0; /* 0 warm-up, 1 measuring, 2 settling */
  uint64_t start_answered = 0, window_answered = 0, settle_deadline = 0;
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    t = now_ns();
    if (phase == 0 && t >= window_at) {
      phase = 1;
      memset(&s.latency, 0, sizeof(s.latency));
      s.recording = 1;
      start_answered = s.answered;
      window_open(&w);
    } else if (phase == 1 && t >= end_at) {
      phase = 2;
      s.recording = 0;
      running = 0;
      window_answered = s.answered - start_answered;
      window_close(&w);
      settle_deadline = t + SETTLE_TIMEOUT_MS * 1000000ull;
    }
    if (phase == 2) {
      /* Every request sent must be answered before the connections close. */
      int done = 1;
      for (long i = 0; i < n && done; i++) done = conns[i].closed || conns[i].expected == conns[i].next_seq;
      if (done || t > settle_deadline) break;
    }
    int ne = wait_phase(ep, evs, phase, window_at, end_at, t);
    for (int k = 0; k < ne; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN) {
        on_stdin();
        continue;
      }
      conn *c = &conns[i];
      if (evs[k].events & EPOLLOUT) conn_flush(c, i);
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      long got = http_read(&s, i);
      s.answered += (uint64_t)got;
      if (c->closed) {
        if (running || c->expected != c->next_seq) unexpected_closes++;
        ep_ctl(EPOLL_CTL_DEL, c->fd, 0, 0);
        continue;
      }
      /* The whole batch answered: the next one, in one write. */
      if (running && got > 0 && c->expected == c->next_seq) http_send(&s, i, now_ns());
    }
  }

  uint64_t missing = 0;
  for (long i = 0; i < n; i++) missing += conns[i].next_seq - conns[i].expected;
  common_errors();
  if (s.bad_status > 0) add_error("%llu responses were not 200 (the first: %d)", (unsigned long long)s.bad_status, s.first_bad_status);
  if (s.bad_body > 0) add_error("%llu responses had another body than the %zu bytes expected", (unsigned long long)s.bad_body, s.expect_len);
  if (s.no_length > 0) add_error("%llu responses had no Content-Length", (unsigned long long)s.no_length);
  if (s.closing > 0) add_error("%llu responses said Connection: close (keep-alive expected)", (unsigned long long)s.closing);
  if (s.extra > 0) add_error("%llu responses to no request", (unsigned long long)s.extra);
  if (missing > 0) add_error("%llu requests sent were never answered", (unsigned long long)missing);
  if (window_answered == 0) add_error("no requests were answered in the measured window");
  metrics_begin();
  jnum("requests", (double)window_answered);
  jnum("p50Us", hist_percentile_us(&s.latency, 0.50));
  jnum("p99Us", hist_percentile_us(&s.latency, 0.99));
  jnum("badResponses", (double)(s.bad_status + s.bad_body + s.no_length + s.closing + s.extra + missing + protocol_errors + unexpected_closes));
  jnum("loadThreads", 1);
  const char *metrics = metrics_end();
  for (long i = 0; i < n; i++) close_conn(&conns[i], 0);
  emit_result((double)window_answered / (w.ms / 1000), &w, metrics);
  return 0;
}

/* ------------------------------------------------------------- broadcast */

/*
 * broadcast: receivers 0..R-1 and the sender R, which gets every frame too.
 * The payload is [u32 seq][u32 0][u64 send time ns][zeros]. Frame k is sent
 * only once every connection has received frame k - window, so no queue, in
 * the server or in the kernel, ever holds more than `window` frames for any
 * connection.
 */
static int run_broadcast(const options *o) {
  long receivers = o->receivers;
  long payload = o->payload < 0 ? 64 : o->payload;
  long prefix = (long)frame_prefix((size_t)(2 + payload));
  long frame_bytes = prefix + 2 + payload;
  long window = o->window;
  alloc_conns(receivers + 1);
  alloc_carries();
  uint64_t sender_index = (uint64_t)receivers;
  conn *sender = &conns[sender_index];
  for (long from = 0; from < receivers; from += CONNECT_BATCH) {
    connect_range(from, from + CONNECT_BATCH < receivers ? from + CONNECT_BATCH : receivers, o->port, 1);
  }
  connect_range(receivers, receivers + 1, o->port, 1);
  /* The server must know every receiver before frame 0, or a late one would miss the first frames. */
  if (!wait_count(sender, receivers + 1, 10000)) die("the server did not report %ld connections within 10 s", receivers + 1);

  uint8_t *frames = calloc((size_t)window, (size_t)frame_bytes);
  if (frames == NULL) die("out of memory");
  for (long k = 0; k < window; k++) {
    write_prefix(frames + k * frame_bytes, (size_t)(2 + payload), WS_BINARY);
    wr16(frames + k * frame_bytes + prefix, ID_BROADCAST);
  }
  histogram *latency = calloc(1, sizeof(histogram));
  uint64_t delivered = 0; /* by the receivers, not counting the sender's own copies */
  int recording = 0;
  uint32_t min_expected = 0;

  window_t w = {0};
  uint64_t t0 = now_ns();
  uint64_t window_at = t0 + (uint64_t)o->warmup_ms * 1000000ull;
  uint64_t end_at = window_at + (uint64_t)o->duration_ms * 1000000ull;
  int phase = 0;
  uint64_t start_delivered = 0, start_seq = 0, end_seq = 0, settle_deadline = 0;
  uint32_t want_len = (uint32_t)(2 + payload);
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    uint64_t t = now_ns();
    if (phase == 0 && t >= window_at) {
      phase = 1;
      memset(latency, 0, sizeof(*latency));
      recording = 1;
      start_delivered = delivered;
      start_seq = sender->next_seq;
      window_open(&w);
    } else if (phase == 1 && t >= end_at) {
      phase = 2;
      recording = 0;
      running = 0;
      end_seq = sender->next_seq;
      window_close(&w);
      settle_deadline = t + SETTLE_TIMEOUT_MS * 1000000ull;
    }
    if (phase == 2 && (min_expected >= sender->next_seq || t > settle_deadline)) break;
    /* Credit: send what the slowest connection allows, in one write (two where the slots wrap). */
    if (running && sender->next_seq < min_expected + (uint32_t)window) {
      uint32_t first = sender->next_seq, count = min_expected + (uint32_t)window - first;
      uint64_t ts = now_ns();
      for (uint32_t k = 0; k < count; k++) {
        uint8_t *frame = frames + ((first + k) % (uint32_t)window) * frame_bytes;
        uint8_t *p = frame + prefix + 2;
        /* Masking scrambled the last use of this slot: a WebSocket frame's body is written in full. */
        if (ws_path != NULL) {
          wr16(frame + prefix, ID_BROADCAST);
          memset(p, 0, (size_t)payload);
        }
        wr32(p, first + k);
        wr64(p + 8, ts);
        seal(frame, (size_t)prefix, (size_t)(2 + payload));
      }
      uint32_t slot = first % (uint32_t)window;
      uint32_t until_wrap = count < (uint32_t)window - slot ? count : (uint32_t)window - slot;
      conn_send(sender, sender_index, frames + slot * frame_bytes, (size_t)until_wrap * (size_t)frame_bytes);
      if (until_wrap < count) conn_send(sender, sender_index, frames, (size_t)(count - until_wrap) * (size_t)frame_bytes);
      sender->next_seq = first + count;
    }
    int ne = wait_phase(ep, evs, phase, window_at, end_at, t);
    for (int k = 0; k < ne; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN) {
        on_stdin();
        continue;
      }
      conn *c = &conns[i];
      if (evs[k].events & EPOLLOUT) conn_flush(c, i);
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      size_t end = conn_read(c);
      if (c->closed) {
        if (running) unexpected_closes++;
        ep_ctl(EPOLL_CTL_DEL, c->fd, 0, 0);
        continue;
      }
      if (end == 0) continue;
      uint64_t now = now_ns();
      size_t pos = 0;
      uint64_t got = 0;
      uint32_t expected = c->expected;
      uint64_t gaps = 0;
      for (;;) {
        uint32_t at, len;
        int opcode;
        long whole = next_frame(rbuf + pos, end - pos, &at, &len, &opcode);
        if (whole < 0) {
          protocol_errors++;
          break;
        }
        if (whole == 0) break;
        const uint8_t *body = rbuf + pos + at;
        if (opcode != WS_BINARY) {
          ws_control(c, i, opcode, body, len);
          if (c->closed) break;
        } else if (len != want_len || rd16(body) != ID_BROADCAST) {
          unexpected_frames++;
        } else {
          uint32_t seq = rd32(body + 2);
          if (seq != expected) gaps += seq > expected ? seq - expected : 1;
          expected = seq + 1;
          if (recording) hist_record(latency, now - rd64(body + 2 + 8));
          got++;
        }
        pos += (size_t)whole;
      }
      c->expected = expected;
      c->gaps += gaps;
      if (i != sender_index) delivered += got;
      conn_keep(c, pos, end);
    }
    uint32_t m = UINT32_MAX;
    for (long j = 0; j <= receivers; j++) {
      if (!conns[j].closed && conns[j].expected < m) m = conns[j].expected;
    }
    min_expected = m == UINT32_MAX ? sender->next_seq : m;
  }

  uint64_t last = sender->next_seq, gaps = 0, short_receivers = 0;
  for (long j = 0; j <= receivers; j++) {
    gaps += conns[j].gaps + (last > conns[j].expected ? last - conns[j].expected : 0);
    if (conns[j].expected < last) short_receivers++;
  }
  uint64_t deliveries = delivered - start_delivered;
  common_errors();
  if (gaps > 0) {
    add_error("GAPS: %llu frames missing or out of order over %ld connections (%llu short at the end)", (unsigned long long)gaps,
              receivers + 1, (unsigned long long)short_receivers);
  }
  if (deliveries == 0) add_error("nothing was delivered in the measured window");
  metrics_begin();
  jnum("deliveries", (double)deliveries);
  jnum("broadcastsPerSec", (double)(end_seq - start_seq) / (w.ms / 1000));
  jnum("framesChecked", (double)last);
  jnum("gaps", (double)gaps);
  jnum("p50Us", hist_percentile_us(latency, 0.50));
  jnum("p99Us", hist_percentile_us(latency, 0.99));
  const char *metrics = metrics_end();
  for (long j = 0; j <= receivers; j++) close_conn(&conns[j], 0);
  emit_result((double)deliveries / (w.ms / 1000), &w, metrics);
  return 0;
}

/* ----------------------------------------------------------------- rooms */

/*
 * rooms: `connections` players (1,000) seated in rooms of `room-size` (8):
 * player i sends JOIN [u32 room i / room-size], which the server answers
 * once the player is seated. Then every player sends ROOM packets to its
 * room and the server relays each to the others in the room, in one of two
 * ways:
 *
 *   paced (no --in-flight): `packets-per-second` (20) per player, paced by a
 *     timer every `tick-us` and spread round-robin over the players so the
 *     load is even; a fixed offered load.
 *   --in-flight N: a closed loop. Each player keeps N of its own packets
 *     outstanding, a packet being outstanding until every room-mate has
 *     received it, and sends the next one as soon as one completes. The
 *     packets a wake-up's deliveries let a player send leave in one write.
 *
 * Every delivery is checked: the room is the receiver's, the sender one of
 * its room-mates, and each sender's packets reach each room-mate in order,
 * none missing or repeated. After the window no more are sent, and the
 * program waits for every packet owed to every room-mate.
 *
 * ROOM payload: [u32 room][u32 sender][u32 seq][u64 send time ns][zeros]
 */
typedef struct {
  long players, room_size, payload, prefix, frame_bytes;
  /* What player p expects next from the room-mate in seat s: expected[p * room_size + s]. */
  uint32_t *expected;
  uint64_t delivered, pair_gaps, misdelivered, sent;
  histogram latency;
  int recording;
  /*
   * --in-flight: N, or 0 when paced. Per player p: acked[p], its oldest
   * packet some room-mate has not received yet; pending[p * N + seq % N],
   * how many room-mates have still to receive packet seq (seq in
   * [acked[p], next_seq)). Per-pair order makes packets complete in order,
   * so the N outstanding ones are always acked[p] .. acked[p] + N - 1 and a
   * slot is free again once acked[p] has passed it.
   */
  long in_flight;
  uint32_t *acked;
  uint16_t *pending;
  /* Players whose oldest packets completed in this wake-up, to send their next ones. */
  long *ready;
  long ready_count;
  uint8_t *ready_mark;
  uint8_t *scratch; /* in_flight frames: one write's worth for one player */
} rooms_state;

static long room_of(const rooms_state *s, long player) { return player / s->room_size; }

/* Players in the room of `player`: room_size, but for a last room left part-filled. */
static long room_members(const rooms_state *s, long player) {
  long first = room_of(s, player) * s->room_size;
  return s->players - first < s->room_size ? s->players - first : s->room_size;
}

/* Writes one JOIN or ROOM frame of player `index` at `frame` (ROOM takes its next sequence number); returns its length. */
static size_t rooms_frame(rooms_state *s, uint64_t index, uint16_t id, uint64_t ts, uint8_t *frame) {
  conn *c = &conns[index];
  long body_len = id == ID_JOIN ? 2 + 4 : 2 + s->payload;
  size_t prefix = frame_prefix((size_t)body_len);
  write_prefix(frame, (size_t)body_len, WS_BINARY);
  uint8_t *body = frame + prefix;
  memset(body, 0, (size_t)body_len);
  wr16(body, id);
  wr32(body + 2, (uint32_t)room_of(s, (long)index));
  if (id == ID_ROOM) {
    wr32(body + 2 + 4, (uint32_t)index);
    wr32(body + 2 + 8, c->next_seq++);
    wr64(body + 2 + 12, ts);
    s->sent++;
  }
  seal(frame, prefix, (size_t)body_len);
  return prefix + (size_t)body_len;
}

static void rooms_send(rooms_state *s, uint64_t index, uint16_t id, uint64_t ts) {
  uint8_t frame[MAX_FRAME];
  size_t len = rooms_frame(s, index, id, ts, frame);
  conn_send(&conns[index], index, frame, len);
}

/* --in-flight: sends player `index` as many packets as its window has room for, in one write. */
static void rooms_refill(rooms_state *s, uint64_t index, uint64_t ts) {
  conn *c = &conns[index];
  if (c->closed || room_members(s, (long)index) < 2) return; /* alone in its room, a packet would complete unsent */
  uint32_t space = s->acked[index] + (uint32_t)s->in_flight - c->next_seq;
  if (space == 0) return;
  uint16_t mates = (uint16_t)(room_members(s, (long)index) - 1);
  uint8_t *p = s->scratch;
  for (uint32_t k = 0; k < space; k++) {
    s->pending[index * (uint64_t)s->in_flight + c->next_seq % (uint32_t)s->in_flight] = mates;
    p += rooms_frame(s, index, ID_ROOM, ts, p);
  }
  conn_send(c, index, s->scratch, (size_t)(p - s->scratch));
}

/*
 * --in-flight: a room-mate has received `sender`'s packets from..seq (one in
 * order; more where some went missing, which counts as a gap but must not
 * stall the sender). Completes what every room-mate now has.
 */
static void rooms_credit(rooms_state *s, long sender, uint32_t from, uint32_t seq) {
  uint32_t acked = s->acked[sender], sent = conns[sender].next_seq, n = (uint32_t)s->in_flight;
  if (seq < from) return; /* a repeat or a step back: a gap already, and nothing new received */
  uint16_t *pending = s->pending + (uint64_t)sender * n;
  for (uint32_t q = from > acked ? from : acked; q <= seq && q < sent; q++) {
    if (pending[q % n] > 0) pending[q % n]--;
  }
  while (acked < sent && pending[acked % n] == 0) acked++;
  if (acked == s->acked[sender]) return;
  s->acked[sender] = acked;
  if (!s->ready_mark[sender]) {
    s->ready_mark[sender] = 1;
    s->ready[s->ready_count++] = sender;
  }
}

/* Reads one player's deliveries (and, while seating, its JOIN answer: *joined). */
static void rooms_read(rooms_state *s, uint64_t index, int *joined) {
  conn *c = &conns[index];
  size_t end = conn_read(c);
  if (end == 0) return;
  uint64_t now = now_ns();
  long room = room_of(s, (long)index), first = room * s->room_size;
  size_t pos = 0;
  for (;;) {
    uint32_t at, len;
    int opcode;
    long whole = next_frame(rbuf + pos, end - pos, &at, &len, &opcode);
    if (whole < 0) {
      protocol_errors++;
      c->closed = 1;
      return;
    }
    if (whole == 0) break;
    const uint8_t *body = rbuf + pos + at;
    pos += (size_t)whole;
    if (opcode != WS_BINARY) {
      ws_control(c, index, opcode, body, len);
      if (c->closed) return;
      continue;
    }
    uint16_t id = len >= 2 ? rd16(body) : 0;
    if (id == ID_JOIN && len == 2 + 4 && joined != NULL) {
      *joined = 1;
      continue;
    }
    if (id != ID_ROOM || len != (uint32_t)(2 + s->payload)) {
      unexpected_frames++;
      continue;
    }
    long sender = (long)rd32(body + 2 + 4);
    if ((long)rd32(body + 2) != room || sender < first || sender >= first + room_members(s, (long)index) || sender == (long)index) {
      s->misdelivered++;
      continue;
    }
    uint32_t *expected = &s->expected[index * (uint64_t)s->room_size + (uint64_t)(sender - first)];
    uint32_t seq = rd32(body + 2 + 8);
    uint32_t was = *expected;
    if (seq != was) s->pair_gaps += seq > was ? seq - was : 1;
    *expected = seq + 1;
    if (s->in_flight > 0) rooms_credit(s, sender, was, seq);
    if (s->recording) hist_record(&s->latency, now - rd64(body + 2 + 12));
    s->delivered++;
  }
  conn_keep(c, pos, end);
}

static int run_rooms(const options *o) {
  rooms_state s = {0};
  s.players = o->connections < 0 ? 1000 : o->connections;
  s.room_size = o->room_size;
  s.payload = o->payload < 0 ? 32 : o->payload;
  if (s.payload < 20) die("--payload must hold the ROOM header (20 bytes)");
  s.in_flight = o->in_flight_given ? o->in_flight : 0;
  long n = s.players;
  alloc_conns(n);
  alloc_carries();
  s.expected = calloc((size_t)n * (size_t)s.room_size, sizeof(uint32_t));
  int *joined = calloc((size_t)n, sizeof(int));
  if (s.expected == NULL || joined == NULL) die("out of memory");
  if (s.in_flight > 0) {
    s.frame_bytes = (long)frame_prefix((size_t)(2 + s.payload)) + 2 + s.payload;
    s.acked = calloc((size_t)n, sizeof(uint32_t));
    s.pending = calloc((size_t)n * (size_t)s.in_flight, sizeof(uint16_t));
    s.ready = calloc((size_t)n, sizeof(long));
    s.ready_mark = calloc((size_t)n, 1);
    s.scratch = malloc((size_t)s.in_flight * (size_t)s.frame_bytes);
    if (s.acked == NULL || s.pending == NULL || s.ready == NULL || s.ready_mark == NULL || s.scratch == NULL) die("out of memory");
  }
  for (long from = 0; from < n; from += CONNECT_BATCH) connect_range(from, from + CONNECT_BATCH < n ? from + CONNECT_BATCH : n, o->port, 1);

  /* Seat every player before the first ROOM packet, or a late one would miss the first of its room-mates'. */
  for (long i = 0; i < n; i++) rooms_send(&s, (uint64_t)i, ID_JOIN, 0);
  long seated = 0;
  uint64_t deadline = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
  struct epoll_event evs[MAX_EVENTS];
  while (seated < n) {
    if (now_ns() > deadline) die("only %ld of %ld players were seated within %d ms", seated, n, CONNECT_TIMEOUT_MS);
    int ne = epoll_wait(ep, evs, MAX_EVENTS, 100);
    for (int k = 0; k < ne; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN) {
        on_stdin();
        continue;
      }
      conn *c = &conns[i];
      if (evs[k].events & EPOLLOUT) conn_flush(c, i);
      int was = joined[i];
      rooms_read(&s, i, &joined[i]);
      if (c->closed) die("the server closed player %lu while seating it", (unsigned long)i);
      if (!was && joined[i]) seated++;
    }
  }

  /* Paced: a timer. In flight: every player's first N packets, then one more for each that completes. */
  pacer pace = {.timer = -1};
  double rate = (double)o->per_second * (double)n;
  if (s.in_flight == 0) {
    pacer_start(&pace, rate, o->tick_us);
  } else {
    uint64_t t = now_ns();
    for (long i = 0; i < n; i++) rooms_refill(&s, (uint64_t)i, t);
  }
  uint64_t rr = 0;

  window_t w = {0};
  uint64_t t0 = now_ns();
  uint64_t window_at = t0 + (uint64_t)o->warmup_ms * 1000000ull;
  uint64_t end_at = window_at + (uint64_t)o->duration_ms * 1000000ull;
  int phase = 0;
  uint64_t start_delivered = 0, start_sent = 0, end_sent = 0, settle_deadline = 0, owed = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (phase == 0 && t >= window_at) {
      phase = 1;
      memset(&s.latency, 0, sizeof(s.latency));
      s.recording = 1;
      start_delivered = s.delivered;
      start_sent = s.sent;
      pacer_open_window(&pace);
      window_open(&w);
    } else if (phase == 1 && t >= end_at) {
      phase = 2;
      s.recording = 0;
      running = 0;
      end_sent = s.sent;
      window_close(&w);
      settle_deadline = t + SETTLE_TIMEOUT_MS * 1000000ull;
      pacer_stop(&pace);
      /* Every packet sent is owed to each of its sender's room-mates. */
      for (long i = 0; i < n; i++) owed += (uint64_t)conns[i].next_seq * (uint64_t)(room_members(&s, i) - 1);
    }
    if (phase == 2 && (s.delivered + s.pair_gaps >= owed || t > settle_deadline)) break;
    int ne = wait_phase(ep, evs, phase, window_at, end_at, t);
    for (int k = 0; k < ne; k++) {
      uint64_t i = evs[k].data.u64;
      if (i == EV_STDIN) {
        on_stdin();
        continue;
      }
      if (i == EV_TIMER) {
        uint64_t now;
        uint64_t due = pacer_due(&pace, &now);
        if (due == 0) continue;
        /* Round-robin: player p sends every n-th packet, so each sends at the same pace. */
        for (uint64_t j = 0; j < due; j++) rooms_send(&s, (rr + j) % (uint64_t)n, ID_ROOM, now);
        rr = (rr + due) % (uint64_t)n;
        continue;
      }
      conn *c = &conns[i];
      if (evs[k].events & EPOLLOUT) conn_flush(c, i);
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      rooms_read(&s, i, NULL);
      if (c->closed) {
        if (running) unexpected_closes++;
        ep_ctl(EPOLL_CTL_DEL, c->fd, 0, 0);
      }
    }
    /* In flight: the players whose packets completed send their next ones, one write each. */
    if (s.ready_count > 0) {
      uint64_t now = now_ns();
      for (long j = 0; j < s.ready_count; j++) {
        s.ready_mark[s.ready[j]] = 0;
        if (running) rooms_refill(&s, (uint64_t)s.ready[j], now);
      }
      s.ready_count = 0;
    }
  }

  uint64_t deliveries = s.delivered - start_delivered;
  uint64_t missing = owed > s.delivered + s.pair_gaps ? owed - s.delivered - s.pair_gaps : 0;
  common_errors();
  if (s.pair_gaps > 0 || missing > 0) {
    add_error("GAPS: %llu deliveries out of order and %llu never made", (unsigned long long)s.pair_gaps, (unsigned long long)missing);
  }
  if (s.misdelivered > 0) add_error("%llu packets reached a player outside their room, or their sender", (unsigned long long)s.misdelivered);
  if (deliveries == 0) add_error("nothing was delivered in the measured window");
  double offered = (double)pacer_window_sends(&pace) / (w.ms / 1000);
  if (s.in_flight == 0 && offered < 0.98 * rate) add_error("the load generator offered only %.0f packets/s of the %.0f asked for", offered, rate);
  metrics_begin();
  jnum("deliveries", (double)deliveries);
  jnum("packetsPerSec", s.in_flight == 0 ? offered : (double)(end_sent - start_sent) / (w.ms / 1000));
  jnum("p50Us", hist_percentile_us(&s.latency, 0.50));
  jnum("p99Us", hist_percentile_us(&s.latency, 0.99));
  jnum("gaps", (double)(s.pair_gaps + missing + s.misdelivered));
  if (s.in_flight == 0) {
    uint64_t window_packets = pacer_window_sends(&pace);
    jnum("latePercent", window_packets > 0 ? 100.0 * (double)pace.late / (double)window_packets : 0);
  } else {
    jnum("inFlight", (double)s.in_flight);
  }
  const char *metrics = metrics_end();
  for (long i = 0; i < n; i++) close_conn(&conns[i], 0);
  emit_result((double)deliveries / (w.ms / 1000), &w, metrics);
  return 0;
}

/* ----------------------------------------------------------------- conns */

/*
 * conns: open idle connections and hold them, so the orchestrator can read the
 * server's memory before and after. Connection 0 is the control connection
 * (one of the idle ones; it only asks for the server's connection count).
 * Dialled in batches, each confirmed by the server's count, so the listen
 * backlog never overflows (a dropped SYN costs a one-second retry).
 *
 *   warm-up: open and reset `warm-connections`, so lazy one-time allocations
 *            (code, pools) land before the first reading, then {"type":"ready"}
 *   "go":    open the rest, up to `connections` in all, then {"type":"holding"}
 *   "release" (or stdin EOF, or hold-ms without a pipe): check every
 *            connection is still open, reset them all, print the result.
 */
static void open_confirmed(long from, long to, int port, conn *control, long base) {
  for (long b = from; b < to; b += CONNECT_BATCH) {
    long e = b + CONNECT_BATCH < to ? b + CONNECT_BATCH : to;
    connect_range(b, e, port, 0);
    for (long i = b; i < e; i++) ep_ctl(EPOLL_CTL_DEL, conns[i].fd, 0, 0);
    if (!wait_count(control, base + e - from, 10000)) die("the server did not report %ld connections within 10 s", base + e - from);
  }
}

static int run_conns(const options *o) {
  long n = o->connections < 0 ? 10000 : o->connections;
  long warm = o->warm_connections;
  alloc_conns(n + warm);
  /* Warm-up connections live at the end of the array. */
  connect_range(0, 1, o->port, 1);
  ep_ctl(EPOLL_CTL_DEL, conns[0].fd, 0, 0);
  conn *control = &conns[0];
  if (!wait_count(control, 1, 10000)) die("the server did not report the control connection");
  if (warm > 0) {
    open_confirmed(n, n + warm, o->port, control, 1);
    for (long i = n; i < n + warm; i++) close_conn(&conns[i], 1);
    if (!wait_count(control, 1, 10000)) die("the server did not drop the warm-up connections within 10 s");
  }
  emit_line("{\"type\":\"ready\",\"connections\":1}");
  char cmd[64];
  if (stdin_is_pipe) {
    if (!read_command(cmd, sizeof(cmd))) exit(3);
    if (strcmp(cmd, "go") != 0) die("expected 'go', got '%s'", cmd);
  }
  window_t w = {0};
  window_open(&w);
  open_confirmed(1, n, o->port, control, 1);
  window_close(&w);
  char line[256];
  snprintf(line, sizeof(line), "{\"type\":\"holding\",\"connections\":%ld,\"connectMs\":%.3f}", n, w.ms);
  emit_line(line);
  if (stdin_is_pipe) {
    if (read_command(cmd, sizeof(cmd)) && strcmp(cmd, "release") != 0) die("expected 'release', got '%s'", cmd);
  } else {
    usleep((useconds_t)o->hold_ms * 1000);
  }
  /* Every connection must still be open: a peek that would block means nothing (no FIN, no RST) arrived. */
  long dead = 0;
  for (long i = 0; i < n; i++) {
    char byte;
    ssize_t r = recv(conns[i].fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (!(r < 0 && errno == EAGAIN)) dead++;
  }
  long reported = query_count(control, 10000);
  common_errors();
  if (dead > 0) add_error("%ld of %ld connections were closed or sent something while idle", dead, n);
  if (reported != n) add_error("the server reports %ld connections, expected %ld", reported, n);
  for (long i = 0; i < n; i++) close_conn(&conns[i], 1);
  metrics_begin();
  jnum("connections", (double)n);
  jnum("connectMs", w.ms);
  jnum("closedWhileIdle", (double)dead);
  const char *metrics = metrics_end();
  emit_result((double)n / (w.ms / 1000), &w, metrics);
  return 0;
}

/* ----------------------------------------------------------------- serve */

/*
 * serve: a reference server, not a load generator. The same packets as
 * bench/server (ECHO back to the sender, BROADCAST to every connection, COUNT,
 * JOIN a room and ROOM to the others in it),
 * served by the plainest fast design on epoll: one read per ready socket per
 * wake-up, replies appended to per-connection output buffers, and one send()
 * per connection that has output at the end of each wake-up. It shows what the
 * kernel allows on the machine with next to no user-space cost per frame, the
 * ceiling any backend can approach. Prints {"type":"listening","port":P}.
 */
typedef struct {
  int fd;
  int dirty;
  int room; /* the room JOIN seated it in, or -1 */
  uint32_t carry_len;
  uint8_t *carry; /* allocated the first time a frame straddles two reads */
  uint8_t *out;
  uint32_t out_len, out_cap;
} sconn;

static sconn **sconns; /* by descriptor */
static int *live;      /* descriptors of open connections, for broadcasts */
static int live_count;
static int *dirty_list;
static int dirty_count;

/* rooms: each room's members (descriptors), by the room id JOIN names. */
#define MAX_ROOMS 65536
typedef struct {
  int *fds;
  int count, cap;
} room_t;
static room_t *rooms;

static void room_leave(sconn *c) {
  if (c->room < 0) return;
  room_t *r = &rooms[c->room];
  for (int i = 0; i < r->count; i++) {
    if (r->fds[i] == c->fd) {
      r->fds[i] = r->fds[--r->count];
      break;
    }
  }
  c->room = -1;
}

static void room_join(sconn *c, uint32_t id) {
  room_leave(c);
  room_t *r = &rooms[id];
  if (r->count == r->cap) {
    r->cap = r->cap == 0 ? 8 : 2 * r->cap;
    r->fds = realloc(r->fds, (size_t)r->cap * sizeof(int));
    if (r->fds == NULL) die("out of memory");
  }
  r->fds[r->count++] = c->fd;
  c->room = (int)id;
}

static void s_append(sconn *c, const uint8_t *p, size_t n) {
  if (c->out_len + n > OUT_LIMIT) return; /* a peer this far behind is not reading: drop, as a bounded queue would */
  if (c->out_len + n > c->out_cap) {
    uint32_t cap = c->out_cap == 0 ? 4096 : c->out_cap;
    while (cap < c->out_len + n) cap *= 2;
    c->out = realloc(c->out, cap);
    if (c->out == NULL) die("out of memory");
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += (uint32_t)n;
  if (!c->dirty) {
    c->dirty = 1;
    dirty_list[dirty_count++] = c->fd;
  }
}

static void s_close(int fd) {
  sconn *c = sconns[fd];
  if (c == NULL) return;
  for (int i = 0; i < live_count; i++) {
    if (live[i] == fd) {
      live[i] = live[--live_count];
      break;
    }
  }
  for (int i = 0; i < dirty_count; i++) {
    if (dirty_list[i] == fd) {
      dirty_list[i] = dirty_list[--dirty_count];
      break;
    }
  }
  room_leave(c);
  free(c->out);
  free(c->carry);
  free(c);
  sconns[fd] = NULL;
  close(fd);
}

static int run_serve(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  size_t max_fds = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur;
  sconns = calloc(max_fds, sizeof(*sconns));
  live = calloc(max_fds, sizeof(int));
  dirty_list = calloc(max_fds, sizeof(int));
  rooms = calloc(MAX_ROOMS, sizeof(room_t));
  if (sconns == NULL || live == NULL || dirty_list == NULL || rooms == NULL) die("out of memory");
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0 ||
      getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
    die("listen: %s", strerror(errno));
  }
  ep_ctl(EPOLL_CTL_ADD, lfd, EPOLLIN, EV_TIMER); /* EV_TIMER stands for the listener here */
  char line[64];
  snprintf(line, sizeof(line), "{\"type\":\"listening\",\"port\":%d}", ntohs(addr.sin_port));
  emit_line(line);
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int ne = epoll_wait(ep, evs, MAX_EVENTS, -1);
    for (int k = 0; k < ne; k++) {
      uint64_t id = evs[k].data.u64;
      if (id == EV_STDIN) {
        on_stdin();
        continue;
      }
      if (id == EV_TIMER) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          if ((size_t)fd >= max_fds) {
            close(fd);
            continue;
          }
          set_nodelay(fd);
          sconn *c = calloc(1, sizeof(sconn));
          if (c == NULL) die("out of memory");
          c->fd = fd;
          c->room = -1;
          sconns[fd] = c;
          live[live_count++] = fd;
          ep_ctl(EPOLL_CTL_ADD, fd, EPOLLIN, (uint64_t)fd);
        }
        continue;
      }
      int fd = (int)id;
      sconn *c = sconns[fd];
      if (c == NULL) continue;
      if (evs[k].events & EPOLLOUT) {
        ssize_t w = send(fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          memmove(c->out, c->out + w, c->out_len - (size_t)w);
          c->out_len -= (uint32_t)w;
        }
        if (c->out_len == 0) ep_ctl(EPOLL_CTL_MOD, fd, EPOLLIN, (uint64_t)fd);
      }
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      if (c->carry_len > 0) memcpy(rbuf, c->carry, c->carry_len);
      ssize_t n = recv(fd, rbuf + c->carry_len, READ_BYTES, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        s_close(fd);
        continue;
      }
      if (n < 0) continue;
      size_t end = c->carry_len + (size_t)n, pos = 0;
      int bad = 0;
      while (end - pos >= HEADER_BYTES) {
        uint32_t flen = rd32(rbuf + pos);
        if (flen < 2 || flen > 2 + MAX_PAYLOAD) {
          bad = 1;
          break;
        }
        if (pos + 4 + flen > end) break;
        uint16_t id16 = rd16(rbuf + pos + 4);
        const uint8_t *frame = rbuf + pos;
        size_t fbytes = 4 + flen;
        if (id16 == ID_ECHO) {
          s_append(c, frame, fbytes);
        } else if (id16 == ID_BROADCAST) {
          for (int i = 0; i < live_count; i++) s_append(sconns[live[i]], frame, fbytes);
        } else if (id16 == ID_JOIN && flen == 2 + 4 && rd32(frame + 6) < MAX_ROOMS) {
          /* Seated: the answer is the JOIN itself. */
          room_join(c, rd32(frame + 6));
          s_append(c, frame, fbytes);
        } else if (id16 == ID_ROOM && c->room >= 0) {
          /* To the others in the sender's room. */
          room_t *r = &rooms[c->room];
          for (int i = 0; i < r->count; i++) {
            if (r->fds[i] != fd) s_append(sconns[r->fds[i]], frame, fbytes);
          }
        } else if (id16 == ID_COUNT) {
          uint8_t reply[10];
          wr32(reply, 6);
          wr16(reply + 4, ID_COUNT);
          wr32(reply + 6, (uint32_t)live_count);
          s_append(c, reply, sizeof(reply));
        } else {
          bad = 1;
          break;
        }
        pos += fbytes;
      }
      if (bad) {
        s_close(fd);
        continue;
      }
      c->carry_len = (uint32_t)(end - pos);
      if (c->carry_len > 0 && c->carry == NULL && (c->carry = malloc(MAX_FRAME)) == NULL) die("out of memory");
      if (c->carry_len > 0) memcpy(c->carry, rbuf + pos, c->carry_len);
    }
    /* One send per connection with output, for everything this wake-up produced. */
    for (int i = 0; i < dirty_count; i++) {
      sconn *c = sconns[dirty_list[i]];
      c->dirty = 0;
      if (c->out_len == 0) continue;
      ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN) continue; /* the read side will see the error and close */
      if (w < 0) w = 0;
      memmove(c->out, c->out + w, c->out_len - (size_t)w);
      c->out_len -= (uint32_t)w;
      if (c->out_len > 0) ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, (uint64_t)c->fd);
    }
    dirty_count = 0;
  }
  return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  options o = parse(argc, argv);
  /* Die with the orchestrator, however it ends. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  /* Descriptors: one per connection and a few; raise the soft limit as far as the hard one allows. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (!strcmp(o.mode, "selftest")) return run_selftest();
  rng_seed();
  rbuf = malloc(MAX_FRAME + READ_BYTES);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (rbuf == NULL || ep < 0) die("setup failed: %s", strerror(errno));
  watch_stdin();
  if (!strcmp(o.mode, "echo")) return run_echo(&o, 0);
  if (!strcmp(o.mode, "echo-fixed")) return run_echo(&o, 1);
  if (!strcmp(o.mode, "broadcast")) return run_broadcast(&o);
  if (!strcmp(o.mode, "rooms")) return run_rooms(&o);
  if (!strcmp(o.mode, "http")) return run_http(&o);
  if (!strcmp(o.mode, "serve")) return run_serve();
  if (!strcmp(o.mode, "conns")) {
    /* conns reads its commands from stdin itself. */
    if (stdin_is_pipe) epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    return run_conns(&o);
  }
  die("unknown workload '%s': echo, echo-fixed, broadcast, rooms, conns, http, serve or selftest", o.mode);
  return 2;
}
