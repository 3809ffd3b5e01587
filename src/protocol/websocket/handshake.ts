import { createHash, randomBytes } from 'node:crypto';
import { hasToken, HeadError, responseHead, type RequestHead, type ResponseHead } from '../http/request-head';

/** RFC 6455 section 1.3: the GUID the accept key is derived with. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The `Sec-WebSocket-Accept` value that answers `key`. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** What a server's upgrade check needs to know about where it listens. */
export interface UpgradeRules {
  /** The path (without query) a WebSocket may open on. */
  readonly path: string;
  /** Subprotocols the server speaks, in its order of preference; empty: none. */
  readonly subprotocols: readonly string[];
  /** Origins allowed to open a WebSocket; undefined: any. */
  readonly origins: ReadonlySet<string> | undefined;
}

/** An upgrade request that passed the protocol's checks. */
export interface CheckedUpgrade {
  readonly key: string;
  /** The subprotocol chosen, if any. */
  readonly subprotocol: string | undefined;
}

/**
 * Checks an upgrade request against RFC 6455 section 4.2.1 and the listener's
 * rules. Throws `HeadError` with the status to answer: 404 for another path,
 * 426 for another version (the response names 13), 403 for an origin not
 * allowed, 400 for anything else malformed.
 */
export function checkUpgrade(head: RequestHead, rules: UpgradeRules): CheckedUpgrade {
  const { headers } = head;
  if (head.method !== 'GET') throw new HeadError(400, 'a WebSocket opens with GET');
  if (head.version !== 'HTTP/1.1') throw new HeadError(400, 'a WebSocket needs HTTP/1.1');
  if (pathOf(head.target) !== rules.path) throw new HeadError(404, `no WebSocket at ${pathOf(head.target)}`);
  if (headers.host === undefined || head.repeated.has('host')) throw new HeadError(400, 'exactly one Host header is required');
  if (!hasToken(headers.upgrade, 'websocket')) throw new HeadError(400, 'Upgrade: websocket is required');
  if (!hasToken(headers.connection, 'upgrade')) throw new HeadError(400, 'Connection: Upgrade is required');
  if (headers['sec-websocket-version'] !== '13') throw new HeadError(426, 'Sec-WebSocket-Version 13 is required');
  const key = headers['sec-websocket-key'];
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new HeadError(400, 'Sec-WebSocket-Key must be 16 bytes in base64');
  if (rules.origins !== undefined && !rules.origins.has(headers.origin ?? '')) {
    throw new HeadError(403, `origin ${headers.origin ?? '(none)'} is not allowed`);
  }
  const offered = (headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  let subprotocol: string | undefined;
  if (offered.length > 0 && rules.subprotocols.length > 0) {
    subprotocol = rules.subprotocols.find((p) => offered.includes(p));
    if (subprotocol === undefined) throw new HeadError(400, `none of the subprotocols ${offered.join(', ')} is spoken here`);
  }
  return { key, subprotocol };
}

/** The path part of a request target. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** The 101 response that completes a server's handshake. */
export function switchingProtocols(upgrade: CheckedUpgrade): Buffer {
  const fields: Array<[string, string]> = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', acceptKey(upgrade.key)],
  ];
  if (upgrade.subprotocol !== undefined) fields.push(['Sec-WebSocket-Protocol', upgrade.subprotocol]);
  return Buffer.from(responseHead(101, fields), 'latin1');
}

/** A refusal: an HTTP error response after which the connection closes. */
export function refusal(status: number, body: string, extra: ReadonlyArray<readonly [string, string]> = []): Buffer {
  const text = Buffer.from(body, 'utf8');
  const fields: Array<readonly [string, string | number]> = [
    ['Connection', 'close'],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', text.length],
    ...extra,
  ];
  // 426 names the version this server speaks (section 4.4).
  if (status === 426) fields.push(['Sec-WebSocket-Version', '13']);
  return Buffer.concat([Buffer.from(responseHead(status, fields), 'latin1'), text]);
}

/** A client's opening handshake and the key its answer must carry. */
export function upgradeRequest(
  host: string,
  path: string,
  subprotocols: readonly string[],
  headers: Readonly<Record<string, string>>,
): { request: Buffer; key: string } {
  const key = randomBytes(16).toString('base64');
  let head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
  head += `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (subprotocols.length > 0) head += `Sec-WebSocket-Protocol: ${subprotocols.join(', ')}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return { request: Buffer.from(`${head}\r\n`, 'latin1'), key };
}

/** Checks a server's answer to `upgradeRequest` (section 4.1); returns why it is refused, or undefined. */
export function checkAnswer(head: ResponseHead, key: string, subprotocols: readonly string[]): string | undefined {
  if (head.status !== 101) return `HTTP ${head.status} ${head.reason}`.trim();
  if (!hasToken(head.headers.upgrade, 'websocket')) return 'the answer has no Upgrade: websocket';
  if (!hasToken(head.headers.connection, 'upgrade')) return 'the answer has no Connection: Upgrade';
  if (head.headers['sec-websocket-accept'] !== acceptKey(key)) return 'Sec-WebSocket-Accept does not match the key';
  const chosen = head.headers['sec-websocket-protocol'];
  if (chosen !== undefined && !subprotocols.includes(chosen)) return `the server chose subprotocol ${chosen}, which was not offered`;
  if (head.headers['sec-websocket-extensions'] !== undefined) return 'the server chose an extension, none was offered';
  return undefined;
}
