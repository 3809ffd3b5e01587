import { Root, type Type } from 'protobufjs/light';
// Made by build-web.ts from lobby.proto and protocol.ts: the server's own packet ids and messages.
import { packets, schema } from 'lobby-protocol';
import type { ClientMessages, ServerMessages } from '../messages';

const root = Root.fromJSON(schema);
const typeById = new Map<number, Type>();
for (const [name, id] of Object.entries(packets)) typeById.set(id, root.lookupType(name));

/** `ws://` beside the page (`wss://` behind a TLS proxy), at the path the lobby's HTTP listener upgrades. */
export function lobbyUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/play`;
}

/**
 * One WebSocket to the lobby server. Each binary message is one packet: the
 * packet id (u16, little-endian), then the protobuf message: the same bytes
 * a framed TCP packet carries after its length. Text is never sent.
 */
export class Connection {
  private readonly socket: WebSocket;
  private readonly handlers = new Map<number, (message: any) => void>();
  /** Resolves once the socket is open; rejects if it never opens. */
  readonly opened: Promise<void>;
  /** The close reason ringport sent (`shutdown`, `idle-timeout`, ...), or what the browser saw. */
  onClose: (reason: string) => void = () => {};

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.binaryType = 'arraybuffer';
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener('open', () => resolve());
      this.socket.addEventListener('close', () => reject(new Error(`cannot reach ${url}`)));
    });
    this.socket.addEventListener('message', (event) => this.receive(event.data));
    this.socket.addEventListener('close', (event) => this.onClose(event.reason || `connection lost (${event.code})`));
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Handles every packet of this kind, decoded. */
  on<K extends keyof ServerMessages>(name: K, handler: (message: ServerMessages[K]) => void): this {
    this.handlers.set(packets[name], handler);
    return this;
  }

  send<K extends keyof ClientMessages>(name: K, message: ClientMessages[K]): void {
    if (!this.isOpen) return;
    const id = packets[name];
    const type = typeById.get(id)!;
    const payload = type.encode(type.fromObject(message)).finish();
    const packet = new Uint8Array(2 + payload.length);
    new DataView(packet.buffer).setUint16(0, id, true);
    packet.set(payload, 2);
    this.socket.send(packet);
  }

  close(): void {
    this.socket.close(1000);
  }

  private receive(data: unknown): void {
    if (!(data instanceof ArrayBuffer) || data.byteLength < 2) return;
    const id = new DataView(data).getUint16(0, true);
    const type = typeById.get(id);
    const handler = this.handlers.get(id);
    if (type === undefined || handler === undefined) {
      console.warn(`packet ${id}: nobody handles it`);
      return;
    }
    handler(type.decode(new Uint8Array(data, 2)));
  }
}
