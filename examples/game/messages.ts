// The lobby's messages as TypeScript sees them (protobufjs turns lobby.proto's
// snake_case into camelCase). Types only, so that the browser client
// (web/) shares them with the server and the bots; protocol.ts, which needs
// Node, has the packet ids and the codec.

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
export interface GameStart { roomId: number; gameId: number; tickRate: number; durationMs: number; arenaSize: number; players: Member[] }
export interface Input { dx: number; dy: number }
export interface Vec2 { x: number; y: number }
export interface PlayerPos { id: number; x: number; y: number; score: number }
/** `coin` is null where a decoder met no coin field; the server always sends one. */
export interface GameTick { gameId: number; tick: number; players: PlayerPos[]; coin: Vec2 | null }
export interface PlayerLeft { roomId: number; playerId: number; nickname: string; reason: string }
export interface Result { id: number; nickname: string; score: number; place: number }
export interface GameOver { gameId: number; reason: string; ticks: number; results: Result[] }

/** What the browser sends. */
export interface ClientMessages {
  'lobby.Login': Login;
  'lobby.Say': Say;
  'lobby.CreateRoom': CreateRoom;
  'lobby.JoinRoom': JoinRoom;
  'lobby.LeaveRoom': Record<string, never>;
  'lobby.Ready': Ready;
  'lobby.Input': Input;
}

/** What the server sends. */
export interface ServerMessages {
  'lobby.Welcome': Welcome;
  'lobby.Error': ErrorReply;
  'lobby.LobbyState': LobbyState;
  'lobby.ChatLine': ChatLine;
  'lobby.RoomState': RoomState;
  'lobby.Left': Left;
  'lobby.GameStart': GameStart;
  'lobby.GameTick': GameTick;
  'lobby.PlayerLeft': PlayerLeft;
  'lobby.GameOver': GameOver;
}
