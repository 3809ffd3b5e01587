import { CONN_SLOT_LIMIT, connGeneration, connSlot } from '../../src/backend';
import { SlotIds } from '../../src/backend/slot-ids';

describe('SlotIds', () => {
  it('takes slots from 0 up, and reuses a released slot, newest first, under a new generation', () => {
    const ids = new SlotIds();
    const [a, b, c] = [ids.take(), ids.take(), ids.take()];
    expect([a, b, c].map(connSlot)).toEqual([0, 1, 2]);
    ids.release(a);
    ids.release(c);
    const d = ids.take();
    const e = ids.take();
    expect([connSlot(d), connSlot(e)]).toEqual([2, 0]);
    expect(d).toBe(c + CONN_SLOT_LIMIT);
    expect(e).toBe(a + CONN_SLOT_LIMIT);
    expect(connSlot(ids.take())).toBe(3);
  });
});

describe('connSlot and connGeneration', () => {
  it('split ids past 2^31 (a slot reused thousands of times) exactly', () => {
    // The native generation is 24 bits wide: ids reach 2^44.
    for (const [generation, slot] of [
      [0, 0],
      [1, CONN_SLOT_LIMIT - 1],
      [2047, 5],
      [2048, 12345],
      [(1 << 24) - 1, CONN_SLOT_LIMIT - 1],
    ]) {
      const id = generation * CONN_SLOT_LIMIT + slot;
      expect([connGeneration(id), connSlot(id)]).toEqual([generation, slot]);
    }
  });
});
