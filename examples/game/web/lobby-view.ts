import { byId, colourOf, el } from './dom';
import type { LobbyState, PlayerInfo, RoomInfo } from '../messages';

export interface LobbyActions {
  join(roomId: number): void;
  create(name: string, maxPlayers: number): void;
}

/** The lobby: every room with who is in it (join one, or open your own), and who is in the lobby. */
export class LobbyView {
  private readonly rooms = byId<HTMLUListElement>('rooms');
  private readonly idle = byId<HTMLUListElement>('lobby-players');
  private readonly online = byId('online');
  private readonly createForm = byId<HTMLFormElement>('create-room');
  private readonly roomName = byId<HTMLInputElement>('room-name');
  private readonly roomSize = byId<HTMLSelectElement>('room-size');

  constructor(private readonly actions: LobbyActions) {
    this.createForm.addEventListener('submit', (event) => {
      event.preventDefault();
      actions.create(this.roomName.value.trim() || this.roomName.placeholder, Number(this.roomSize.value));
    });
  }

  /** Called once logged in: a room of your own gets your name by default. */
  welcome(nickname: string): void {
    this.roomName.placeholder = `${nickname}'s room`;
  }

  update(state: LobbyState, myId: number): void {
    const byRoom = new Map<number, PlayerInfo[]>();
    for (const p of state.players) byRoom.set(p.roomId, [...(byRoom.get(p.roomId) ?? []), p]);

    this.online.textContent = `${state.players.length} online, ${state.rooms.length} room${state.rooms.length === 1 ? '' : 's'}`;
    const rooms = state.rooms.map((room) => this.roomItem(room, byRoom.get(room.id) ?? [], myId));
    this.rooms.replaceChildren(...(rooms.length > 0 ? rooms : [el('li', { class: 'empty' }, 'No rooms yet: open one.')]));
    this.idle.replaceChildren(...(byRoom.get(0) ?? []).map((p) => playerChip(p.id, p.nickname, p.id === myId)));
  }

  private roomItem(room: RoomInfo, members: PlayerInfo[], myId: number): HTMLLIElement {
    const full = room.players >= room.maxPlayers;
    const status = room.inGame ? 'playing' : full ? 'full' : 'waiting';
    const join = el('button', { type: 'button', disabled: room.inGame || full }, 'Join');
    join.addEventListener('click', () => this.actions.join(room.id));
    return el(
      'li',
      { class: `room ${status}`, 'data-room-id': room.id },
      el('div', { class: 'room-head' }, el('b', {}, room.name), el('span', { class: 'count' }, `${room.players}/${room.maxPlayers} ${status}`), join),
      el('div', { class: 'members' }, ...members.map((p) => playerChip(p.id, p.nickname, p.id === myId))),
    );
  }
}

/** A nickname with the player's colour. */
export function playerChip(id: number, nickname: string, mine: boolean, extra = ''): HTMLSpanElement {
  return el('span', { class: `chip${mine ? ' mine' : ''}`, style: `--colour: ${colourOf(id)}`, 'data-player-id': id }, nickname + extra);
}
