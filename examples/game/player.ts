import type { Session } from '../../src';
import type { GameRoom } from './game-room';

/** A logged-in player. The session's `data.player` points here (see auth.ts). */
export interface Player {
  readonly id: number;
  readonly nickname: string;
  readonly session: Session;
  /** The room the player is in; undefined while in the lobby. */
  room: GameRoom | undefined;
  /** Ready to start, in a waiting room. */
  ready: boolean;
}
