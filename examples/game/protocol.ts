import * as path from 'node:path';
// An application would import these from 'ringport'.
import { ProtobufCodec } from '../../src';

/** One packet id per message that travels on its own; see lobby.proto and the README's packet table. */
export const PACKETS = {
  'lobby.Login': 1,
  'lobby.Welcome': 2,
  'lobby.Error': 3,
  'lobby.LobbyState': 4,
  'lobby.Say': 5,
  'lobby.ChatLine': 6,
  'lobby.CreateRoom': 7,
  'lobby.JoinRoom': 8,
  'lobby.LeaveRoom': 9,
  'lobby.RoomState': 10,
  'lobby.Left': 11,
  'lobby.Ready': 12,
  'lobby.GameStart': 13,
  'lobby.Input': 14,
  'lobby.GameTick': 15,
  'lobby.PlayerLeft': 16,
  'lobby.GameOver': 17,
} as const;

export type PacketName = keyof typeof PACKETS;

export const PROTO_PATH = path.join(__dirname, 'lobby.proto');

/** The codec both ends use: packet names in, protobuf bytes on the wire. */
export function loadCodec(): ProtobufCodec {
  return ProtobufCodec.loadSync(PROTO_PATH, PACKETS);
}
