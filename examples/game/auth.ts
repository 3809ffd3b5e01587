import type { Middleware, PacketKey } from '../../src';
import type { Player, PlayerData, PlayerSession } from './player';
import { Refusal } from './refusal';

const NICKNAME = /^[A-Za-z0-9_-]{1,16}$/;

/** Throws a `Refusal` unless `nickname` is 1-16 letters, digits, `_` or `-`. */
export function checkNickname(nickname: string): void {
  if (!NICKNAME.test(nickname)) {
    throw new Refusal('bad-nickname', 'a nickname is 1-16 letters, digits, _ or -');
  }
}

/** The logged-in player of a session, if any; the login handler sets it. */
export function loggedIn(session: PlayerSession): Player | undefined {
  return session.data.player;
}

/**
 * The auth gate: before login, only the login packet gets through; after it,
 * everything but the login packet does. Whatever it stops is refused
 * (`not-logged-in`, `already-logged-in`), so a confused client learns why.
 * The login handler itself checks the nickname and takes it.
 */
export function requireLogin(loginPacket: PacketKey): Middleware<PlayerData> {
  return (ctx, next) => {
    const isLogin = ctx.packet === loginPacket;
    const player = loggedIn(ctx.session);
    if (isLogin && player !== undefined) throw new Refusal('already-logged-in', 'you are logged in already');
    if (!isLogin && player === undefined) throw new Refusal('not-logged-in', 'log in first');
    return next();
  };
}
