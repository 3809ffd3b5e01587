/**
 * The head of an HTTP/1.x request or response (RFC 9112): the start line and
 * the header fields, up to the empty line. It is parsed once it has wholly
 * arrived; what follows it is not its business. Shared by the WebSocket
 * handshake and the HTTP protocol.
 */

/** Header names are lower-cased; a repeated field's values are joined with ", " (RFC 9110 section 5.3). */
export type HeaderFields = Record<string, string>;

export interface RequestHead {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly target: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  readonly version: string;
  readonly headers: HeaderFields;
  /** Fields that appeared more than once, by name: a request may not repeat some (Content-Length). */
  readonly repeated: ReadonlySet<string>;
  /**
   * The fields that decide how the request is read, as in `headers` (a
   * repeated one joined), noted by the parser as it meets them: HTTP reads
   * these for every request, and a field absent from `headers` is its
   * costliest lookup.
   */
  readonly host: string | undefined;
  readonly connection: string | undefined;
  readonly upgrade: string | undefined;
  readonly transferEncoding: string | undefined;
  readonly contentLength: string | undefined;
  readonly expect: string | undefined;
}

/** Where the parser notes a field of {@link RequestHead} beside `headers` (0: nowhere). */
const NOTED_HOST = 1;
const NOTED_CONNECTION = 2;
const NOTED_UPGRADE = 3;
const NOTED_TRANSFER_ENCODING = 4;
const NOTED_CONTENT_LENGTH = 5;
const NOTED_EXPECT = 6;
const NOTED: Record<string, number> = {
  host: NOTED_HOST,
  connection: NOTED_CONNECTION,
  upgrade: NOTED_UPGRADE,
  'transfer-encoding': NOTED_TRANSFER_ENCODING,
  'content-length': NOTED_CONTENT_LENGTH,
  expect: NOTED_EXPECT,
};

export interface ResponseHead {
  readonly version: string;
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderFields;
}

/** Why a head was refused: the HTTP status a server answers with. */
export class HeadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
// RFC 9110 section 5.6.2: tchar.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, spaces and tabs, and obs-text (RFC 9110 section 5.5); no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const REQUEST_TARGET = /^[\x21-\x7e]+$/;

/**
 * Where the head in `buffer[0, length)` ends (the index after its empty
 * line), or -1 while it has not all arrived. Throws `HeadError` 431 once
 * `maxBytes` have arrived without an end.
 */
export function findHeadEnd(buffer: Buffer, length: number, maxBytes: number): number {
  const at = buffer.subarray(0, length).indexOf(CRLFCRLF);
  if (at >= 0 && at + 4 <= maxBytes) return at + 4;
  if (at >= 0 || length >= maxBytes) throw new HeadError(431, `request head over ${maxBytes} bytes`);
  return -1;
}

/** Parses the lines of a head (without its final empty line) into fields. */
function parseFields(lines: string[], from: number): { headers: HeaderFields; repeated: Set<string> } {
  const headers: HeaderFields = {};
  const repeated = new Set<string>();
  for (let i = from; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    // Obsolete line folding is refused (RFC 9112 section 5.2).
    if (line[0] === ' ' || line[0] === '\t') throw new HeadError(400, 'folded header line');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HeadError(400, 'header line without a name');
    const name = line.slice(0, colon);
    // No whitespace between name and colon (RFC 9112 section 5.1): a classic smuggling vector.
    if (!TOKEN.test(name)) throw new HeadError(400, `bad header name '${name}'`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) throw new HeadError(400, `bad value for header '${name}'`);
    const key = name.toLowerCase();
    if (key in headers) {
      repeated.add(key);
      headers[key] = `${headers[key]}, ${value}`;
    } else {
      headers[key] = value;
    }
  }
  return { headers, repeated };
}

function linesOf(head: Buffer): string[] {
  // latin1 keeps every byte as one character, so obs-text survives and nothing is mis-decoded.
  const text = head.toString('latin1');
  if (text.includes('\0')) throw new HeadError(400, 'NUL in the head');
  const lines = text.split('\r\n');
  // A bare CR or LF inside a line is ambiguous between parsers: refused.
  for (const line of lines) if (line.includes('\r') || line.includes('\n')) throw new HeadError(400, 'bare CR or LF in the head');
  return lines;
}

// RFC 9110 section 5.6.2: which bytes are tchar, and which may stand in a field value (VCHAR, SP, HTAB, obs-text).
const TCHAR = new Uint8Array(256);
const VALUE_BYTE = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b);
  TCHAR[b] = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(c) ? 1 : 0;
  VALUE_BYTE[b] = b === 9 || (b >= 0x20 && b !== 0x7f) ? 1 : 0;
}
const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

const COLON = 58;
const DOT = 46;
const SLASH = 47;
const DIGIT_0 = 48;
const DIGIT_1 = 49;
/** Each field line's name and value, as offsets, while the head is checked and before any string is made. */
let fieldOffsets = new Int32Array(4 * 64);

/**
 * Field names as keys: the same internalized string for every request that
 * sends the field, so reading and writing `headers` stays on one path in V8
 * instead of each request's fresh copy of "host" looking like a new key.
 */
const FIELD_NAMES = new Map<string, string>();

/**
 * The fields requests carry most, by the length of their name: one of
 * these is recognized from its bytes, without a string cut and lower-cased
 * for it.
 */
const COMMON_FIELDS: Array<Array<CommonField> | undefined> = [];
interface CommonField {
  readonly bytes: Uint8Array;
  readonly name: string;
  /** NOTED_*, or 0. */
  readonly noted: number;
}
for (const name of [
  'host', 'connection', 'content-length', 'content-type', 'transfer-encoding', 'upgrade', 'expect', 'accept',
  'accept-encoding', 'accept-language', 'user-agent', 'cookie', 'origin', 'referer', 'authorization', 'cache-control',
  'if-none-match', 'if-modified-since', 'range', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions',
  'sec-websocket-protocol', 'x-forwarded-for', 'pragma',
]) {
  (COMMON_FIELDS[name.length] ??= []).push({ bytes: Buffer.from(name, 'latin1'), name, noted: NOTED[name] ?? 0 });
}

/** The methods requests use most, recognized from their bytes: a constant string, not one cut per request. */
const COMMON_METHODS: Array<Array<CommonField> | undefined> = [];
for (const name of ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH']) {
  (COMMON_METHODS[name.length] ??= []).push({ bytes: Buffer.from(name, 'latin1'), name, noted: 0 });
}

/**
 * `buffer.toString('latin1', start, end)` without its argument checks (a
 * head's bounds are known good): Buffer's own `latin1Slice`, where the
 * runtime has it.
 */
const latin1: (buffer: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as { latin1Slice?: unknown }).latin1Slice === 'function'
    ? (buffer, start, end) => (buffer as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice(start, end)
    : (buffer, start, end) => buffer.toString('latin1', start, end);

/**
 * The entry of `table` (by length) that `head[at, end)` spells, else
 * undefined; `fold` 0x20 compares without case. `byte | 0x20` is a
 * lower-casing compare for a name already checked to be a token: no other
 * tchar maps onto a lower-case letter, a digit or `-` that way. Field
 * names compare so; methods are case-sensitive (fold 0).
 */
function knownName(table: Array<Array<CommonField> | undefined>, head: Buffer, at: number, end: number, fold: number): CommonField | undefined {
  const candidates = table[end - at];
  if (candidates === undefined) return undefined;
  for (const candidate of candidates) {
    const bytes = candidate.bytes;
    let j = 0;
    while (j < bytes.length && (head[at + j] | fold) === bytes[j]) j++;
    if (j === bytes.length) return candidate;
  }
  return undefined;
}

function fieldName(lower: string): string {
  const known = FIELD_NAMES.get(lower);
  if (known !== undefined) return known;
  // Bounded: a peer inventing names must not grow the table without limit.
  if (FIELD_NAMES.size < 512) FIELD_NAMES.set(lower, lower);
  return lower;
}

/** Adds one field; a repeated one's values are joined with ", " (RFC 9110 section 5.3). True when the name was already there. */
function addField(headers: HeaderFields, name: string, value: string): boolean {
  const known = headers[name];
  if (known === undefined) {
    headers[name] = value;
    return false;
  }
  headers[name] = `${known}, ${value}`;
  return true;
}

/**
 * Parses a request head ending in CRLF CRLF, `head[start, stop)`; throws `HeadError` 400 (or 505)
 * for a malformed one. It first walks the bytes once, with tables for the
 * characters RFC 9110 allows, noting where each name and value lies; only a
 * head found well-formed becomes strings, all cut from one latin1 decoding of
 * it. Refused is what parsers could read two ways: a bare CR or LF, NUL and
 * other control bytes, whitespace before a colon, obsolete line folding.
 */
export function parseRequestHead(head: Buffer, start = 0, stop = head.length): RequestHead {
  const end = stop - 2;
  // method SP target SP version CRLF: exactly two spaces on the line.
  let i = start;
  while (i < end && TCHAR[head[i]] === 1) i++;
  const sp1 = i;
  if (sp1 === start || head[sp1] !== SP) throw new HeadError(400, 'malformed request line');
  i++;
  while (i < end && head[i] > SP && head[i] < 0x7f) i++;
  const sp2 = i;
  if (sp2 === sp1 + 1 || head[sp2] !== SP) throw new HeadError(400, 'malformed request target');
  i++;
  while (i < end && head[i] !== CR && VALUE_BYTE[head[i]] === 1) i++;
  const eol = i;
  if (head[eol] !== CR || head[eol + 1] !== LF) throw new HeadError(400, 'a line that does not end in CRLF');
  const v = sp2 + 1;
  const http1x = eol - v === 8 && head[v] === 72 && head[v + 1] === 84 && head[v + 2] === 84 && head[v + 3] === 80 && head[v + 4] === SLASH;
  if (!http1x || head[v + 5] !== DIGIT_1 || head[v + 6] !== DOT || (head[v + 7] !== DIGIT_0 && head[v + 7] !== DIGIT_1)) {
    const version = head.toString('latin1', v, eol);
    if (!/^HTTP\/\d\.\d$/.test(version)) throw new HeadError(400, 'malformed HTTP version');
    throw new HeadError(505, `${version} is not supported`);
  }

  let fields = 0;
  let at = eol + 2;
  while (at < end) {
    const first = head[at];
    // Obsolete line folding is refused (RFC 9112 section 5.2).
    if (first === SP || first === HTAB) throw new HeadError(400, 'folded header line');
    let colon = at;
    // The head ends in CRLF, which is no tchar: the scan stops inside it.
    while (TCHAR[head[colon]] === 1) colon++;
    // No whitespace between name and colon (RFC 9112 section 5.1): a classic smuggling vector.
    if (colon === at || head[colon] !== COLON) throw new HeadError(400, 'bad header name');
    let from = colon + 1;
    while (head[from] === SP || head[from] === HTAB) from++;
    let cr = from;
    while (VALUE_BYTE[head[cr]] === 1) cr++;
    // What stopped the value must be its line's CRLF: not a bare CR or LF, NUL or another control byte.
    if (head[cr] !== CR || head[cr + 1] !== LF) throw new HeadError(400, 'bad header value');
    let to = cr;
    while (to > from && (head[to - 1] === SP || head[to - 1] === HTAB)) to--;
    if (4 * fields + 4 > fieldOffsets.length) {
      const grown = new Int32Array(2 * fieldOffsets.length);
      grown.set(fieldOffsets);
      fieldOffsets = grown;
    }
    const k = 4 * fields++;
    fieldOffsets[k] = at;
    fieldOffsets[k + 1] = colon;
    fieldOffsets[k + 2] = from;
    fieldOffsets[k + 3] = to;
    at = cr + 2;
  }

  // latin1 keeps every byte as one character, so obs-text survives and nothing is mis-decoded.
  const text = latin1(head, start, end);
  const method = knownName(COMMON_METHODS, head, start, sp1, 0)?.name ?? text.slice(0, sp1 - start);
  const target = text.slice(sp1 + 1 - start, sp2 - start);
  const version = head[v + 7] === DIGIT_1 ? 'HTTP/1.1' : 'HTTP/1.0';
  // No prototype: a field named __proto__ or constructor is a field like any other.
  const headers = Object.create(null) as HeaderFields;
  let repeated: Set<string> | undefined;
  let host: string | undefined;
  let connection: string | undefined;
  let upgrade: string | undefined;
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  let expect: string | undefined;
  for (let f = 0; f < fields; f++) {
    const k = 4 * f;
    const common = knownName(COMMON_FIELDS, head, fieldOffsets[k], fieldOffsets[k + 1], 0x20);
    const name = common !== undefined ? common.name : fieldName(text.slice(fieldOffsets[k] - start, fieldOffsets[k + 1] - start).toLowerCase());
    const value = text.slice(fieldOffsets[k + 2] - start, fieldOffsets[k + 3] - start);
    const again = addField(headers, name, value);
    if (again) (repeated ??= new Set()).add(name);
    if (common === undefined || common.noted === 0) continue;
    // A repeated field is noted as joined, the way `headers` has it.
    const noted = again ? headers[name] : value;
    switch (common.noted) {
      case NOTED_HOST:
        host = noted;
        break;
      case NOTED_CONNECTION:
        connection = noted;
        break;
      case NOTED_UPGRADE:
        upgrade = noted;
        break;
      case NOTED_TRANSFER_ENCODING:
        transferEncoding = noted;
        break;
      case NOTED_CONTENT_LENGTH:
        contentLength = noted;
        break;
      case NOTED_EXPECT:
        expect = noted;
        break;
    }
  }
  return { method, target, version, headers, repeated: repeated ?? NONE_REPEATED, host, connection, upgrade, transferEncoding, contentLength, expect };
}

const NONE_REPEATED: ReadonlySet<string> = new Set();

/** Parses a response head ending in CRLF CRLF; throws `HeadError` for a malformed one. */
export function parseResponseHead(head: Buffer): ResponseHead {
  const lines = linesOf(head);
  const match = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (match === null) throw new HeadError(400, 'malformed status line');
  const { headers } = parseFields(lines, 1);
  return { version: match[1], status: Number(match[2]), reason: match[3] ?? '', headers };
}

/** Whether a comma-separated header value holds `token`, compared without case (Connection: keep-alive, Upgrade). */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const wanted = token.toLowerCase();
  return value.split(',').some((part) => part.trim().toLowerCase() === wanted);
}

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols',
  200: 'OK',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  416: 'Range Not Satisfiable',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** The reason phrase for a status code. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

/** A complete response head: status line, the fields given, and the empty line. */
export function responseHead(status: number, fields: ReadonlyArray<readonly [string, string | number]>): string {
  let head = `HTTP/1.1 ${status} ${statusText(status)}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}
