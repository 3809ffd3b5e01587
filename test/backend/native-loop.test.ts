import { loadAddon } from '../../src/backend/native-addon';
import { NativeLoop, type LoopOwner } from '../../src/backend/native-loop';
import { PROTOCOL as P } from '../../src/backend/native-protocol';

const load = loadAddon();
const withAddon = load.ok ? describe : describe.skip;

const owner = (): LoopOwner => ({ take: () => undefined, endBatch: () => undefined });

withAddon('NativeLoop connection owners', () => {
  let loop: NativeLoop;
  beforeEach(() => {
    if (!load.ok) return;
    loop = new NativeLoop(load.addon, load.addon.mechanisms[0]);
    loop.retain();
  });
  afterEach(() => loop.release());

  it('routes by slot and generation', () => {
    const a = owner();
    loop.own(7, 1, a);
    expect(loop.ownerOf(7, 1)).toBe(a);
    expect(loop.ownerOf(7, 2)).toBeUndefined();
    expect(loop.ownerOf(8, 1)).toBeUndefined();
    loop.disown(7, 1);
    expect(loop.ownerOf(7, 1)).toBeUndefined();
  });

  it("keeps a connection's owner when its slot is reused before its close event arrives", () => {
    // Native frees a slot as it queues the close event; a dial made before
    // that event reaches JS (between two parts of a long wake-up) gets the slot.
    const a = owner();
    const b = owner();
    loop.own(7, 1, a);
    loop.own(7, 2, b);
    expect(loop.ownerOf(7, 1)).toBe(a);
    expect(loop.ownerOf(7, 2)).toBe(b);
    expect(loop.connIdsOf(a)).toEqual([1 * P.SLOT_LIMIT + 7]);
    expect(loop.connIdsOf(b)).toEqual([2 * P.SLOT_LIMIT + 7]);
    // The late close of the old connection leaves the new one routed.
    loop.disown(7, 1);
    expect(loop.ownerOf(7, 1)).toBeUndefined();
    expect(loop.ownerOf(7, 2)).toBe(b);
    expect(loop.connIdsOf(a)).toEqual([]);
    loop.disown(7, 2);
    expect(loop.ownerOf(7, 2)).toBeUndefined();
  });
});
