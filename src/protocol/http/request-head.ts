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
}

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

/** The end of the line that starts at `at`: the index of its CR, which must be followed by LF. */
function lineEnd(head: Buffer, at: number): number {
  const cr = head.indexOf(CR, at);
  if (cr < 0 || head[cr + 1] !== LF) throw new HeadError(400, 'a line that does not end in CRLF');
  return cr;
}

/**
 * Parses a request head ending in CRLF CRLF; throws `HeadError` 400 (or 505)
 * for a malformed one. It walks the bytes once, with tables for the
 * characters RFC 9110 allows, and refuses what parsers could read two ways:
 * a bare CR or LF, NUL and other control bytes, whitespace before a colon,
 * obsolete line folding.
 */
export function parseRequestHead(head: Buffer): RequestHead {
  const end = head.length - 2;
  let eol = lineEnd(head, 0);
  // method SP target SP version: exactly two spaces on the line.
  const sp1 = head.indexOf(SP, 0);
  const sp2 = sp1 < 0 || sp1 > eol ? -1 : head.indexOf(SP, sp1 + 1);
  const sp3 = sp2 < 0 || sp2 > eol ? -1 : head.indexOf(SP, sp2 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 >= eol || (sp3 >= 0 && sp3 < eol)) throw new HeadError(400, 'malformed request line');
  for (let i = 0; i < sp1; i++) if (TCHAR[head[i]] === 0) throw new HeadError(400, 'malformed method');
  if (sp2 === sp1 + 1) throw new HeadError(400, 'malformed request target');
  for (let i = sp1 + 1; i < sp2; i++) {
    const b = head[i];
    if (b <= SP || b >= 0x7f) throw new HeadError(400, 'malformed request target');
  }
  const method = head.toString('latin1', 0, sp1);
  const target = head.toString('latin1', sp1 + 1, sp2);
  const version = head.toString('latin1', sp2 + 1, eol);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') {
    if (!/^HTTP\/\d\.\d$/.test(version)) throw new HeadError(400, 'malformed HTTP version');
    throw new HeadError(505, `${version} is not supported`);
  }
  // No prototype: a field named __proto__ or constructor is a field like any other.
  const headers = Object.create(null) as HeaderFields;
  let repeated: Set<string> | undefined;
  let at = eol + 2;
  while (at < end) {
    eol = lineEnd(head, at);
    const first = head[at];
    // Obsolete line folding is refused (RFC 9112 section 5.2).
    if (first === SP || first === HTAB) throw new HeadError(400, 'folded header line');
    let colon = at;
    while (colon < eol && TCHAR[head[colon]] === 1) colon++;
    // No whitespace between name and colon (RFC 9112 section 5.1): a classic smuggling vector.
    if (colon === at || colon >= eol || head[colon] !== 58) throw new HeadError(400, 'bad header name');
    let from = colon + 1;
    let to = eol;
    while (from < to && (head[from] === SP || head[from] === HTAB)) from++;
    while (to > from && (head[to - 1] === SP || head[to - 1] === HTAB)) to--;
    for (let i = from; i < to; i++) if (VALUE_BYTE[head[i]] === 0) throw new HeadError(400, 'bad header value');
    const name = head.toString('latin1', at, colon).toLowerCase();
    const value = head.toString('latin1', from, to);
    const known = headers[name];
    if (known === undefined) {
      headers[name] = value;
    } else {
      (repeated ??= new Set()).add(name);
      headers[name] = `${known}, ${value}`;
    }
    at = eol + 2;
  }
  // A bare LF inside a line is refused above, as a byte no field or request line may hold.
  return { method, target, version, headers, repeated: repeated ?? NONE_REPEATED };
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
