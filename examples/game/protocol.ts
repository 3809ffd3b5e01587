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

// The messages as TypeScript sees them (protobufjs turns snake_case into camelCase).

export interface Login { nickname: string }
export interface Welcome { playerId: number; nickname: string }
export interface ErrorReply { code: string; message: string; packet: string }
export interface PlayerInfo { id: number; nickname: string; roomId: number }
export interface RoomInfo { id: number; name: string; maxPlayers: number; players: number; inGame: boolean }
export interface LobbyState { rooms: RoomInfo[]; players: PlayerInfo[]; chatSeq: number }
export interface Say { text: string }
export interface ChatLine { roomId: number; seq: number; playerId: number; from: string; text: string }
export interface CreateRoom { name: string; maxPlayers: number }
export interface JoinRoom { roomId: number }
export interface Member { id: number; nickname: string; ready: boolean }
export interface RoomState { room: RoomInfo; members: Member[]; chatSeq: number }
export interface Left { roomId: number; reason: string; chatSeq: number }
export interface Ready { ready: boolean }
export interface GameStart {
  roomId: number;
  gameId: number;
  tickRate: number;
  durationMs: number;
  arenaSize: number;
  players: Member[];
}
export interface Input { dx: number; dy: number }
export interface Vec2 { x: number; y: number }
export interface PlayerPos { id: number; x: number; y: number; score: number }
export interface GameTick { gameId: number; tick: number; players: PlayerPos[]; coin: Vec2 }
export interface PlayerLeft { roomId: number; playerId: number; nickname: string; reason: string }
export interface Result { id: number; nickname: string; score: number; place: number }
export interface GameOver { gameId: number; reason: string; ticks: number; results: Result[] }
