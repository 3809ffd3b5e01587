/** The element with this id; the page (index.html) has every one the views use. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`index.html has no #${id}`);
  return node as T;
}

/**
 * A new element. Children are nodes or text; text is never parsed as HTML,
 * so a nickname or a chat line cannot inject markup.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== false) node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

/** A player's colour, the same in every list and on the canvas. */
export function colourOf(playerId: number): string {
  return `hsl(${(playerId * 137.5) % 360} 70% 60%)`;
}
