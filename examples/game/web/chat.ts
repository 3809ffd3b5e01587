import { byId, colourOf, el } from './dom';
import type { ChatLine } from '../messages';

const KEEP_LINES = 200;

/** The chat beside every screen: lines from where you are (the lobby or your room), and notes on where you went. */
export class Chat {
  private readonly log = byId<HTMLOListElement>('chat-log');
  private readonly form = byId<HTMLFormElement>('chat-form');
  private readonly input = byId<HTMLInputElement>('chat-input');
  private readonly place = byId('chat-place');

  constructor(say: (text: string) => void) {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (text === '') return;
      say(text);
      this.input.value = '';
    });
  }

  /** Where a line said now goes. */
  setPlace(name: string): void {
    this.place.textContent = name;
  }

  line(m: ChatLine, myId: number): void {
    const from = el('b', { style: `color: ${colourOf(m.playerId)}` }, m.from);
    this.add(el('li', { class: m.playerId === myId ? 'mine' : '' }, from, ' ', m.text));
  }

  note(text: string): void {
    this.add(el('li', { class: 'note' }, text));
  }

  clear(): void {
    this.log.replaceChildren();
  }

  private add(item: HTMLLIElement): void {
    this.log.append(item);
    while (this.log.children.length > KEEP_LINES) this.log.firstElementChild!.remove();
    this.log.scrollTop = this.log.scrollHeight;
  }
}
