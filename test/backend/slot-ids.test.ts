import { CONN_SLOT_LIMIT, connSlot } from '../../src/backend';
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
