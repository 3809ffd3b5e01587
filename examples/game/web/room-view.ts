import { byId, el } from './dom';
import { playerChip } from './lobby-view';
import type { RoomState } from '../messages';

export interface RoomActions {
  ready(ready: boolean): void;
  leave(): void;
}

/** A waiting room: its members and who is ready. The round starts when everyone (two or more) is. */
export class RoomView {
  private readonly title = byId('room-title');
  private readonly members = byId<HTMLUListElement>('members');
  private readonly readyButton = byId<HTMLButtonElement>('ready');
  private readonly hint = byId('room-hint');
  private amReady = false;

  constructor(actions: RoomActions) {
    this.readyButton.addEventListener('click', () => actions.ready(!this.amReady));
    byId('leave').addEventListener('click', () => actions.leave());
  }

  update(state: RoomState, myId: number): void {
    this.title.textContent = `${state.room.name} (${state.members.length}/${state.room.maxPlayers})`;
    this.members.replaceChildren(
      ...state.members.map((m) =>
        el('li', { class: m.ready ? 'ready' : '' }, playerChip(m.id, m.nickname, m.id === myId), el('span', {}, m.ready ? 'ready' : 'not ready')),
      ),
    );
    this.amReady = state.members.some((m) => m.id === myId && m.ready);
    this.readyButton.textContent = this.amReady ? 'Not ready' : 'Ready';
    this.readyButton.classList.toggle('on', this.amReady);
    const waitingFor = state.members.filter((m) => !m.ready).length;
    this.hint.textContent =
      state.members.length < 2 ? 'Waiting for someone to join.' : waitingFor === 0 ? 'Starting...' : `Waiting for ${waitingFor} to get ready.`;
  }
}
