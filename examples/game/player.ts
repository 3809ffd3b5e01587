import type { Session } from '../../src';
import type { GameRoom } from './game-room';

/** What the lobby keeps on each session: its player, once logged in (see auth.ts). */
export interface PlayerData {
  player?: Player;
}

/** A session of the lobby server: `createServer<PlayerData>()` types its `data`. */
export type PlayerSession = Session<PlayerData>;

/** A logged-in player. The session's `data.player` points here (see auth.ts). */
export interface Player {
  readonly id: number;
  readonly nickname: string;
  readonly session: PlayerSession;
  /** The room the player is in; undefined while in the lobby. */
  room: GameRoom | undefined;
  /** Ready to start, in a waiting room. */
  ready: boolean;
}
