import { Chat } from './chat';
import { Connection, lobbyUrl } from './connection';
import { byId } from './dom';
import { GameView } from './game-view';
import { LobbyView } from './lobby-view';
import type { Welcome } from '../messages';
import { RoomView } from './room-view';

/**
 * Which screen is up. `over` shows the round's results; by then the server
 * has put the player back in the lobby, and the lobby screen is one click away.
 */
type Screen = 'login' | 'lobby' | 'room' | 'game' | 'over';

const screens: Record<Screen, HTMLElement> = {
  login: byId('login'),
  lobby: byId('lobby'),
  room: byId('room'),
  game: byId('game'),
  over: byId('game'),
};
const loginForm = byId<HTMLFormElement>('login-form');
const nicknameInput = byId<HTMLInputElement>('nickname');
const loginError = byId('login-error');
const whoAmI = byId('whoami');
const notice = byId('notice');

let connection: Connection | undefined;
let connecting: Promise<Connection> | undefined;
let me: Welcome | undefined;
let screen: Screen = 'login';

function send(...args: Parameters<Connection['send']>): void {
  connection?.send(...args);
}

const chat = new Chat((text) => send('lobby.Say', { text }));
const lobby = new LobbyView({
  join: (roomId) => send('lobby.JoinRoom', { roomId }),
  create: (name, maxPlayers) => send('lobby.CreateRoom', { name, maxPlayers }),
});
const room = new RoomView({
  ready: (ready) => send('lobby.Ready', { ready }),
  leave: () => send('lobby.LeaveRoom', {}),
});
const game = new GameView(
  (dx, dy) => send('lobby.Input', { dx, dy }),
  () => show('lobby'),
);

function show(next: Screen): void {
  screen = next;
  for (const section of new Set(Object.values(screens))) section.hidden = section !== screens[next];
  document.body.dataset.screen = next;
  notice.textContent = '';
}

/** Opens the WebSocket and handles every packet the server sends. */
async function connect(): Promise<Connection> {
  const c = new Connection(lobbyUrl());
  c.on('lobby.Welcome', (m) => {
    me = m;
    whoAmI.textContent = `playing as ${m.nickname}`;
    lobby.welcome(m.nickname);
    chat.clear();
  });
  c.on('lobby.Error', (m) => {
    if (me === undefined) loginError.textContent = m.message;
    else notice.textContent = `${m.message} (${m.code})`;
  });
  c.on('lobby.LobbyState', (m) => {
    lobby.update(m, me!.playerId);
    if (screen === 'login' || screen === 'room') {
      show('lobby');
      chat.setPlace('the lobby');
    }
  });
  c.on('lobby.Left', (m) => {
    if (m.roomId !== 0) chat.setPlace('the lobby');
    // Leaving the lobby for a room is told by the RoomState that follows.
    if (m.roomId !== 0) chat.note(m.reason === 'game-over' ? 'back in the lobby' : 'you left the room');
  });
  c.on('lobby.RoomState', (m) => {
    room.update(m, me!.playerId);
    if (screen !== 'room') {
      show('room');
      chat.setPlace(m.room.name);
      chat.note(`you are in ${m.room.name}`);
    }
  });
  c.on('lobby.GameStart', (m) => {
    game.start(m, me!.playerId);
    show('game');
  });
  c.on('lobby.GameTick', (m) => game.tick(m));
  c.on('lobby.PlayerLeft', (m) => {
    game.playerLeft(m);
    chat.note(`${m.nickname} left the round (${m.reason})`);
  });
  c.on('lobby.GameOver', (m) => {
    game.over(m);
    show('over');
  });
  c.on('lobby.ChatLine', (m) => chat.line(m, me!.playerId));
  c.onClose = (reason) => {
    connection = undefined;
    me = undefined;
    game.stop();
    whoAmI.textContent = '';
    show('login');
    loginError.textContent = `Disconnected: ${reason}.`;
  };
  await c.opened;
  return c;
}

loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  loginError.textContent = '';
  const nickname = nicknameInput.value.trim();
  // The same connection carries another try after a refusal (nickname-taken).
  const ready = connection?.isOpen ? Promise.resolve(connection) : (connecting ??= connect().finally(() => (connecting = undefined)));
  ready.then(
    (c) => {
      connection = c;
      c.send('lobby.Login', { nickname });
    },
    (err: Error) => (loginError.textContent = err.message),
  );
});

show('login');
nicknameInput.focus();
