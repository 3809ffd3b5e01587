import * as protobuf from 'protobufjs';
import { ErrorCodes, RingportError } from '../errors';
import type { PacketKey } from '../session';

/**
 * Maps packets between the application's view (a name or id and a message)
 * and the wire (a numeric id and payload bytes).
 */
export interface Codec {
  /** The wire id of a packet; throws `RP_ERR_UNKNOWN_PACKET` for a name or id it does not know. */
  idOf(packet: PacketKey): number;
  /** What handlers and middleware see as `ctx.packet` for an id. */
  keyOf(id: number): PacketKey;
  /** Decodes a payload; throws `RP_ERR_DECODE` when it does not parse. */
  decode(id: number, payload: Buffer): unknown;
  /** Encodes a message; throws `RP_ERR_ENCODE` when it does not fit its type. */
  encode(id: number, message: unknown): Uint8Array;
}

/** Without a codec, packets are numbered and their payloads are raw bytes. */
export const rawCodec: Codec = {
  idOf(packet) {
    if (typeof packet !== 'number') {
      throw new RingportError(
        ErrorCodes.UNKNOWN_PACKET,
        `packet '${packet}': without a codec, packets are numeric ids`,
      );
    }
    return packet;
  },
  keyOf: (id) => id,
  decode: (_id, payload) => payload,
  encode(id, message) {
    if (!(message instanceof Uint8Array)) {
      throw new RingportError(ErrorCodes.ENCODE, `packet ${id}: without a codec, a message must be a Buffer or Uint8Array`);
    }
    return message;
  },
};

/**
 * A codec over protobufjs: each packet id carries one message type.
 *
 * ```ts
 * const codec = await ProtobufCodec.load('game.proto', { Login: 1, Chat: 2 });
 * server.handle('Chat', (session, chat) => ...);
 * ```
 *
 * Handlers receive decoded protobufjs messages; `send` and `broadcast` take
 * plain objects (or messages), which are verified against the type first.
 */
export class ProtobufCodec implements Codec {
  private readonly idsByName = new Map<string, number>();
  private readonly namesById = new Map<number, string>();
  private readonly typesById = new Map<number, protobuf.Type>();

  /**
   * @param root a loaded protobufjs root
   * @param packets message type name (as found in `root`) to packet id, 0..65535
   */
  constructor(root: protobuf.Root, packets: Record<string, number>) {
    for (const [name, id] of Object.entries(packets)) {
      if (!Number.isInteger(id) || id < 0 || id > 0xffff) {
        throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `packet '${name}': id ${id} is not in 0..65535`);
      }
      if (this.namesById.has(id)) {
        throw new RingportError(
          ErrorCodes.INVALID_ARGUMENT,
          `packet id ${id} is given to both '${this.namesById.get(id)}' and '${name}'`,
        );
      }
      let type: protobuf.Type;
      try {
        type = root.lookupType(name);
      } catch (err) {
        throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `packet '${name}': no such message type in the .proto`, {
          cause: err,
        });
      }
      this.idsByName.set(name, id);
      this.namesById.set(id, name);
      this.typesById.set(id, type);
    }
  }

  /** Loads `.proto` files and maps their message types to packet ids. */
  static async load(protoPaths: string | string[], packets: Record<string, number>): Promise<ProtobufCodec> {
    return new ProtobufCodec(await protobuf.load(protoPaths), packets);
  }

  static loadSync(protoPaths: string | string[], packets: Record<string, number>): ProtobufCodec {
    return new ProtobufCodec(protobuf.loadSync(protoPaths), packets);
  }

  /** The protobufjs type of a packet, for building messages or reading descriptors. */
  typeOf(packet: PacketKey): protobuf.Type {
    return this.typesById.get(this.idOf(packet))!;
  }

  idOf(packet: PacketKey): number {
    const id = typeof packet === 'number' ? (this.typesById.has(packet) ? packet : undefined) : this.idsByName.get(packet);
    if (id === undefined) {
      throw new RingportError(ErrorCodes.UNKNOWN_PACKET, `packet '${packet}' is not in this codec`);
    }
    return id;
  }

  keyOf(id: number): PacketKey {
    return this.namesById.get(id) ?? id;
  }

  decode(id: number, payload: Buffer): unknown {
    const type = this.typesById.get(id);
    if (type === undefined) throw new RingportError(ErrorCodes.UNKNOWN_PACKET, `packet id ${id} is not in this codec`);
    try {
      // The base Reader, not the Buffer one protobufjs would pick: the Buffer
      // reader silently truncates a string whose length runs past the end.
      return type.decode(new protobuf.Reader(payload));
    } catch (err) {
      throw new RingportError(
        ErrorCodes.DECODE,
        `packet '${this.namesById.get(id)}': payload of ${payload.length} bytes does not decode: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  encode(id: number, message: unknown): Uint8Array {
    const type = this.typesById.get(id);
    if (type === undefined) throw new RingportError(ErrorCodes.UNKNOWN_PACKET, `packet id ${id} is not in this codec`);
    const problem = type.verify(message as Record<string, unknown>) ?? integerRangeProblem(type, message);
    if (problem !== null) {
      throw new RingportError(ErrorCodes.ENCODE, `packet '${this.namesById.get(id)}': ${problem}`);
    }
    return type.encode(message as Record<string, unknown>).finish();
  }
}

/** protobufjs's `verify` checks that 32-bit integers are integers, not that they fit; these are the ranges. */
const INTEGER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  uint32: [0, 0xffffffff],
  fixed32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
  sint32: [-0x80000000, 0x7fffffff],
  sfixed32: [-0x80000000, 0x7fffffff],
};

/** Finds a 32-bit integer field (nested, repeated or map values included) whose value would wrap on the wire. */
function integerRangeProblem(type: protobuf.Type, message: unknown): string | null {
  const fields = message as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const value = fields[field.name];
    if (value === undefined || value === null) continue;
    const items: unknown[] = field.repeated ? (value as unknown[]) : field.map ? Object.values(value as object) : [value];
    const nested = field.resolve().resolvedType;
    if (nested instanceof protobuf.Type) {
      for (const item of items) {
        const problem = integerRangeProblem(nested, item);
        if (problem !== null) return `${field.name}.${problem}`;
      }
      continue;
    }
    const range = INTEGER_RANGES[field.type];
    if (range === undefined) continue;
    for (const item of items) {
      if (typeof item === 'number' && (item < range[0] || item > range[1])) {
        return `${field.name}: ${item} is outside the range of ${field.type}`;
      }
    }
  }
  return null;
}
